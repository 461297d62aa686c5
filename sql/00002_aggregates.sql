-- Rollups for GET /v1/series: TimescaleDB continuous aggregates, built hierarchically
-- (daily on hourly, monthly on daily) so the not-yet-materialized tail of a coarse
-- aggregate is read from the finer one and never from a month of raw rows.
--
-- Each aggregate keeps sums weighted by sample_count beside the averages, so a rollup
-- of a rollup is exact: avg = sum / sample_count at every level. (The sums are float8,
-- as on the raw path: numeric sums would make the two agree to the last bit on any
-- data, but tripled the raw path's time; they agree to about 1e-15 instead.)
--
-- Daily and monthly buckets begin at local midnight in the zone named by the session
-- setting sungrow.tz (`sungrow migrate` sets it from SUNGROW_TZ; default UTC). The zone
-- is recorded in sungrow_aggregate_zone so serve can tell when SUNGROW_TZ has changed
-- since and refuse to serve buckets in the wrong zone.
--
-- On plain PostgreSQL this migration changes nothing: series are computed from
-- sungrow_samples. The views are created WITH NO DATA, which TimescaleDB allows inside a
-- transaction and a DO block (only WITH DATA must run at top level, timescaledb#2389);
-- run `sungrow refresh` once afterwards to materialize existing history.
--
-- sqlc cannot see objects created by EXECUTE: sql/sqlc/aggregates.sql mirrors them.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    zone text := coalesce(nullif(current_setting('sungrow.tz', true), ''), 'UTC');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = zone) THEN
        RAISE EXCEPTION 'sungrow.tz=%: not a time zone name this server knows', zone;
    END IF;

    CREATE TABLE sungrow_aggregate_zone (
        zone text NOT NULL,
        one  boolean PRIMARY KEY DEFAULT true CHECK (one)
    );
    INSERT INTO sungrow_aggregate_zone (zone) VALUES (zone);

    -- Hourly buckets are UTC hours: they are the same in every whole-hour zone, so a
    -- changed SUNGROW_TZ never invalidates them.
    EXECUTE $v$
    CREATE MATERIALIZED VIEW sungrow_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT device_id,
           time_bucket(INTERVAL '1 hour', ts) AS bucket,
           sum(pv_power_w * sample_count) / sum(sample_count) AS avg_pv_power_w,
           max(pv_power_w) AS max_pv_power_w,
           sum(battery_power_w * sample_count) / sum(sample_count) AS avg_battery_power_w,
           sum(battery_soc_pct * sample_count) / sum(sample_count) AS avg_battery_soc_pct,
           sum(load_power_w * sample_count) / sum(sample_count) AS avg_load_power_w,
           sum(export_power_w * sample_count) / sum(sample_count) AS avg_export_power_w,
           sum(sample_count)::bigint AS sample_count,
           sum(pv_power_w * sample_count) AS sum_pv_power_w,
           sum(battery_power_w * sample_count) AS sum_battery_power_w,
           sum(battery_soc_pct * sample_count) AS sum_battery_soc_pct,
           sum(load_power_w * sample_count) AS sum_load_power_w,
           sum(export_power_w * sample_count) AS sum_export_power_w
    FROM sungrow_samples
    GROUP BY device_id, bucket
    WITH NO DATA
    $v$;

    EXECUTE format($v$
    CREATE MATERIALIZED VIEW sungrow_daily
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT device_id,
           time_bucket(INTERVAL '1 day', bucket, %1$L) AS bucket,
           sum(sum_pv_power_w) / sum(sample_count) AS avg_pv_power_w,
           max(max_pv_power_w) AS max_pv_power_w,
           sum(sum_battery_power_w) / sum(sample_count) AS avg_battery_power_w,
           sum(sum_battery_soc_pct) / sum(sample_count) AS avg_battery_soc_pct,
           sum(sum_load_power_w) / sum(sample_count) AS avg_load_power_w,
           sum(sum_export_power_w) / sum(sample_count) AS avg_export_power_w,
           sum(sample_count)::bigint AS sample_count,
           sum(sum_pv_power_w) AS sum_pv_power_w,
           sum(sum_battery_power_w) AS sum_battery_power_w,
           sum(sum_battery_soc_pct) AS sum_battery_soc_pct,
           sum(sum_load_power_w) AS sum_load_power_w,
           sum(sum_export_power_w) AS sum_export_power_w
    FROM sungrow_hourly
    GROUP BY device_id, time_bucket(INTERVAL '1 day', bucket, %1$L)
    WITH NO DATA
    $v$, zone);

    EXECUTE format($v$
    CREATE MATERIALIZED VIEW sungrow_monthly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT device_id,
           time_bucket(INTERVAL '1 month', bucket, %1$L) AS bucket,
           sum(sum_pv_power_w) / sum(sample_count) AS avg_pv_power_w,
           max(max_pv_power_w) AS max_pv_power_w,
           sum(sum_battery_power_w) / sum(sample_count) AS avg_battery_power_w,
           sum(sum_battery_soc_pct) / sum(sample_count) AS avg_battery_soc_pct,
           sum(sum_load_power_w) / sum(sample_count) AS avg_load_power_w,
           sum(sum_export_power_w) / sum(sample_count) AS avg_export_power_w,
           sum(sample_count)::bigint AS sample_count,
           sum(sum_pv_power_w) AS sum_pv_power_w,
           sum(sum_battery_power_w) AS sum_battery_power_w,
           sum(sum_battery_soc_pct) AS sum_battery_soc_pct,
           sum(sum_load_power_w) AS sum_load_power_w,
           sum(sum_export_power_w) AS sum_export_power_w
    FROM sungrow_daily
    GROUP BY device_id, time_bucket(INTERVAL '1 month', bucket, %1$L)
    WITH NO DATA
    $v$, zone);

    PERFORM add_continuous_aggregate_policy('sungrow_hourly',
        start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 hour',
        schedule_interval => INTERVAL '1 hour');
    PERFORM add_continuous_aggregate_policy('sungrow_daily',
        start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 day',
        schedule_interval => INTERVAL '1 day');
    PERFORM add_continuous_aggregate_policy('sungrow_monthly',
        start_offset => INTERVAL '3 months', end_offset => INTERVAL '1 month',
        schedule_interval => INTERVAL '1 day');
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP MATERIALIZED VIEW IF EXISTS sungrow_monthly;
DROP MATERIALIZED VIEW IF EXISTS sungrow_daily;
DROP MATERIALIZED VIEW IF EXISTS sungrow_hourly;
DROP TABLE IF EXISTS sungrow_aggregate_zone;
