-- name: SamplesStorage :one
-- TimescaleDB: sungrow_samples with its chunks, and what compression made of the
-- compressed ones. Rows are the planner's estimate (exact after ANALYZE).
SELECT hypertable_size('sungrow_samples')::bigint AS bytes,
       approximate_row_count('sungrow_samples')::bigint AS rows_estimate,
       (SELECT count(*) FROM timescaledb_information.chunks c
        WHERE c.hypertable_schema = current_schema() AND c.hypertable_name = 'sungrow_samples')::bigint AS chunks,
       (SELECT count(*) FROM timescaledb_information.chunks c
        WHERE c.hypertable_schema = current_schema() AND c.hypertable_name = 'sungrow_samples'
          AND c.is_compressed)::bigint AS compressed_chunks,
       coalesce((SELECT s.before_compression_total_bytes FROM hypertable_compression_stats('sungrow_samples') s), 0)::bigint AS before_compression_bytes,
       coalesce((SELECT s.after_compression_total_bytes FROM hypertable_compression_stats('sungrow_samples') s), 0)::bigint AS after_compression_bytes;

-- name: PlainSamplesStorage :one
-- Plain PostgreSQL: the table with its index and TOAST, and the planner's row estimate.
SELECT pg_total_relation_size('sungrow_samples')::bigint AS bytes,
       greatest(c.reltuples, 0)::bigint AS rows_estimate
FROM pg_catalog.pg_class c
WHERE c.oid = 'sungrow_samples'::regclass;

-- name: AggregatesStorage :many
-- Each series aggregate: its materialization's size, rows and chunks, and its
-- watermark (materialized up to).
SELECT c.view_name::text AS view_name,
       hypertable_size(format('%I.%I', c.materialization_hypertable_schema,
                              c.materialization_hypertable_name)::regclass)::bigint AS bytes,
       approximate_row_count(format('%I.%I', c.materialization_hypertable_schema,
                                    c.materialization_hypertable_name)::regclass)::bigint AS rows_estimate,
       (SELECT count(*) FROM timescaledb_information.chunks ch
        WHERE ch.hypertable_schema = c.materialization_hypertable_schema
          AND ch.hypertable_name = c.materialization_hypertable_name)::bigint AS chunks,
       -- Before the first refresh the watermark is TimescaleDB's lowest time.
       (_timescaledb_functions.cagg_watermark(h.id) > -210866803200000000)::boolean AS refreshed,
       _timescaledb_functions.to_timestamp(greatest(_timescaledb_functions.cagg_watermark(h.id),
                                                    0))::timestamptz AS materialized_up_to
FROM timescaledb_information.continuous_aggregates c
JOIN _timescaledb_catalog.hypertable h
  ON h.schema_name = c.materialization_hypertable_schema AND h.table_name = c.materialization_hypertable_name
WHERE c.view_schema = current_schema()
ORDER BY c.view_name;

-- name: StorageJobs :many
-- The TimescaleDB jobs that act on this schema's tables: compression, the aggregates'
-- refresh policies, raw retention; with how their last run went.
SELECT j.job_id, j.application_name::text AS application_name, j.proc_name::text AS proc_name,
       j.schedule_interval::text AS schedule, coalesce(j.config::text, '')::text AS config,
       -- never run / not scheduled (NULL or infinite): the epoch, which Go reads as none
       coalesce(CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END, 'epoch')::timestamptz AS last_run_started_at,
       coalesce(s.last_run_status, '') AS last_run_status,
       coalesce(CASE WHEN isfinite(s.next_start) THEN s.next_start END, 'epoch')::timestamptz AS next_start,
       coalesce(s.total_runs, 0)::bigint AS total_runs, coalesce(s.total_failures, 0)::bigint AS total_failures
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
WHERE j.proc_schema = current_schema()
   OR j.hypertable_schema = current_schema()
   OR (j.hypertable_schema, j.hypertable_name) IN (
        SELECT c.materialization_hypertable_schema, c.materialization_hypertable_name
        FROM timescaledb_information.continuous_aggregates c WHERE c.view_schema = current_schema())
ORDER BY j.job_id;

-- name: ChunkInterval :one
SELECT d.time_interval::text AS chunk_interval
FROM timescaledb_information.dimensions d
WHERE d.hypertable_schema = current_schema() AND d.hypertable_name = 'sungrow_samples'
  AND d.column_name = 'ts';

-- name: SetChunkInterval :exec
-- New chunks only; existing ones keep their range.
SELECT set_chunk_time_interval('sungrow_samples', (@chunk_interval::text)::interval);

-- name: SameInterval :one
-- Whether two intervals are equal as PostgreSQL compares them ('7 days' = '168:00:00').
SELECT ((@first::text)::interval = (@second::text)::interval)::boolean AS same;

-- name: CompressionPolicies :many
SELECT j.job_id, coalesce(j.config->>'compress_after', '')::text AS compress_after
FROM timescaledb_information.jobs j
WHERE j.proc_name = 'policy_compression'
  AND j.hypertable_schema = current_schema() AND j.hypertable_name = 'sungrow_samples';

-- name: RemoveCompressionPolicy :exec
SELECT remove_compression_policy('sungrow_samples', true);

-- name: AddCompressionPolicy :one
SELECT add_compression_policy('sungrow_samples', (@compress_after::text)::interval) AS job_id;

-- name: RetentionJobs :many
SELECT j.job_id, coalesce(j.config->>'drop_after', '')::text AS drop_after
FROM timescaledb_information.jobs j
WHERE j.proc_schema = current_schema() AND j.proc_name = 'sungrow_raw_retention';

-- name: AddRetentionJob :one
-- Daily, like the daily aggregate's policy; the job's own guard decides what it drops.
SELECT add_job('sungrow_raw_retention', INTERVAL '1 day',
               jsonb_build_object('drop_after', @drop_after::text, 'margin', @margin::text)) AS job_id;

-- name: DeleteJob :exec
SELECT delete_job(@job_id::integer);

-- name: RefreshWindows :many
-- Each series aggregate's refresh policy window, and whether raw chunks older than
-- drop_after lie wholly before it with margin to spare.
SELECT c.view_name::text AS view_name,
       coalesce(j.config->>'start_offset', '')::text AS start_offset,
       (now() - (@drop_after::text)::interval
        <= now() - (j.config->>'start_offset')::interval - (@margin::text)::interval)::boolean AS outside
FROM timescaledb_information.jobs j
-- By the policy's materialization id: which name the jobs view shows for an
-- aggregate's policy (the view or its materialization) differs between versions.
JOIN _timescaledb_catalog.hypertable h ON h.id = (j.config->>'mat_hypertable_id')::integer
JOIN timescaledb_information.continuous_aggregates c
  ON c.materialization_hypertable_schema = h.schema_name
 AND c.materialization_hypertable_name = h.table_name
WHERE j.proc_name = 'policy_refresh_continuous_aggregate' AND c.view_schema = current_schema()
ORDER BY c.view_name;

-- name: RawHorizon :many
-- Where raw retention has dropped up to (no row: nothing dropped yet).
SELECT horizon FROM sungrow_raw_horizon;

-- name: RunJob :exec
-- Runs a job now, in this session (tests and the benchmark; no scheduler there).
-- (sqlc mis-rewrites named parameters in CALL, hence $1.)
CALL run_job($1);

-- name: RawHorizonPresent :one
-- Whether this database can have a raw horizon (migration 5 on TimescaleDB).
SELECT (to_regclass('sungrow_raw_horizon') IS NOT NULL)::boolean AS present;
