-- name: SungrowJobs :many
-- Every TimescaleDB job of this schema (the refresh policies of its aggregates, the
-- compression policy, raw retention), whether the scheduler may start it, and whether
-- a background worker of this database runs it right now (a job's worker carries the
-- job's application_name).
SELECT j.job_id, j.application_name::text AS application_name, j.scheduled,
       EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
               WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                 AND a.application_name = j.application_name::text)::boolean AS running
FROM timescaledb_information.jobs j
WHERE j.proc_schema = current_schema()
   OR j.hypertable_schema = current_schema()
   -- By the policy's materialization id: which name the jobs view shows for an
   -- aggregate's policy (the view or its materialization) differs between versions.
   OR (j.config->>'mat_hypertable_id')::integer IN (
        SELECT h.id FROM _timescaledb_catalog.hypertable h
        JOIN timescaledb_information.continuous_aggregates c
          ON c.materialization_hypertable_schema = h.schema_name
         AND c.materialization_hypertable_name = h.table_name
        WHERE c.view_schema = current_schema())
ORDER BY j.job_id;

-- name: ScheduleJob :exec
-- scheduled false: the scheduler starts no new run of the job (a running one goes on).
SELECT alter_job(@job_id::integer, scheduled => @scheduled::boolean);
