-- Energy for GET /v1/series: rebuilds the three continuous aggregates of migration 2
-- with the sums energy needs, at every level, beside everything they held before.
--
-- A sample stands for sample_count × the device's sample interval at its powers, so
-- the energy of a bucket is a plain sum the aggregates can hold and roll up exactly:
--   sum_grid_import_w       Σ greatest(-export_power_w, 0)  · sample_count
--   sum_grid_export_w       Σ greatest(export_power_w, 0)   · sample_count
--   sum_battery_charge_w    Σ greatest(battery_power_w, 0)  · sample_count
--   sum_battery_discharge_w Σ greatest(-battery_power_w, 0) · sample_count
-- (sum_pv_power_w and sum_load_power_w were there already), in W·samples; kWh =
-- sum × interval_s / 3 600 000 is applied when reading, because the interval is
-- configuration (SAMPLE_INTERVAL_S, per device) and not baked into the aggregates.
-- Flows are split by sign per sample, before summing, so opposite flows inside one
-- bucket never net out.
--
-- The inverter's own counter, pv_daily_kwh, restarts every local day: hourly keeps the
-- hour's max_pv_daily_kwh, daily the day's maximum of those as pv_inverter_kwh, and
-- monthly sums the daily maxima. NULL where no sample carries the counter.
--
-- Same zone handling as migration 2: daily and monthly buckets begin at local midnight
-- in the zone of the session setting sungrow.tz (set by `sungrow migrate` from
-- SUNGROW_TZ), recorded in sungrow_aggregate_zone. The views are created WITH NO DATA
-- (allowed inside goose's transaction); `sungrow migrate` materializes them right after
-- the transaction, so every frame is fast again as soon as it returns. No raw sample is
-- touched. On plain PostgreSQL this migration changes nothing.
--
-- Down restores migration 2's views exactly (and `sungrow migrate down` refreshes them).
-- sqlc cannot see objects created by EXECUTE: sql/sqlc/aggregates.sql mirrors them.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    tz text := coalesce(nullif(current_setting('sungrow.tz', true), ''), 'UTC');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = tz) THEN
        RAISE EXCEPTION 'sungrow.tz=%: not a time zone name this server knows', tz;
    END IF;

    -- Dropping a continuous aggregate drops its policy and materialized rows too.
    DROP MATERIALIZED VIEW sungrow_monthly;
    DROP MATERIALIZED VIEW sungrow_daily;
    DROP MATERIALIZED VIEW sungrow_hourly;
    UPDATE sungrow_aggregate_zone SET zone = tz;

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
           sum(export_power_w * sample_count) AS sum_export_power_w,
           sum(greatest(-export_power_w, 0) * sample_count) AS sum_grid_import_w,
           sum(greatest(export_power_w, 0) * sample_count) AS sum_grid_export_w,
           sum(greatest(battery_power_w, 0) * sample_count) AS sum_battery_charge_w,
           sum(greatest(-battery_power_w, 0) * sample_count) AS sum_battery_discharge_w,
           max(pv_daily_kwh) AS max_pv_daily_kwh
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
           sum(sum_export_power_w) AS sum_export_power_w,
           sum(sum_grid_import_w) AS sum_grid_import_w,
           sum(sum_grid_export_w) AS sum_grid_export_w,
           sum(sum_battery_charge_w) AS sum_battery_charge_w,
           sum(sum_battery_discharge_w) AS sum_battery_discharge_w,
           max(max_pv_daily_kwh) AS pv_inverter_kwh
    FROM sungrow_hourly
    GROUP BY device_id, time_bucket(INTERVAL '1 day', bucket, %1$L)
    WITH NO DATA
    $v$, tz);

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
           sum(sum_export_power_w) AS sum_export_power_w,
           sum(sum_grid_import_w) AS sum_grid_import_w,
           sum(sum_grid_export_w) AS sum_grid_export_w,
           sum(sum_battery_charge_w) AS sum_battery_charge_w,
           sum(sum_battery_discharge_w) AS sum_battery_discharge_w,
           sum(pv_inverter_kwh) AS pv_inverter_kwh
    FROM sungrow_daily
    GROUP BY device_id, time_bucket(INTERVAL '1 month', bucket, %1$L)
    WITH NO DATA
    $v$, tz);

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
-- +goose StatementBegin
DO $$
DECLARE
    tz text := coalesce(nullif(current_setting('sungrow.tz', true), ''), 'UTC');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = tz) THEN
        RAISE EXCEPTION 'sungrow.tz=%: not a time zone name this server knows', tz;
    END IF;

    DROP MATERIALIZED VIEW sungrow_monthly;
    DROP MATERIALIZED VIEW sungrow_daily;
    DROP MATERIALIZED VIEW sungrow_hourly;
    UPDATE sungrow_aggregate_zone SET zone = tz;

    -- From here on exactly migration 2's views and policies.
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
    $v$, tz);

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
    $v$, tz);

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
