-- Verification (`sungrow verify`, serve's audit): each stored level beside what the level
-- below adds up to, bucket by bucket, read in one statement so both sides come from one
-- snapshot. Every query returns the same shape: the bucket's device and start, and the
-- level's values (stored) and the level below's (expected) as float8 arrays in one fixed
-- order (series/verify.go names them); NULL where that side has no row, NaN where no
-- sample carries the inverter counter. The rollup of the level below is spelled as in
-- the aggregate's definition (sql/00004_energy.sql), with date_trunc in the zone standing
-- in for time_bucket, which starts days and months at the same local midnights.
-- Ranges are half-open [from_ts, to_ts) and aligned to the level's buckets by the caller.

-- name: VerifyMonthly :many
-- sungrow_monthly against the sum of its local days in sungrow_daily.
WITH stored AS (
    SELECT device_id, bucket, ARRAY[sample_count::float8, max_pv_power_w, sum_pv_power_w, sum_battery_power_w, sum_battery_soc_pct, sum_load_power_w, sum_export_power_w, sum_grid_import_w, sum_grid_export_w, sum_battery_charge_w, sum_battery_discharge_w, coalesce(pv_inverter_kwh, 'NaN')]::float8[] AS v
    FROM sungrow_monthly
    WHERE bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
), expected AS (
    SELECT device_id, date_trunc('month', bucket, @zone::text)::timestamptz AS bucket,
           ARRAY[sum(sample_count)::float8, max(max_pv_power_w), sum(sum_pv_power_w), sum(sum_battery_power_w),
                 sum(sum_battery_soc_pct), sum(sum_load_power_w), sum(sum_export_power_w), sum(sum_grid_import_w),
                 sum(sum_grid_export_w), sum(sum_battery_charge_w), sum(sum_battery_discharge_w),
                 coalesce(sum(pv_inverter_kwh), 'NaN')]::float8[] AS v
    FROM sungrow_daily
    WHERE bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
    GROUP BY 1, 2
)
SELECT coalesce(s.device_id, e.device_id)::text AS device_id,
       coalesce(s.bucket, e.bucket)::timestamptz AS bucket,
       s.v AS stored, e.v AS expected
FROM stored s FULL JOIN expected e ON e.device_id = s.device_id AND e.bucket = s.bucket
ORDER BY 1, 2;

-- name: VerifyDaily :many
-- sungrow_daily against the sum of its hours in sungrow_hourly.
WITH stored AS (
    SELECT device_id, bucket, ARRAY[sample_count::float8, max_pv_power_w, sum_pv_power_w, sum_battery_power_w, sum_battery_soc_pct, sum_load_power_w, sum_export_power_w, sum_grid_import_w, sum_grid_export_w, sum_battery_charge_w, sum_battery_discharge_w, coalesce(pv_inverter_kwh, 'NaN')]::float8[] AS v
    FROM sungrow_daily
    WHERE bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
), expected AS (
    SELECT device_id, date_trunc('day', bucket, @zone::text)::timestamptz AS bucket,
           ARRAY[sum(sample_count)::float8, max(max_pv_power_w), sum(sum_pv_power_w), sum(sum_battery_power_w),
                 sum(sum_battery_soc_pct), sum(sum_load_power_w), sum(sum_export_power_w), sum(sum_grid_import_w),
                 sum(sum_grid_export_w), sum(sum_battery_charge_w), sum(sum_battery_discharge_w),
                 coalesce(max(max_pv_daily_kwh), 'NaN')]::float8[] AS v
    FROM sungrow_hourly
    WHERE bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
    GROUP BY 1, 2
)
SELECT coalesce(s.device_id, e.device_id)::text AS device_id,
       coalesce(s.bucket, e.bucket)::timestamptz AS bucket,
       s.v AS stored, e.v AS expected
FROM stored s FULL JOIN expected e ON e.device_id = s.device_id AND e.bucket = s.bucket
ORDER BY 1, 2;

-- name: VerifyHourly :many
-- sungrow_hourly (UTC hours) against the raw samples.
WITH stored AS (
    SELECT device_id, bucket, ARRAY[sample_count::float8, max_pv_power_w, sum_pv_power_w, sum_battery_power_w, sum_battery_soc_pct, sum_load_power_w, sum_export_power_w, sum_grid_import_w, sum_grid_export_w, sum_battery_charge_w, sum_battery_discharge_w, coalesce(max_pv_daily_kwh, 'NaN')]::float8[] AS v
    FROM sungrow_hourly
    WHERE bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
), expected AS (
    SELECT device_id, date_trunc('hour', ts, 'UTC')::timestamptz AS bucket,
           ARRAY[sum(sample_count)::float8, max(pv_power_w), sum(pv_power_w * sample_count),
                 sum(battery_power_w * sample_count), sum(battery_soc_pct * sample_count),
                 sum(load_power_w * sample_count), sum(export_power_w * sample_count),
                 sum(greatest(-export_power_w, 0) * sample_count), sum(greatest(export_power_w, 0) * sample_count),
                 sum(greatest(battery_power_w, 0) * sample_count), sum(greatest(-battery_power_w, 0) * sample_count),
                 coalesce(max(pv_daily_kwh), 'NaN')]::float8[] AS v
    FROM sungrow_samples
    WHERE ts >= @from_ts::timestamptz AND ts < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
    GROUP BY 1, 2
)
SELECT coalesce(s.device_id, e.device_id)::text AS device_id,
       coalesce(s.bucket, e.bucket)::timestamptz AS bucket,
       s.v AS stored, e.v AS expected
FROM stored s FULL JOIN expected e ON e.device_id = s.device_id AND e.bucket = s.bucket
ORDER BY 1, 2;

-- name: OldestUncompressedChunk :many
-- Where the chunks of sungrow_samples that compression has not reached yet begin (no
-- row: every chunk is compressed, or there are none): verify checks the hours over them
-- against the raw samples by default, since that is where they still change.
SELECT min(range_start)::timestamptz AS range_start
FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'sungrow_samples' AND NOT is_compressed
HAVING min(range_start) IS NOT NULL;
