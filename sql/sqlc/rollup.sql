-- For sqlc only, never run: what sql/00008_rollup.sql and 00011 create inside DO on plain
-- PostgreSQL, which sqlc cannot see. Keep in step with them. (Not embedded:
-- only sql/*.sql are migrations.)

CREATE TABLE sungrow_rollup (
    device_id               text             NOT NULL,
    bucket                  timestamptz      NOT NULL,
    sample_count            bigint           NOT NULL,
    sum_pv_power_w          double precision NOT NULL,
    max_pv_power_w          double precision NOT NULL,
    sum_battery_power_w     double precision NOT NULL,
    sum_battery_soc_pct     double precision NOT NULL,
    sum_load_power_w        double precision NOT NULL,
    sum_export_power_w      double precision NOT NULL,
    sum_grid_import_w       double precision NOT NULL,
    sum_grid_export_w       double precision NOT NULL,
    sum_battery_charge_w    double precision NOT NULL,
    sum_battery_discharge_w double precision NOT NULL,
    max_pv_daily_kwh        double precision,
    PRIMARY KEY (device_id, bucket)
);

-- sql/00011_rollup_daily.sql.
CREATE TABLE sungrow_rollup_zone (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    zone text    NOT NULL
);

CREATE TABLE sungrow_rollup_daily (
    device_id               text             NOT NULL,
    bucket                  timestamptz      NOT NULL,
    sample_count            bigint           NOT NULL,
    sum_pv_power_w          double precision NOT NULL,
    max_pv_power_w          double precision NOT NULL,
    sum_battery_power_w     double precision NOT NULL,
    sum_battery_soc_pct     double precision NOT NULL,
    sum_load_power_w        double precision NOT NULL,
    sum_export_power_w      double precision NOT NULL,
    sum_grid_import_w       double precision NOT NULL,
    sum_grid_export_w       double precision NOT NULL,
    sum_battery_charge_w    double precision NOT NULL,
    sum_battery_discharge_w double precision NOT NULL,
    max_pv_daily_kwh        double precision,
    PRIMARY KEY (device_id, bucket)
);
