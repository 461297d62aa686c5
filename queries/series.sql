-- name: SeriesHourly :many
-- Series buckets for GET /v1/series. Every series query returns the same columns:
-- averages weighted by sample_count, the maximum PV power, and the bucket's summed
-- sample_count. Ranges are half-open [from_ts, to_ts) and aligned to the buckets.
SELECT bucket, avg_pv_power_w, max_pv_power_w, avg_battery_power_w, avg_battery_soc_pct,
       avg_load_power_w, avg_export_power_w, sample_count
FROM sungrow_hourly
WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
ORDER BY bucket;

-- name: SeriesDaily :many
SELECT bucket, avg_pv_power_w, max_pv_power_w, avg_battery_power_w, avg_battery_soc_pct,
       avg_load_power_w, avg_export_power_w, sample_count
FROM sungrow_daily
WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
ORDER BY bucket;

-- name: SeriesMonthly :many
SELECT bucket, avg_pv_power_w, max_pv_power_w, avg_battery_power_w, avg_battery_soc_pct,
       avg_load_power_w, avg_export_power_w, sample_count
FROM sungrow_monthly
WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
ORDER BY bucket;

-- name: SeriesRollupHourly :many
-- Daily or monthly buckets in any zone, summed from the hourly aggregate: exact for
-- whole-hour zones, used when the daily/monthly aggregates were built in another zone.
SELECT date_trunc(@unit::text, bucket, @zone::text)::timestamptz AS bucket,
       (sum(sum_pv_power_w) / sum(sample_count))::float8 AS avg_pv_power_w,
       max(max_pv_power_w)::float8 AS max_pv_power_w,
       (sum(sum_battery_power_w) / sum(sample_count))::float8 AS avg_battery_power_w,
       (sum(sum_battery_soc_pct) / sum(sample_count))::float8 AS avg_battery_soc_pct,
       (sum(sum_load_power_w) / sum(sample_count))::float8 AS avg_load_power_w,
       (sum(sum_export_power_w) / sum(sample_count))::float8 AS avg_export_power_w,
       sum(sample_count)::bigint AS sample_count
FROM sungrow_hourly
WHERE device_id = @device_id AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
GROUP BY 1
ORDER BY 1;

-- name: SeriesRaw :many
-- The raw path (plain PostgreSQL, or no aggregates): the same numbers from the samples.
-- Hours are UTC hours, as in the hourly aggregate; days and months begin in @zone.
SELECT date_trunc(@unit::text, ts, @zone::text)::timestamptz AS bucket,
       (sum(pv_power_w * sample_count) / sum(sample_count))::float8 AS avg_pv_power_w,
       max(pv_power_w)::float8 AS max_pv_power_w,
       (sum(battery_power_w * sample_count) / sum(sample_count))::float8 AS avg_battery_power_w,
       (sum(battery_soc_pct * sample_count) / sum(sample_count))::float8 AS avg_battery_soc_pct,
       (sum(load_power_w * sample_count) / sum(sample_count))::float8 AS avg_load_power_w,
       (sum(export_power_w * sample_count) / sum(sample_count))::float8 AS avg_export_power_w,
       sum(sample_count)::bigint AS sample_count
FROM sungrow_samples
WHERE device_id = @device_id AND ts >= @from_ts::timestamptz AND ts < @to_ts::timestamptz
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
-- (sqlc mis-rewrites named parameters in CALL, hence $n; the window bounds are typed
-- "any" by TimescaleDB, so they need their casts, which leaves them unnamed.)
CALL refresh_continuous_aggregate($1, $2::timestamptz, $3::timestamptz);

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
