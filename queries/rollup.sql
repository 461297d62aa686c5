-- Plain PostgreSQL's 15-minute rollup (sql/00008_rollup.sql). Buckets are
-- date_bin('15 minutes', ts, '2000-01-01T00:00:00Z'): UTC-aligned quarter hours.

-- name: RollupPresent :one
SELECT (to_regclass('sungrow_rollup') IS NOT NULL)::boolean AS present;

-- name: InsertSamplesRollup :one
-- InsertSamples on plain PostgreSQL: the rows the insert really stored (RETURNING
-- skips every (device_id, ts) already there, also one a concurrent batch committed
-- first) are added to their buckets in the same statement, so a re-sent or overlapping
-- batch counts each stored sample once; so are their local days (sungrow_rollup_daily,
-- in the zone of sungrow_rollup_zone: none while it has no row). Buckets are upserted
-- in key order, so two batches never wait on each other's buckets in a cycle. Returns
-- the samples stored.
WITH ins AS (
    INSERT INTO sungrow_samples (
        device_id, ts, pv_power_w, pv_daily_kwh, battery_power_w, battery_soc_pct,
        battery_temp_c, load_power_w, export_power_w, sample_count
    )
    SELECT @device_id::text,
           unnest(@ts::timestamptz[]),
           unnest(@pv_power_w::float8[]),
           NULLIF(unnest(@pv_daily_kwh::float8[]), 'NaN'::float8),
           unnest(@battery_power_w::float8[]),
           unnest(@battery_soc_pct::float8[]),
           NULLIF(unnest(@battery_temp_c::float8[]), 'NaN'::float8),
           unnest(@load_power_w::float8[]),
           unnest(@export_power_w::float8[]),
           unnest(@sample_count::int4[])
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING *
), quarters AS (
    SELECT device_id, date_bin('15 minutes', ts, '2000-01-01T00:00:00Z') AS bucket,
           sum(sample_count) AS sample_count,
           sum(pv_power_w * sample_count) AS sum_pv_power_w, max(pv_power_w) AS max_pv_power_w,
           sum(battery_power_w * sample_count) AS sum_battery_power_w,
           sum(battery_soc_pct * sample_count) AS sum_battery_soc_pct,
           sum(load_power_w * sample_count) AS sum_load_power_w,
           sum(export_power_w * sample_count) AS sum_export_power_w,
           sum(greatest(-export_power_w, 0) * sample_count) AS sum_grid_import_w,
           sum(greatest(export_power_w, 0) * sample_count) AS sum_grid_export_w,
           sum(greatest(battery_power_w, 0) * sample_count) AS sum_battery_charge_w,
           sum(greatest(-battery_power_w, 0) * sample_count) AS sum_battery_discharge_w,
           max(pv_daily_kwh) AS max_pv_daily_kwh
    FROM ins
    GROUP BY 1, 2
), added AS (
    INSERT INTO sungrow_rollup AS r
    SELECT * FROM quarters
    ORDER BY 1, 2
    ON CONFLICT (device_id, bucket) DO UPDATE
    SET sample_count = r.sample_count + excluded.sample_count,
        sum_pv_power_w = r.sum_pv_power_w + excluded.sum_pv_power_w,
        max_pv_power_w = greatest(r.max_pv_power_w, excluded.max_pv_power_w),
        sum_battery_power_w = r.sum_battery_power_w + excluded.sum_battery_power_w,
        sum_battery_soc_pct = r.sum_battery_soc_pct + excluded.sum_battery_soc_pct,
        sum_load_power_w = r.sum_load_power_w + excluded.sum_load_power_w,
        sum_export_power_w = r.sum_export_power_w + excluded.sum_export_power_w,
        sum_grid_import_w = r.sum_grid_import_w + excluded.sum_grid_import_w,
        sum_grid_export_w = r.sum_grid_export_w + excluded.sum_grid_export_w,
        sum_battery_charge_w = r.sum_battery_charge_w + excluded.sum_battery_charge_w,
        sum_battery_discharge_w = r.sum_battery_discharge_w + excluded.sum_battery_discharge_w,
        max_pv_daily_kwh = greatest(r.max_pv_daily_kwh, excluded.max_pv_daily_kwh)
    RETURNING 1
), added_days AS (
    -- The same quarter hours into their local days, in the zone sungrow_rollup_daily
    -- is kept in. Only once every quarter hour is upserted (the count reads them all
    -- first): a batch locks quarter hours, then days, in the order device removal
    -- deletes them, so the two never wait on each other in a cycle.
    INSERT INTO sungrow_rollup_daily AS r
    SELECT device_id, date_trunc('day', bucket, z.zone),
           sum(sample_count), sum(sum_pv_power_w), max(max_pv_power_w),
           sum(sum_battery_power_w), sum(sum_battery_soc_pct),
           sum(sum_load_power_w), sum(sum_export_power_w),
           sum(sum_grid_import_w), sum(sum_grid_export_w),
           sum(sum_battery_charge_w), sum(sum_battery_discharge_w),
           max(max_pv_daily_kwh)
    FROM quarters, sungrow_rollup_zone z
    WHERE (SELECT count(*) FROM added) >= 0
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (device_id, bucket) DO UPDATE
    SET sample_count = r.sample_count + excluded.sample_count,
        sum_pv_power_w = r.sum_pv_power_w + excluded.sum_pv_power_w,
        max_pv_power_w = greatest(r.max_pv_power_w, excluded.max_pv_power_w),
        sum_battery_power_w = r.sum_battery_power_w + excluded.sum_battery_power_w,
        sum_battery_soc_pct = r.sum_battery_soc_pct + excluded.sum_battery_soc_pct,
        sum_load_power_w = r.sum_load_power_w + excluded.sum_load_power_w,
        sum_export_power_w = r.sum_export_power_w + excluded.sum_export_power_w,
        sum_grid_import_w = r.sum_grid_import_w + excluded.sum_grid_import_w,
        sum_grid_export_w = r.sum_grid_export_w + excluded.sum_grid_export_w,
        sum_battery_charge_w = r.sum_battery_charge_w + excluded.sum_battery_charge_w,
        sum_battery_discharge_w = r.sum_battery_discharge_w + excluded.sum_battery_discharge_w,
        max_pv_daily_kwh = greatest(r.max_pv_daily_kwh, excluded.max_pv_daily_kwh)
)
SELECT count(*)::bigint AS inserted FROM ins;

