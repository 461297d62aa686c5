-- For sqlc only, never run: the part of TimescaleDB's API that queries/storage.sql and
-- queries/jobs.sql use (the extension is absent on plain PostgreSQL, so sqlc cannot
-- know it), and what sql/00005_compression.sql creates with EXECUTE. Spelled so sqlc knows the columns
-- and types; "any" parameters are declared as the type the queries pass.

CREATE TABLE sungrow_raw_horizon (
    horizon timestamptz NOT NULL,
    one     boolean PRIMARY KEY DEFAULT true
);

CREATE SCHEMA timescaledb_information;
CREATE SCHEMA _timescaledb_functions;
CREATE SCHEMA _timescaledb_catalog;

CREATE TABLE timescaledb_information.chunks (
    hypertable_schema name NOT NULL,
    hypertable_name   name NOT NULL,
    chunk_name        name NOT NULL,
    range_start       timestamptz,
    range_end         timestamptz,
    is_compressed     boolean NOT NULL
);

CREATE TABLE timescaledb_information.continuous_aggregates (
    hypertable_schema                 name NOT NULL,
    hypertable_name                   name NOT NULL,
    view_schema                       name NOT NULL,
    view_name                         name NOT NULL,
    materialization_hypertable_schema name NOT NULL,
    materialization_hypertable_name   name NOT NULL
);

CREATE TABLE timescaledb_information.jobs (
    job_id            integer  NOT NULL,
    application_name  name     NOT NULL,
    schedule_interval interval NOT NULL,
    proc_schema       name     NOT NULL,
    proc_name         name     NOT NULL,
    scheduled         boolean  NOT NULL,
    config            jsonb,
    hypertable_schema name,
    hypertable_name   name
);

CREATE TABLE timescaledb_information.job_stats (
    job_id                 integer NOT NULL,
    last_run_started_at    timestamptz,
    last_successful_finish timestamptz,
    last_run_status        text,
    next_start             timestamptz,
    total_runs             bigint,
    total_failures         bigint
);

CREATE TABLE timescaledb_information.dimensions (
    hypertable_schema name NOT NULL,
    hypertable_name   name NOT NULL,
    column_name       name NOT NULL,
    time_interval     interval
);

CREATE TABLE _timescaledb_catalog.hypertable (
    id          integer NOT NULL,
    schema_name name    NOT NULL,
    table_name  name    NOT NULL
);

CREATE FUNCTION hypertable_size(hypertable regclass) RETURNS bigint
    LANGUAGE sql AS $$ SELECT 1::bigint $$;
CREATE FUNCTION approximate_row_count(relation regclass) RETURNS bigint
    LANGUAGE sql AS $$ SELECT 1::bigint $$;
CREATE FUNCTION hypertable_compression_stats(hypertable regclass)
    RETURNS TABLE (total_chunks bigint, number_compressed_chunks bigint,
                   before_compression_total_bytes bigint, after_compression_total_bytes bigint)
    LANGUAGE sql AS $$ SELECT 1::bigint, 1::bigint, 1::bigint, 1::bigint $$;
CREATE FUNCTION _timescaledb_functions.cagg_watermark(hypertable_id integer) RETURNS bigint
    LANGUAGE sql AS $$ SELECT 1::bigint $$;
CREATE FUNCTION _timescaledb_functions.to_timestamp(unixtime_us bigint) RETURNS timestamptz
    LANGUAGE sql AS $$ SELECT now() $$;
CREATE FUNCTION add_compression_policy(hypertable regclass, compress_after interval) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION remove_compression_policy(hypertable regclass, if_exists boolean) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION add_job(proc regproc, schedule_interval interval, config jsonb) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION delete_job(job_id integer) RETURNS void
    LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION set_chunk_time_interval(hypertable regclass, chunk_time_interval interval) RETURNS void
    LANGUAGE sql AS $$ SELECT $$;
CREATE PROCEDURE run_job(job_id integer)
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION alter_job(job_id integer, scheduled boolean) RETURNS void
    LANGUAGE sql AS $$ SELECT $$;
