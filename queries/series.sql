-- name: SeriesHourly :many
-- Series buckets for GET /v1/series. Every series query returns the same columns:
-- averages weighted by sample_count, the maximum PV power, the bucket's summed
-- sample_count, the energy sums in W·samples (the caller multiplies by the device's
-- sample interval) and pv_inverter_kwh, the sum over the bucket's local days of each
-- day's largest pv_daily_kwh: NaN on hourly buckets and where no sample carries the
-- counter (NaN, not NULL, because sqlc cannot type a nullable sum over a subquery, and
-- the rows of all series queries must have one type). Ranges are half-open
-- [from_ts, to_ts) and aligned to the buckets.
SELECT bucket, avg_pv_power_w, max_pv_power_w, avg_battery_power_w, avg_battery_soc_pct,
       avg_load_power_w, avg_export_power_w, sample_count,
       sum_pv_power_w, sum_load_power_w, sum_grid_import_w, sum_grid_export_w,
       sum_battery_charge_w, sum_battery_discharge_w, 'NaN'::float8 AS pv_inverter_kwh
FROM sungrow_hourly
WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
ORDER BY bucket;

-- name: SeriesDaily :many
SELECT bucket, avg_pv_power_w, max_pv_power_w, avg_battery_power_w, avg_battery_soc_pct,
       avg_load_power_w, avg_export_power_w, sample_count,
       sum_pv_power_w, sum_load_power_w, sum_grid_import_w, sum_grid_export_w,
       sum_battery_charge_w, sum_battery_discharge_w, coalesce(pv_inverter_kwh, 'NaN')::float8 AS pv_inverter_kwh
FROM sungrow_daily
WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
ORDER BY bucket;

-- name: SeriesMonthly :many
SELECT bucket, avg_pv_power_w, max_pv_power_w, avg_battery_power_w, avg_battery_soc_pct,
       avg_load_power_w, avg_export_power_w, sample_count,
       sum_pv_power_w, sum_load_power_w, sum_grid_import_w, sum_grid_export_w,
       sum_battery_charge_w, sum_battery_discharge_w, coalesce(pv_inverter_kwh, 'NaN')::float8 AS pv_inverter_kwh
FROM sungrow_monthly
WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
ORDER BY bucket;

-- name: SeriesRollupHourly :many
-- Daily or monthly buckets in any zone, summed from the hourly aggregate: exact for
-- whole-hour zones, used when the daily/monthly aggregates were built in another zone.
-- Local days first, for the inverter counter's daily maximum.
WITH days AS (
    SELECT date_trunc('day', bucket, @zone::text) AS day,
           sum(sum_pv_power_w) AS sum_pv_power_w, max(max_pv_power_w) AS max_pv_power_w,
           sum(sum_battery_power_w) AS sum_battery_power_w,
           sum(sum_battery_soc_pct) AS sum_battery_soc_pct,
           sum(sum_load_power_w) AS sum_load_power_w, sum(sum_export_power_w) AS sum_export_power_w,
           sum(sample_count) AS sample_count,
           sum(sum_grid_import_w) AS sum_grid_import_w, sum(sum_grid_export_w) AS sum_grid_export_w,
           sum(sum_battery_charge_w) AS sum_battery_charge_w,
           sum(sum_battery_discharge_w) AS sum_battery_discharge_w,
           max(max_pv_daily_kwh) AS pv_inverter_kwh
    FROM sungrow_hourly
    WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
    GROUP BY 1
)
SELECT date_trunc(@unit::text, day, @zone::text)::timestamptz AS bucket,
       (sum(sum_pv_power_w) / sum(sample_count))::float8 AS avg_pv_power_w,
       max(max_pv_power_w)::float8 AS max_pv_power_w,
       (sum(sum_battery_power_w) / sum(sample_count))::float8 AS avg_battery_power_w,
       (sum(sum_battery_soc_pct) / sum(sample_count))::float8 AS avg_battery_soc_pct,
       (sum(sum_load_power_w) / sum(sample_count))::float8 AS avg_load_power_w,
       (sum(sum_export_power_w) / sum(sample_count))::float8 AS avg_export_power_w,
       sum(sample_count)::bigint AS sample_count,
       sum(sum_pv_power_w)::float8 AS sum_pv_power_w,
       sum(sum_load_power_w)::float8 AS sum_load_power_w,
       sum(sum_grid_import_w)::float8 AS sum_grid_import_w,
       sum(sum_grid_export_w)::float8 AS sum_grid_export_w,
       sum(sum_battery_charge_w)::float8 AS sum_battery_charge_w,
       sum(sum_battery_discharge_w)::float8 AS sum_battery_discharge_w,
       coalesce(sum(pv_inverter_kwh), 'NaN')::float8 AS pv_inverter_kwh
FROM days
GROUP BY 1
ORDER BY 1;

