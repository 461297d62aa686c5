-- Years of samples on a small disk (TimescaleDB only; plain PostgreSQL is left as it is).
--
-- Columnstore compression of sungrow_samples, segmented by device and ordered by time
-- descending, so a device's chunk compresses into a few hundred column batches (about
-- 13× smaller) and the newest-sample query still reads the newest chunk first. The
-- policy compresses chunks older than 7 days; inserts into compressed chunks keep
-- ingest's contract (ON CONFLICT DO NOTHING works on them since TimescaleDB 2.11),
-- and the invalidation they log lets the late-data refresher materialize them.
--
-- Raw retention is off, and stays off until `sungrow storage policy --raw-retention`
-- adds a job running sungrow_raw_retention. It is a custom job, not
-- add_retention_policy: that one drops chunks by age alone, also chunks the
-- aggregates have not materialized yet (a database migrated with history and never
-- refreshed, a policy that has been failing) or that a refresh window still reads,
-- and the aggregates would lose those buckets for good. The job drops only chunks
-- whose whole range lies below every aggregate's watermark and below every refresh
-- policy's window plus a margin, whatever age it was asked for. Once it has dropped,
-- sungrow_raw_horizon holds the end of the dropped range and a trigger skips samples
-- below it: recomputing an hourly bucket from a lone late sample where the raw rows
-- are gone would replace the bucket's history with that one sample.
--
-- sqlc cannot see objects created by EXECUTE: sql/sqlc/storage.sql mirrors them.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    schema text := current_schema();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;

    ALTER TABLE sungrow_samples SET (timescaledb.compress,
        timescaledb.compress_segmentby = 'device_id',
        timescaledb.compress_orderby = 'ts DESC');
    PERFORM add_compression_policy('sungrow_samples', INTERVAL '7 days');

    CREATE TABLE sungrow_raw_horizon (
        horizon timestamptz NOT NULL,
        one     boolean PRIMARY KEY DEFAULT true CHECK (one)
    );

    -- Schema-qualified at creation, so it costs no search_path switch per row.
    EXECUTE format($f$
    CREATE FUNCTION sungrow_raw_horizon_guard() RETURNS trigger
    LANGUAGE plpgsql AS $b$
    BEGIN
        IF NEW.ts < (SELECT horizon FROM %I.sungrow_raw_horizon) THEN
            RETURN NULL; -- its raw chunk is gone; the aggregates keep its bucket
        END IF;
        RETURN NEW;
    END
    $b$
    $f$, schema);

    -- config: {"drop_after": "<interval>", "margin": "<interval>"}. The job runs with
    -- the search_path of this migration, wherever the scheduler starts it.
    EXECUTE $f$
    CREATE PROCEDURE sungrow_raw_retention(job_id integer, config jsonb)
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $b$
    DECLARE
        drop_after interval := (config->>'drop_after')::interval;
        margin     interval := coalesce((config->>'margin')::interval, INTERVAL '7 days');
        cutoff     timestamptz;
        horizon    timestamptz;
        dropped    int;
    BEGIN
        IF drop_after IS NULL THEN
            RAISE EXCEPTION 'sungrow_raw_retention: config has no drop_after';
        END IF;
        cutoff := now() - drop_after;
        -- Below every aggregate's materialization watermark (an aggregate never
        -- refreshed has its watermark at the beginning of time) ...
        SELECT least(cutoff, min(_timescaledb_functions.to_timestamp(
                   _timescaledb_functions.cagg_watermark(h.id))))
        INTO cutoff
        FROM timescaledb_information.continuous_aggregates c
        JOIN _timescaledb_catalog.hypertable h
          ON h.schema_name = c.materialization_hypertable_schema
         AND h.table_name = c.materialization_hypertable_name
        WHERE c.view_schema = current_schema()
          AND c.view_name IN ('sungrow_hourly', 'sungrow_daily', 'sungrow_monthly');
        -- ... and below every refresh policy's window, plus the margin.
        SELECT least(cutoff, min(now() - (j.config->>'start_offset')::interval - margin))
        INTO cutoff
        FROM timescaledb_information.jobs j
        JOIN _timescaledb_catalog.hypertable h ON h.id = (j.config->>'mat_hypertable_id')::integer
        JOIN timescaledb_information.continuous_aggregates c
          ON c.materialization_hypertable_schema = h.schema_name
         AND c.materialization_hypertable_name = h.table_name
        WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
          AND c.view_schema = current_schema()
          AND c.view_name IN ('sungrow_hourly', 'sungrow_daily', 'sungrow_monthly');

        -- The end of the newest chunk wholly below the cutoff, which drop_chunks takes.
        SELECT max(range_end) INTO horizon
        FROM timescaledb_information.chunks
        WHERE hypertable_schema = current_schema() AND hypertable_name = 'sungrow_samples'
          AND range_end <= cutoff;
        IF horizon IS NULL THEN
            RETURN;
        END IF;
        INSERT INTO sungrow_raw_horizon (horizon) VALUES (horizon)
        ON CONFLICT (one) DO UPDATE SET horizon = greatest(sungrow_raw_horizon.horizon, EXCLUDED.horizon);
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                       WHERE tgrelid = 'sungrow_samples'::regclass
                         AND tgname = 'sungrow_raw_horizon_guard') THEN
            CREATE TRIGGER sungrow_raw_horizon_guard
                BEFORE INSERT ON sungrow_samples
                FOR EACH ROW EXECUTE FUNCTION sungrow_raw_horizon_guard();
        END IF;
        SELECT count(*) INTO dropped FROM drop_chunks('sungrow_samples', older_than => horizon);
        RAISE LOG 'sungrow_raw_retention: dropped % raw chunks before %', dropped, horizon;
    END
    $b$
    $f$;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Refused once raw retention has dropped chunks: without the horizon and its guard,
-- a sample below it or a rebuild of the aggregates (migration 4 down and up) would
-- recompute the aggregates from the raw samples that are left, and lose the rest.
-- +goose StatementBegin
DO $$
DECLARE
    job integer;
    dropped timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    SELECT horizon INTO dropped FROM sungrow_raw_horizon;
    IF dropped IS NOT NULL THEN
        RAISE EXCEPTION 'raw retention has dropped the samples before %; the aggregates are their only record, '
            'and rolling back migration 5 would let them be recomputed from what is left. '
            'To roll back anyway: DELETE FROM sungrow_raw_horizon', dropped;
    END IF;
    FOR job IN SELECT job_id FROM timescaledb_information.jobs
               WHERE proc_schema = current_schema() AND proc_name = 'sungrow_raw_retention' LOOP
        PERFORM delete_job(job);
    END LOOP;
    DROP TRIGGER IF EXISTS sungrow_raw_horizon_guard ON sungrow_samples;
    DROP PROCEDURE IF EXISTS sungrow_raw_retention(integer, jsonb);
    DROP FUNCTION IF EXISTS sungrow_raw_horizon_guard();
    DROP TABLE IF EXISTS sungrow_raw_horizon;
    PERFORM remove_compression_policy('sungrow_samples', if_exists => true);
    PERFORM decompress_chunk(c, if_compressed => true) FROM show_chunks('sungrow_samples') c;
    ALTER TABLE sungrow_samples SET (timescaledb.compress = false);
END
$$;
-- +goose StatementEnd
