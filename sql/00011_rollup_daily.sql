-- Plain PostgreSQL's daily level above the 15-minute rollup: sungrow_rollup_daily holds,
-- per device and local day (beginning at midnight in the zone sungrow_rollup_zone
-- names, daylight saving included), the sums of the day's quarter hours, so a year
-- frame reads 365 rows instead of 35 040, as the daily aggregate does on TimescaleDB.
-- Ingest adds to it in the statement that stores the samples (queries/rollup.sql,
-- InsertSamplesRollup), in the zone of the row in sungrow_rollup_zone. Up fills it in
-- the zone of the session setting sungrow.tz (`sungrow migrate` sets it from
-- SUNGROW_TZ; default UTC); serve builds it again, at start, when SUNGROW_TZ names
-- another zone (series.KeepDailyZone), and reads the quarter hours meanwhile.
--
-- On TimescaleDB (no sungrow_rollup) this migration creates nothing.
-- sqlc cannot see tables created inside DO: sql/sqlc/rollup.sql mirrors them.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    tz      text := coalesce(nullif(current_setting('sungrow.tz', true), ''), 'UTC');
    n       bigint;
    started timestamptz := clock_timestamp();
BEGIN
    IF to_regclass('sungrow_rollup') IS NULL THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = tz) THEN
        RAISE EXCEPTION 'sungrow.tz=%: not a time zone name this server knows', tz;
    END IF;
    -- One row: the zone sungrow_rollup_daily's days begin in.
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
    INSERT INTO sungrow_rollup_zone (zone) VALUES (tz);
    INSERT INTO sungrow_rollup_daily
    SELECT device_id, date_trunc('day', bucket, tz),
           sum(sample_count), sum(sum_pv_power_w), max(max_pv_power_w),
           sum(sum_battery_power_w), sum(sum_battery_soc_pct),
           sum(sum_load_power_w), sum(sum_export_power_w),
           sum(sum_grid_import_w), sum(sum_grid_export_w),
           sum(sum_battery_charge_w), sum(sum_battery_discharge_w),
           max(max_pv_daily_kwh)
    FROM sungrow_rollup
    GROUP BY 1, 2;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE 'sungrow_rollup_daily: % days in %, % s', n, tz,
        round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
    ANALYZE sungrow_rollup_daily;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE IF EXISTS sungrow_rollup_daily;
DROP TABLE IF EXISTS sungrow_rollup_zone;
