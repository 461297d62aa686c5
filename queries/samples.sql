-- name: InsertSamples :execrows
-- One set-based statement per batch: the arrays are zipped by the unnest calls
-- in one SELECT list (they advance together) and a re-sent
-- (device_id, ts) is skipped, never overwritten. Nullable measures travel as NaN,
-- which validation never lets through as a real value, and become NULL here.
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
ON CONFLICT (device_id, ts) DO NOTHING;

-- name: LatestSample :one
-- Served by the primary key index (device_id, ts) backwards.
SELECT * FROM sungrow_samples
WHERE device_id = @device_id
ORDER BY ts DESC
LIMIT 1;

-- name: TimescaleInstalled :one
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb');

-- name: SetSearchPath :exec
-- For servers that ignore the search_path startup parameter (see cmd's openPool).
SELECT set_config('search_path', @search_path::text, false);

-- name: DeviceIDs :many
-- Every device with at least one sample. A loose index scan: one probe of the
-- primary key (device_id, ts) per device, so its cost grows with the number of
-- devices, not of samples (SELECT DISTINCT would read every row).
WITH RECURSIVE d AS (
    (SELECT s.device_id FROM sungrow_samples s ORDER BY s.device_id LIMIT 1)
    UNION ALL
    SELECT (SELECT s.device_id FROM sungrow_samples s
            WHERE s.device_id > d.device_id ORDER BY s.device_id LIMIT 1)
    FROM d
    WHERE d.device_id IS NOT NULL
)
SELECT d.device_id::text AS device_id FROM d WHERE d.device_id IS NOT NULL;