-- name: SeriesRollup :many
-- The rollup path: hours (@unit 'hour', truncated in @zone, as SeriesRawHourly) summed
-- from the quarter hours; days, or months (beginning in @zone) summed from days, read
-- from sungrow_rollup_daily where it is kept in @zone, else summed from the quarter
-- hours, which nest in them. Local days first (hours for 'hour'), for the inverter
-- counter's daily maximum.
WITH daily AS (
    SELECT @unit::text <> 'hour' AND EXISTS (SELECT 1 FROM sungrow_rollup_zone WHERE zone = @zone::text) AS kept
), parts AS (
    SELECT bucket AS part, sum_pv_power_w, max_pv_power_w, sum_battery_power_w, sum_battery_soc_pct,
           sum_load_power_w, sum_export_power_w, sample_count, sum_grid_import_w, sum_grid_export_w,
           sum_battery_charge_w, sum_battery_discharge_w, max_pv_daily_kwh AS pv_inverter_kwh
    FROM sungrow_rollup_daily
    WHERE (SELECT kept FROM daily)
      AND device_id = @device_id::text AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
    UNION ALL
    SELECT date_trunc(CASE WHEN @unit::text = 'hour' THEN 'hour' ELSE 'day' END, bucket, @zone::text),
           sum(sum_pv_power_w), max(max_pv_power_w), sum(sum_battery_power_w), sum(sum_battery_soc_pct),
           sum(sum_load_power_w), sum(sum_export_power_w), sum(sample_count),
           sum(sum_grid_import_w), sum(sum_grid_export_w),
           sum(sum_battery_charge_w), sum(sum_battery_discharge_w), max(max_pv_daily_kwh)
    FROM sungrow_rollup
    WHERE NOT (SELECT kept FROM daily)
      AND device_id = @device_id::text AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
    GROUP BY 1
)
SELECT date_trunc(@unit::text, part, @zone::text)::timestamptz AS bucket,
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
       (CASE WHEN @unit::text = 'hour' THEN 'NaN' ELSE coalesce(sum(pv_inverter_kwh), 'NaN') END)::float8 AS pv_inverter_kwh
FROM parts
GROUP BY 1
ORDER BY 1;

-- name: DeleteDeviceRollup :exec
-- With DeleteDeviceSamples: a device's samples all went, so do its quarter hours, and
-- then (DeleteDeviceRollupDays, in this order, as ingest locks them) its days.
DELETE FROM sungrow_rollup WHERE device_id = @device_id::text;

