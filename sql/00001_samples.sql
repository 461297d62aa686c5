-- The raw telemetry table: one row per inverter reading (or pre-aggregated batch of
-- readings, see sample_count). (device_id, ts) is the idempotency key of ingest.

-- +goose Up
CREATE TABLE sungrow_samples (
    device_id       text             NOT NULL,
    ts              timestamptz      NOT NULL,
    pv_power_w      double precision NOT NULL,
    pv_daily_kwh    double precision,
    battery_power_w double precision NOT NULL,
    battery_soc_pct double precision NOT NULL,
    battery_temp_c  double precision,
    load_power_w    double precision NOT NULL,
    export_power_w  double precision NOT NULL,
    sample_count    integer          NOT NULL DEFAULT 1,
    PRIMARY KEY (device_id, ts)
);

-- TimescaleDB is optional: where the server offers it, the table becomes a hypertable
-- with 7-day chunks; on plain PostgreSQL it stays a plain table and serve says so.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('sungrow_samples', 'ts',
            chunk_time_interval => INTERVAL '7 days');
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The timescaledb extension stays: other tables (or other schemas) may use it.
DROP TABLE sungrow_samples;
