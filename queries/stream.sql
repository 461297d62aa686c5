-- name: NotifyStored :exec
-- One round trip carries every pending notice of the live stream (one per device);
-- each payload becomes its own notification on channel sungrow_stored. Sent after the
-- ingest committed, so a listener that reads the newest sample sees the new rows.
SELECT pg_notify('sungrow_stored', p) FROM unnest(@payloads::text[]) AS p;

-- name: ListenStored :exec
-- The live stream's subscription: one held session per instance (see package stream).
LISTEN sungrow_stored;

-- name: LatestSamples :many
-- The newest sample of each device, for the live stream's reads: one round trip for a
-- whole batch of devices, each an index scan backwards on the primary key (LIMIT 1).
SELECT s.device_id, s.ts, s.pv_power_w, s.pv_daily_kwh, s.battery_power_w, s.battery_soc_pct,
       s.battery_temp_c, s.load_power_w, s.export_power_w, s.sample_count
FROM unnest(@device_ids::text[]) AS d(id)
CROSS JOIN LATERAL (
    SELECT * FROM sungrow_samples
    WHERE device_id = d.id
    ORDER BY ts DESC
    LIMIT 1
) AS s;