-- name: SeriesRawHourly :many
-- The raw path (plain PostgreSQL, or no aggregates): the same numbers from the samples.
-- Hours are truncated in @zone (UTC, as in the hourly aggregate, for whole-hour zones).
SELECT date_trunc('hour', ts, @zone::text)::timestamptz AS bucket,
       (sum(pv_power_w * sample_count) / sum(sample_count))::float8 AS avg_pv_power_w,
       max(pv_power_w)::float8 AS max_pv_power_w,
       (sum(battery_power_w * sample_count) / sum(sample_count))::float8 AS avg_battery_power_w,
       (sum(battery_soc_pct * sample_count) / sum(sample_count))::float8 AS avg_battery_soc_pct,
       (sum(load_power_w * sample_count) / sum(sample_count))::float8 AS avg_load_power_w,
       (sum(export_power_w * sample_count) / sum(sample_count))::float8 AS avg_export_power_w,
       sum(sample_count)::bigint AS sample_count,
       sum(pv_power_w * sample_count)::float8 AS sum_pv_power_w,
       sum(load_power_w * sample_count)::float8 AS sum_load_power_w,
       sum(greatest(-export_power_w, 0) * sample_count)::float8 AS sum_grid_import_w,
       sum(greatest(export_power_w, 0) * sample_count)::float8 AS sum_grid_export_w,
       sum(greatest(battery_power_w, 0) * sample_count)::float8 AS sum_battery_charge_w,
       sum(greatest(-battery_power_w, 0) * sample_count)::float8 AS sum_battery_discharge_w,
       'NaN'::float8 AS pv_inverter_kwh
FROM sungrow_samples
WHERE device_id = @device_id AND ts >= @from_ts::timestamptz AND ts < @to_ts::timestamptz
GROUP BY 1
ORDER BY 1;

-- name: SeriesRaw :many
-- Days or months (@unit) beginning in @zone, from the samples: local days first, for
-- the inverter counter's daily maximum, then summed into the buckets.
WITH days AS (
    SELECT date_trunc('day', ts, @zone::text) AS day,
           sum(pv_power_w * sample_count) AS sum_pv_power_w, max(pv_power_w) AS max_pv_power_w,
           sum(battery_power_w * sample_count) AS sum_battery_power_w,
           sum(battery_soc_pct * sample_count) AS sum_battery_soc_pct,
           sum(load_power_w * sample_count) AS sum_load_power_w,
           sum(export_power_w * sample_count) AS sum_export_power_w,
           sum(sample_count) AS sample_count,
           sum(greatest(-export_power_w, 0) * sample_count) AS sum_grid_import_w,
           sum(greatest(export_power_w, 0) * sample_count) AS sum_grid_export_w,
           sum(greatest(battery_power_w, 0) * sample_count) AS sum_battery_charge_w,
           sum(greatest(-battery_power_w, 0) * sample_count) AS sum_battery_discharge_w,
           max(pv_daily_kwh) AS pv_inverter_kwh
    FROM sungrow_samples
    WHERE device_id = @device_id AND ts >= @from_ts::timestamptz AND ts < @to_ts::timestamptz
    GROUP BY 1
)
SELECT date_trunc(@unit::text, day, @zone::text)::timestamptz AS bucket,
       (sum(sum_pv_power_w) / sum(sample_count))::float8 AS avg_pv_power_w,
       max(max_pv_power_w)::float8 AS max_pv_power_w,
       (sum(sum_battery_power_w) / sum(sample_count))::float8 AS avg_battery_power_w,
       (sum(sum_battery_soc_pct) / sum(sample_count))::float8 AS avg_battery_soc_pct,
       (sum(sum_load_power_w) / sum(sample_count))::float8 AS avg_load_power_w,
       (sum(sum_export_power_w) / sum(sample_count))::float8 AS avg_export_power_w,
       sum(sample_count)::bigint AS sample_count,
       sum(sum_pv_power_w)::float8 AS sum_pv_power_w,
       sum(sum_load_power_w)::float8 AS sum_load_power_w,
       sum(sum_grid_import_w)::float8 AS sum_grid_import_w,
       sum(sum_grid_export_w)::float8 AS sum_grid_export_w,
       sum(sum_battery_charge_w)::float8 AS sum_battery_charge_w,
       sum(sum_battery_discharge_w)::float8 AS sum_battery_discharge_w,
       coalesce(sum(pv_inverter_kwh), 'NaN')::float8 AS pv_inverter_kwh
FROM days
GROUP BY 1
ORDER BY 1;

-- name: AggregatesPresent :one
SELECT (to_regclass('sungrow_hourly') IS NOT NULL
        AND to_regclass('sungrow_daily') IS NOT NULL
        AND to_regclass('sungrow_monthly') IS NOT NULL
        AND to_regclass('sungrow_aggregate_zone') IS NOT NULL)::boolean AS present;

-- name: AggregateZone :one
SELECT zone FROM sungrow_aggregate_zone;

-- name: RefreshAggregate :exec
-- Must run outside a transaction block (TimescaleDB commits inside it). NULL window
-- bounds mean "from the beginning" / "to the end".
-- force recomputes every bucket of the window, not only those the invalidation log
-- names: what keeps timescale/timescaledb#10296 from dropping zone buckets.
-- (sqlc mis-rewrites named parameters in CALL, hence $n; the window bounds are typed
-- "any" by TimescaleDB, so they need their casts, which leaves them unnamed.)
CALL refresh_continuous_aggregate($1, $2::timestamptz, $3::timestamptz, force => $4::boolean);

-- name: TryRefreshLock :one
-- A session advisory lock, so only one instance refreshes at a time.
SELECT pg_try_advisory_lock(@key::bigint) AS locked;

-- name: RefreshLock :exec
-- The same lock, waited for: `sungrow refresh` queues behind a running refresher.
SELECT pg_advisory_lock(@key::bigint);

-- name: RefreshUnlock :exec
SELECT pg_advisory_unlock(@key::bigint);

-- name: SetConfig :exec
SELECT set_config(@name::text, @value::text, false);

-- name: SetLocalConfig :exec
-- A setting for the rest of the transaction only.
SELECT set_config(@name::text, @value::text, true);