-- name: DeleteDeviceRollupDays :exec
DELETE FROM sungrow_rollup_daily WHERE device_id = @device_id::text;

-- name: CompareRollup :many
-- Every bucket of [from_ts, to_ts) of @device_id ('' for every device) as the rollup
-- holds it and as the raw samples add up to; nil where one side has no row. Fields in
-- the order of series.hourlyFields.
WITH stored AS (
    SELECT device_id, bucket, ARRAY[sample_count::float8, max_pv_power_w, sum_pv_power_w, sum_battery_power_w, sum_battery_soc_pct, sum_load_power_w, sum_export_power_w, sum_grid_import_w, sum_grid_export_w, sum_battery_charge_w, sum_battery_discharge_w, coalesce(max_pv_daily_kwh, 'NaN')]::float8[] AS v
    FROM sungrow_rollup
    WHERE (@device_id::text = '' OR device_id = @device_id::text)
      AND bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
), expected AS (
    SELECT device_id, date_bin('15 minutes', ts, '2000-01-01T00:00:00Z') AS bucket,
           ARRAY[sum(sample_count)::float8, max(pv_power_w), sum(pv_power_w * sample_count),
                 sum(battery_power_w * sample_count), sum(battery_soc_pct * sample_count),
                 sum(load_power_w * sample_count), sum(export_power_w * sample_count),
                 sum(greatest(-export_power_w, 0) * sample_count), sum(greatest(export_power_w, 0) * sample_count),
                 sum(greatest(battery_power_w, 0) * sample_count), sum(greatest(-battery_power_w, 0) * sample_count),
                 coalesce(max(pv_daily_kwh), 'NaN')]::float8[] AS v
    FROM sungrow_samples
    WHERE (@device_id::text = '' OR device_id = @device_id::text)
      AND ts >= @from_ts::timestamptz AND ts < @to_ts::timestamptz
    GROUP BY 1, 2
)
SELECT coalesce(s.device_id, e.device_id)::text AS device_id,
       coalesce(s.bucket, e.bucket)::timestamptz AS bucket,
       s.v AS stored, e.v AS expected
FROM stored s FULL JOIN expected e ON e.device_id = s.device_id AND e.bucket = s.bucket
ORDER BY 1, 2;

-- name: DeleteRollupBuckets :exec
-- The first half of a repair (RebuildRollupBuckets the second, in one transaction):
-- the buckets (arrays advance together) go.
DELETE FROM sungrow_rollup r
USING (SELECT unnest(@device_ids::text[]) AS device_id, unnest(@buckets::timestamptz[]) AS bucket) t
WHERE r.device_id = t.device_id AND r.bucket = t.bucket;

-- name: RebuildRollupBuckets :execrows
-- The buckets (arrays advance together) summed again from the raw samples.
INSERT INTO sungrow_rollup
SELECT s.device_id, t.bucket,
       sum(sample_count),
       sum(pv_power_w * sample_count), max(pv_power_w),
       sum(battery_power_w * sample_count), sum(battery_soc_pct * sample_count),
       sum(load_power_w * sample_count), sum(export_power_w * sample_count),
       sum(greatest(-export_power_w, 0) * sample_count),
       sum(greatest(export_power_w, 0) * sample_count),
       sum(greatest(battery_power_w, 0) * sample_count),
       sum(greatest(-battery_power_w, 0) * sample_count),
       max(pv_daily_kwh)
FROM (SELECT unnest(@device_ids::text[]) AS device_id, unnest(@buckets::timestamptz[]) AS bucket) t
JOIN sungrow_samples s ON s.device_id = t.device_id AND s.ts >= t.bucket AND s.ts < t.bucket + interval '15 minutes'
GROUP BY 1, 2;

-- name: RollupDailyPresent :one
SELECT (to_regclass('sungrow_rollup_daily') IS NOT NULL)::boolean AS present;

-- name: RollupDailyZone :one
-- The zone sungrow_rollup_daily's days begin in.
SELECT zone FROM sungrow_rollup_zone;

-- name: LockRollupDaily :exec
-- Taken by a rebuild, in its transaction: an ingest (whose insert into the days takes
-- ROW EXCLUSIVE before its snapshot) waits, then sees the new zone.
LOCK TABLE sungrow_rollup_daily IN SHARE ROW EXCLUSIVE MODE;

-- name: SetRollupDailyZone :exec
UPDATE sungrow_rollup_zone SET zone = @zone::text;

-- name: ClearRollupDaily :exec
DELETE FROM sungrow_rollup_daily;

