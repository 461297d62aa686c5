-- name: AddAlertRule :one
INSERT INTO sungrow_alert_rules (device_id, kind, after_s, above, below, repeat_s, webhooks, secret, created_at)
VALUES (@device_id, @kind, @after_s, sqlc.narg(above)::float8, sqlc.narg(below)::float8, @repeat_s,
        @webhooks::text[], @secret, @created_at)
RETURNING *;

-- name: ListAlertRules :many
SELECT * FROM sungrow_alert_rules ORDER BY id;

-- name: GetAlertRule :one
SELECT * FROM sungrow_alert_rules WHERE id = @id;

-- name: RemoveAlertRule :execrows
DELETE FROM sungrow_alert_rules WHERE id = @id;

-- name: LockAlertCheck :exec
-- One check at a time across every serve instance, until the check's transaction
-- ends: the second instance then finds the states the first one wrote and sends
-- nothing twice. A transaction lock holds no connection between checks.
SELECT pg_advisory_xact_lock(hashtextextended('sungrow_alert_check', 0));

-- name: ClockSetAsides :many
-- The newest arrival of a sample set aside for its time, per device (the quarantine
-- is bounded per device, and read by its (device_id, received_at) index).
SELECT device_id, max(received_at)::timestamptz AS newest
FROM sungrow_quarantine
WHERE reason IN ('clock_behind', 'clock_ahead')
GROUP BY device_id;

-- name: ListAlertStates :many
SELECT * FROM sungrow_alert_states;

-- name: UpsertAlertState :exec
INSERT INTO sungrow_alert_states (rule_id, device_id, pending_since, firing_since, last_sent_at, resolved_at, summary)
VALUES (@rule_id, @device_id, sqlc.narg(pending_since), sqlc.narg(firing_since), sqlc.narg(last_sent_at),
        sqlc.narg(resolved_at), @summary)
ON CONFLICT (rule_id, device_id) DO UPDATE
    SET pending_since = excluded.pending_since, firing_since = excluded.firing_since,
        last_sent_at = excluded.last_sent_at, resolved_at = excluded.resolved_at, summary = excluded.summary;

-- name: InsertAlertDelivery :exec
INSERT INTO sungrow_alert_deliveries (rule_id, device_id, webhook, state, body, created_at, next_attempt_at)
VALUES (@rule_id, @device_id, @webhook, @state, @body, @created_at, @created_at);

-- name: ClaimAlertDeliveries :many
-- Claims the due head of each (rule, webhook) queue, so notifications of a rule go
-- out in order and one at a time. Two instances claiming at once: the second's UPDATE
-- waits for the first's row locks and then re-checks claimed_until, so each delivery
-- is claimed once.
UPDATE sungrow_alert_deliveries d
SET claimed_until = @claim_until::timestamptz, attempts = d.attempts + 1
FROM sungrow_alert_rules r
WHERE r.id = d.rule_id
  AND d.id IN (
    SELECT DISTINCT ON (h.rule_id, h.webhook) h.id
    FROM sungrow_alert_deliveries h
    WHERE h.delivered_at IS NULL AND h.abandoned_at IS NULL
    ORDER BY h.rule_id, h.webhook, h.id)
  AND d.delivered_at IS NULL AND d.abandoned_at IS NULL
  AND d.next_attempt_at <= @now::timestamptz
  AND (d.claimed_until IS NULL OR d.claimed_until < @now::timestamptz)
RETURNING d.id, d.rule_id, d.device_id, d.webhook, d.state, d.body, d.created_at, d.attempts,
          r.webhooks[d.webhook]::text AS url, r.secret;

-- name: DeliverySucceeded :exec
UPDATE sungrow_alert_deliveries
SET delivered_at = @at::timestamptz, last_status = @status, last_error = ''
WHERE id = @id;

-- name: DeliveryFailed :exec
-- A failure is retried at @next_attempt_at; abandoned (@abandon) once it is older
-- than the retry window.
UPDATE sungrow_alert_deliveries
SET next_attempt_at = @next_attempt_at::timestamptz, claimed_until = NULL,
    last_status = sqlc.narg(status)::integer, last_error = @error::text,
    abandoned_at = CASE WHEN @abandon::boolean THEN @at::timestamptz END
WHERE id = @id;

-- name: NextAlertDelivery :many
-- When the earliest waiting head of a queue is due (no row: nothing waits).
SELECT d.next_attempt_at
FROM sungrow_alert_deliveries d
WHERE d.id IN (
    SELECT DISTINCT ON (h.rule_id, h.webhook) h.id
    FROM sungrow_alert_deliveries h
    WHERE h.delivered_at IS NULL AND h.abandoned_at IS NULL
    ORDER BY h.rule_id, h.webhook, h.id)
ORDER BY d.next_attempt_at
LIMIT 1;

-- name: FiringAlerts :many
-- Every (rule, device) that fires, for the metrics and Home Assistant.
SELECT r.kind, s.device_id
FROM sungrow_alert_states s JOIN sungrow_alert_rules r ON r.id = s.rule_id
WHERE s.firing_since IS NOT NULL
ORDER BY r.kind, s.device_id;

-- name: RecentAlertDeliveries :many
-- The newest @per_rule deliveries of each rule (of @device_id only, unless it is empty).
SELECT id, rule_id, device_id, webhook, state, created_at, attempts, delivered_at, abandoned_at,
       last_status, last_error
FROM (
    SELECT d.*, row_number() OVER (PARTITION BY d.rule_id ORDER BY d.id DESC) AS n
    FROM sungrow_alert_deliveries d
    WHERE @device_id::text = '' OR d.device_id = @device_id::text
) AS recent
WHERE n <= @per_rule::bigint
ORDER BY rule_id, id DESC;

-- name: RemovedDevices :many
-- Devices removed with `sungrow device remove`: alerts stop watching them.
SELECT id FROM sungrow_devices WHERE removed_at IS NOT NULL;
