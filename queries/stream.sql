-- name: NotifyStored :exec
-- One round trip carries every pending notice of the live stream (one per device);
-- each payload becomes its own notification on channel sungrow_stored. Sent after the
-- ingest committed, so a listener that reads the newest sample sees the new rows.
SELECT pg_notify('sungrow_stored', p) FROM unnest(@payloads::text[]) AS p;

-- name: ListenStored :exec
-- The live stream's subscription: one held session per instance (see package stream).
LISTEN sungrow_stored;
