-- Alerts: rules (`sungrow alert add`), the state of each rule for each device it
-- watches, and the webhook deliveries still to make or already made. All of it lives
-- in the database so that a restart of serve neither repeats a `firing` nor forgets
-- one, and so that two serve instances deliver each notification once: a check runs
-- under a transaction-level advisory lock, a delivery is claimed by one UPDATE.
-- Plain tables on TimescaleDB too: they are small and read by key, not by time range.

-- +goose Up
CREATE TABLE sungrow_alert_rules (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- '' watches every device.
    device_id  text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('offline', 'clock', 'battery_temp', 'soc_low')),
    after_s    integer     NOT NULL DEFAULT 0 CHECK (after_s >= 0),
    above      double precision,
    below      double precision,
    -- Seconds between reminders while the rule fires; 0: never.
    repeat_s   integer     NOT NULL CHECK (repeat_s >= 0),
    -- A webhook URL is a secret like a token (ntfy topics, Home Assistant webhook
    -- ids): it is never logged; answers show its scheme and host only.
    webhooks   text[]      NOT NULL CHECK (cardinality(webhooks) >= 1),
    -- The HMAC key of X-Sungrow-Signature; '' sends no signature. Kept as given, since
    -- signing needs the key itself.
    secret     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL
);

CREATE TABLE sungrow_alert_states (
    rule_id       bigint      NOT NULL REFERENCES sungrow_alert_rules (id) ON DELETE CASCADE,
    device_id     text        NOT NULL,
    -- soc_low: when the condition was first seen, before it has held for --after.
    pending_since timestamptz,
    -- NULL while the rule does not fire for this device.
    firing_since  timestamptz,
    -- The last firing or reminder sent: reminders count from it.
    last_sent_at  timestamptz,
    resolved_at   timestamptz,
    summary       text        NOT NULL DEFAULT '',
    PRIMARY KEY (rule_id, device_id)
);

CREATE TABLE sungrow_alert_deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id         bigint      NOT NULL REFERENCES sungrow_alert_rules (id) ON DELETE CASCADE,
    device_id       text        NOT NULL,
    -- 1-based index into the rule's webhooks, so no URL is copied here.
    webhook         integer     NOT NULL CHECK (webhook >= 1),
    state           text        NOT NULL CHECK (state IN ('firing', 'resolved', 'reminder')),
    -- The exact bytes sent and signed (text, not jsonb, which would reorder them).
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    -- Set by the instance that is sending it; another may take it over once passed.
    claimed_until   timestamptz,
    delivered_at    timestamptz,
    -- Given up after 24 h of failures; the next notification of its rule goes next.
    abandoned_at    timestamptz,
    last_status     integer,
    last_error      text        NOT NULL DEFAULT ''
);
-- The head of each (rule, webhook) queue: deliveries go out in order per rule.
CREATE INDEX sungrow_alert_deliveries_pending ON sungrow_alert_deliveries (rule_id, webhook, id)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
CREATE INDEX sungrow_alert_deliveries_recent ON sungrow_alert_deliveries (rule_id, device_id, id);

-- +goose Down
DROP TABLE sungrow_alert_deliveries;
DROP TABLE sungrow_alert_states;
DROP TABLE sungrow_alert_rules;
