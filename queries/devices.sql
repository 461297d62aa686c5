-- name: AddDevice :one
-- A removed device (a tombstone) may be added again; an active one may not: then no
-- row comes back.
INSERT INTO sungrow_devices AS d (id, name, interval_s)
VALUES (@id, @name, sqlc.narg(interval_s)::integer)
ON CONFLICT (id) DO UPDATE
    SET name = excluded.name, interval_s = excluded.interval_s,
        created_at = now(), removed_at = NULL
    WHERE d.removed_at IS NOT NULL
RETURNING *;

-- name: ListDevices :many
-- The active devices with how many usable tokens each has and its newest sample
-- (max(ts) for one device_id is one step of the (device_id, ts) primary key).
SELECT d.id, d.name, d.created_at, d.interval_s,
       (SELECT count(*) FROM sungrow_tokens t
         WHERE t.device_id = d.id AND t.revoked_at IS NULL)::bigint AS active_tokens,
       (SELECT max(s.ts) FROM sungrow_samples s WHERE s.device_id = d.id) AS newest_sample
FROM sungrow_devices d
WHERE d.removed_at IS NULL
ORDER BY d.id;

-- name: DeviceActive :one
SELECT EXISTS (SELECT 1 FROM sungrow_devices WHERE id = @id AND removed_at IS NULL);

-- name: RemoveDevice :execrows
UPDATE sungrow_devices SET removed_at = now()
WHERE id = @id AND removed_at IS NULL;

-- name: RevokeDeviceTokens :execrows
UPDATE sungrow_tokens SET revoked_at = now()
WHERE device_id = @device_id AND revoked_at IS NULL;

-- name: DeleteDeviceSamples :one
-- Returns how many rows went and the span they covered, so the aggregates of that
-- span can be refreshed.
WITH gone AS (
    DELETE FROM sungrow_samples WHERE device_id = @device_id RETURNING ts
)
SELECT count(*)::bigint AS deleted,
       coalesce(min(ts), 'epoch')::timestamptz AS oldest,
       coalesce(max(ts), 'epoch')::timestamptz AS newest
FROM gone;

-- name: AddToken :one
-- Only an active device gets a token: for any other no row comes back.
INSERT INTO sungrow_tokens (device_id, sha256, label, read_only)
SELECT d.id, @sha256, @label, @read_only
FROM sungrow_devices d
WHERE d.id = @device_id AND d.removed_at IS NULL
RETURNING id, device_id, label, created_at, read_only;

-- name: ListTokens :many
-- Every token (revoked ones too) of one device, or of all when device_id is NULL.
-- Never the hash: it is of no use to an operator.
SELECT id, device_id, label, created_at, last_used_at, revoked_at, read_only
FROM sungrow_tokens
WHERE sqlc.narg(device_id)::text IS NULL OR device_id = sqlc.narg(device_id)::text
ORDER BY device_id, id;

-- name: DeviceKnown :one
-- Whether the table defines the device at all (removed ones included).
SELECT EXISTS (SELECT 1 FROM sungrow_devices WHERE id = @id);

-- name: RevokeToken :one
-- Revoking twice keeps the first time (was_revoked then says so).
UPDATE sungrow_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = @id
RETURNING id, device_id, label, created_at, last_used_at, revoked_at, read_only,
          (revoked_at < now())::boolean AS was_revoked;

-- name: AuthVersion :one
-- The change counter serve polls: cheap enough to ask every second.
SELECT version FROM sungrow_auth_version;

-- name: ActiveTokens :many
-- What serve keeps in memory: every usable token's hash and device.
SELECT t.id, t.sha256, t.device_id, t.last_used_at, t.read_only
FROM sungrow_tokens t
JOIN sungrow_devices d ON d.id = t.device_id
WHERE t.revoked_at IS NULL AND d.removed_at IS NULL;

-- name: TableDevices :many
-- Every device the table defines, removed ones included (their DEVICE_TOKENS
-- entries stay ignored), with its sample interval.
SELECT id, interval_s, (removed_at IS NOT NULL)::boolean AS removed FROM sungrow_devices;

-- name: TouchTokens :execrows
-- last_used_at, at most once a minute per token whichever instance writes it.
UPDATE sungrow_tokens SET last_used_at = sqlc.arg(used_at)::timestamptz
WHERE id = ANY(sqlc.arg(ids)::bigint[])
  AND (last_used_at IS NULL OR last_used_at < sqlc.arg(used_at)::timestamptz - '1 minute'::interval);
