-- name: PrimaryWALPosition :one
-- Where the primary's WAL ends now: a replica that has replayed up to here is current.
SELECT pg_current_wal_lsn()::text AS lsn;

-- name: ReplicaLag :one
-- How far a streaming replica is behind: whether it is one at all, the WAL it has not
-- replayed of what the primary had written at @primary_lsn ('0/0': unknown) and of
-- what it has received itself, and the seconds since the commit it replayed last
-- (-1: none since it started).
SELECT pg_is_in_recovery() AS in_recovery,
       coalesce(greatest(pg_wal_lsn_diff(CAST(@primary_lsn::text AS pg_lsn), pg_last_wal_replay_lsn()), 0), 0)::float8 AS behind_primary_bytes,
       coalesce(greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::float8 AS unreplayed_bytes,
       coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), -1)::float8 AS since_replay_s;
