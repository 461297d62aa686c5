-- name: LockQuarantine :exec
-- Serializes the quarantine writes of one device until the transaction ends, so two
-- batches at once cannot both trim to the bound from snapshots without the other's rows.
SELECT pg_advisory_xact_lock(hashtextextended('sungrow_quarantine:' || @device_id::text, 0));

-- name: InsertQuarantine :execrows
-- One statement per batch, zipped like InsertSamples; a re-sent (device_id, ts, field)
-- is skipped, keeping its first arrival.
INSERT INTO sungrow_quarantine (device_id, ts, field, reason, received_at, sample)
SELECT @device_id::text,
       unnest(@ts::timestamptz[]),
       unnest(@field::text[]),
       unnest(@reason::text[]),
       @received_at::timestamptz,
       unnest(@sample::text[])::jsonb
ON CONFLICT (device_id, ts, field) DO NOTHING;

-- name: TrimQuarantine :execrows
-- Keeps the device's newest @keep rows by arrival and drops the rest, oldest first.
DELETE FROM sungrow_quarantine
WHERE (device_id, ts, field) IN (
    SELECT q.device_id, q.ts, q.field FROM sungrow_quarantine q
    WHERE q.device_id = @device_id::text
    ORDER BY q.received_at DESC, q.ts DESC, q.field DESC
    OFFSET @keep::bigint
);

-- name: ListQuarantine :many
SELECT device_id, ts, field, reason, received_at, sample FROM sungrow_quarantine
WHERE device_id = @device_id::text
ORDER BY received_at DESC, ts DESC, field DESC
LIMIT @max_rows::bigint;

-- name: ListQuarantineAll :many
SELECT device_id, ts, field, reason, received_at, sample FROM sungrow_quarantine
ORDER BY received_at DESC, device_id, ts DESC, field DESC
LIMIT @max_rows::bigint;

-- name: QuarantineSummary :many
-- Readings (distinct ts) set aside per reason, and over all reasons (reason ''), with
-- the earliest arrival among them; no rows at all when the device has none.
SELECT coalesce(reason, '')::text AS reason, count(DISTINCT ts)::bigint AS readings,
       min(received_at)::timestamptz AS since
FROM sungrow_quarantine
WHERE device_id = @device_id::text
GROUP BY ROLLUP (reason)
HAVING count(*) > 0
ORDER BY 1;

-- name: PurgeQuarantine :execrows
-- Device NULL: every device; before NULL: whatever the arrival.
DELETE FROM sungrow_quarantine
WHERE (sqlc.narg(device_id)::text IS NULL OR device_id = sqlc.narg(device_id)::text)
  AND (sqlc.narg(before)::timestamptz IS NULL OR received_at < sqlc.narg(before)::timestamptz);
