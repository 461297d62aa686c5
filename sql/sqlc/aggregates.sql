-- For sqlc only, never run: what sql/00002_aggregates.sql creates with EXECUTE on
-- TimescaleDB, which sqlc cannot see, spelled so sqlc knows the columns and types.
-- Keep in step with that migration. (Not embedded: only sql/*.sql are migrations.)

CREATE TABLE sungrow_aggregate_zone (
    zone text NOT NULL,
    one  boolean PRIMARY KEY DEFAULT true
);

CREATE TABLE sungrow_hourly (
    device_id           text             NOT NULL,
    bucket              timestamptz      NOT NULL,
    avg_pv_power_w      double precision NOT NULL,
    max_pv_power_w      double precision NOT NULL,
    avg_battery_power_w double precision NOT NULL,
    avg_battery_soc_pct double precision NOT NULL,
    avg_load_power_w    double precision NOT NULL,
    avg_export_power_w  double precision NOT NULL,
    sample_count        bigint           NOT NULL,
    sum_pv_power_w      double precision NOT NULL,
    sum_battery_power_w double precision NOT NULL,
    sum_battery_soc_pct double precision NOT NULL,
    sum_load_power_w    double precision NOT NULL,
    sum_export_power_w  double precision NOT NULL
);

CREATE TABLE sungrow_daily (LIKE sungrow_hourly);
CREATE TABLE sungrow_monthly (LIKE sungrow_hourly);

-- TimescaleDB's own procedure; the view is declared text (the server casts it to
-- regclass) so the generated parameter is a string.
CREATE PROCEDURE refresh_continuous_aggregate(continuous_aggregate text,
    window_start timestamptz, window_end timestamptz)
    LANGUAGE sql AS $$ SELECT 1 $$;
