-- For sqlc only, never run: what sql/00002_aggregates.sql and sql/00004_energy.sql
-- create with EXECUTE on TimescaleDB, which sqlc cannot see, spelled as they stand after
-- the newest of them so sqlc knows the columns and types. Keep in step with those
-- migrations. (Not embedded: only sql/*.sql are migrations.)

CREATE TABLE sungrow_aggregate_zone (
    zone text NOT NULL,
    one  boolean PRIMARY KEY DEFAULT true
);

CREATE TABLE sungrow_hourly (
    device_id               text             NOT NULL,
    bucket                  timestamptz      NOT NULL,
    avg_pv_power_w          double precision NOT NULL,
    max_pv_power_w          double precision NOT NULL,
    avg_battery_power_w     double precision NOT NULL,
    avg_battery_soc_pct     double precision NOT NULL,
    avg_load_power_w        double precision NOT NULL,
    avg_export_power_w      double precision NOT NULL,
    sample_count            bigint           NOT NULL,
    sum_pv_power_w          double precision NOT NULL,
    sum_battery_power_w     double precision NOT NULL,
    sum_battery_soc_pct     double precision NOT NULL,
    sum_load_power_w        double precision NOT NULL,
    sum_export_power_w      double precision NOT NULL,
    sum_grid_import_w       double precision NOT NULL,
    sum_grid_export_w       double precision NOT NULL,
    sum_battery_charge_w    double precision NOT NULL,
    sum_battery_discharge_w double precision NOT NULL,
    -- the hour's largest pv_daily_kwh; NULL when no sample carries the counter
    max_pv_daily_kwh        double precision
);

-- Daily and monthly: the same sums, and pv_inverter_kwh instead of max_pv_daily_kwh
-- (daily: the day's largest pv_daily_kwh; monthly: the sum of those over its days).
CREATE TABLE sungrow_daily (
    device_id               text             NOT NULL,
    bucket                  timestamptz      NOT NULL,
    avg_pv_power_w          double precision NOT NULL,
    max_pv_power_w          double precision NOT NULL,
    avg_battery_power_w     double precision NOT NULL,
    avg_battery_soc_pct     double precision NOT NULL,
    avg_load_power_w        double precision NOT NULL,
    avg_export_power_w      double precision NOT NULL,
    sample_count            bigint           NOT NULL,
    sum_pv_power_w          double precision NOT NULL,
    sum_battery_power_w     double precision NOT NULL,
    sum_battery_soc_pct     double precision NOT NULL,
    sum_load_power_w        double precision NOT NULL,
    sum_export_power_w      double precision NOT NULL,
    sum_grid_import_w       double precision NOT NULL,
    sum_grid_export_w       double precision NOT NULL,
    sum_battery_charge_w    double precision NOT NULL,
    sum_battery_discharge_w double precision NOT NULL,
    pv_inverter_kwh         double precision
);

CREATE TABLE sungrow_monthly (LIKE sungrow_daily);

-- TimescaleDB's own procedure; the view is declared text (the server casts it to
-- regclass) so the generated parameter is a string.
CREATE PROCEDURE refresh_continuous_aggregate(continuous_aggregate text,
    window_start timestamptz, window_end timestamptz, force boolean DEFAULT false)
    LANGUAGE sql AS $$ SELECT 1 $$;