-- name: FillRollupDaily :execrows
-- Every device's days in @zone, summed from the quarter hours.
INSERT INTO sungrow_rollup_daily
SELECT device_id, date_trunc('day', bucket, @zone::text),
       sum(sample_count), sum(sum_pv_power_w), max(max_pv_power_w),
       sum(sum_battery_power_w), sum(sum_battery_soc_pct),
       sum(sum_load_power_w), sum(sum_export_power_w),
       sum(sum_grid_import_w), sum(sum_grid_export_w),
       sum(sum_battery_charge_w), sum(sum_battery_discharge_w),
       max(max_pv_daily_kwh)
FROM sungrow_rollup
GROUP BY 1, 2;

-- name: CompareRollupDaily :many
-- Every day of [from_ts, to_ts) of @device_id ('' for every device) as
-- sungrow_rollup_daily holds it and as its quarter hours add up to, in the zone the
-- days are kept in; nil where one side has no row. Fields in the order of
-- series.hourlyFields.
WITH z AS (
    SELECT zone FROM sungrow_rollup_zone
), stored AS (
    SELECT device_id, bucket, ARRAY[sample_count::float8, max_pv_power_w, sum_pv_power_w, sum_battery_power_w, sum_battery_soc_pct, sum_load_power_w, sum_export_power_w, sum_grid_import_w, sum_grid_export_w, sum_battery_charge_w, sum_battery_discharge_w, coalesce(max_pv_daily_kwh, 'NaN')]::float8[] AS v
    FROM sungrow_rollup_daily
    WHERE bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
), expected AS (
    SELECT device_id, date_trunc('day', bucket, (SELECT zone FROM z))::timestamptz AS bucket,
           ARRAY[sum(sample_count)::float8, max(max_pv_power_w), sum(sum_pv_power_w), sum(sum_battery_power_w),
                 sum(sum_battery_soc_pct), sum(sum_load_power_w), sum(sum_export_power_w), sum(sum_grid_import_w),
                 sum(sum_grid_export_w), sum(sum_battery_charge_w), sum(sum_battery_discharge_w),
                 coalesce(max(max_pv_daily_kwh), 'NaN')]::float8[] AS v
    FROM sungrow_rollup
    WHERE bucket >= @from_ts::timestamptz AND bucket < @to_ts::timestamptz
      AND (@device_id::text = '' OR device_id = @device_id::text)
    GROUP BY 1, 2
)
SELECT coalesce(s.device_id, e.device_id)::text AS device_id,
       coalesce(s.bucket, e.bucket)::timestamptz AS bucket,
       s.v AS stored, e.v AS expected
FROM stored s FULL JOIN expected e ON e.device_id = s.device_id AND e.bucket = s.bucket
ORDER BY 1, 2;

-- name: DeleteRollupDays :exec
-- The first half of a repair of days (RebuildRollupDays the second, in one
-- transaction): the days (arrays advance together) go.
DELETE FROM sungrow_rollup_daily r
USING (SELECT unnest(@device_ids::text[]) AS device_id, unnest(@buckets::timestamptz[]) AS bucket) t
WHERE r.device_id = t.device_id AND r.bucket = t.bucket;

-- name: RebuildRollupDays :execrows
-- The days (arrays advance together; local midnights in the zone the days are kept
-- in) summed again from their quarter hours. A local day lasts at most 26 hours.
INSERT INTO sungrow_rollup_daily
SELECT q.device_id, t.bucket,
       sum(sample_count), sum(sum_pv_power_w), max(max_pv_power_w),
       sum(sum_battery_power_w), sum(sum_battery_soc_pct),
       sum(sum_load_power_w), sum(sum_export_power_w),
       sum(sum_grid_import_w), sum(sum_grid_export_w),
       sum(sum_battery_charge_w), sum(sum_battery_discharge_w),
       max(max_pv_daily_kwh)
FROM (SELECT unnest(@device_ids::text[]) AS device_id, unnest(@buckets::timestamptz[]) AS bucket) t
CROSS JOIN sungrow_rollup_zone z
JOIN sungrow_rollup q ON q.device_id = t.device_id AND q.bucket >= t.bucket AND q.bucket < t.bucket + interval '26 hours'
 AND date_trunc('day', q.bucket, z.zone) = t.bucket
GROUP BY 1, 2;

-- name: DevicesWithDaysRollup :many
-- DevicesWithDays on plain PostgreSQL: every device the rollup's days hold.
SELECT DISTINCT device_id FROM sungrow_rollup_daily ORDER BY device_id;
