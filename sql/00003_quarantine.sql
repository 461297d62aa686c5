-- Samples that were well formed but implausible (a clock in 1970 or a day ahead, a
-- state of charge outside 0-100, a sample_count below 1), set aside by ingest instead
-- of refusing their batch: an edge re-sends a refused batch forever, so one bad reading
-- would block every later one of its house. One row per implausible field of a sample;
-- (device_id, ts, field) makes re-sending idempotent, as (device_id, ts) does for
-- sungrow_samples. A plain table on TimescaleDB too: it is small (bounded per device by
-- QUARANTINE_MAX_PER_DEVICE) and read by arrival, not by time range.

-- +goose Up
CREATE TABLE sungrow_quarantine (
    device_id   text        NOT NULL,
    ts          timestamptz NOT NULL,
    field       text        NOT NULL,
    reason      text        NOT NULL,
    received_at timestamptz NOT NULL,
    sample      jsonb       NOT NULL,
    PRIMARY KEY (device_id, ts, field)
);

-- Newest first for GET /v1/quarantine, oldest first for the per-device bound.
CREATE INDEX sungrow_quarantine_arrival ON sungrow_quarantine (device_id, received_at, ts, field);

-- +goose Down
DROP TABLE sungrow_quarantine;
