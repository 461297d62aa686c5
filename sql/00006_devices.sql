-- Devices and their bearer tokens, managed at run time by `sungrow device` and
-- `sungrow token` instead of DEVICE_TOKENS. A token is never stored: only its SHA-256
-- is, which is enough to check one (the tokens are 256 random bits, so the hash cannot
-- be turned back into a token).
--
-- Every serve instance keeps the active tokens in memory and polls
-- sungrow_auth_version once a second; the triggers below bump it on every change that
-- matters to authentication (whoever makes it: a command or a hand-written UPDATE),
-- and not on the once-a-minute last_used_at writes, so those cause no reload.

-- +goose Up
CREATE TABLE sungrow_devices (
    id         text        PRIMARY KEY,
    name       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    -- How many seconds one sample (sample_count 1) of this device stands for; NULL:
    -- SAMPLE_INTERVAL_S.
    interval_s integer     CHECK (interval_s BETWEEN 1 AND 3600),
    -- A removed device stays as a tombstone: its tokens are revoked, its samples stay,
    -- and DEVICE_TOKENS entries for it stay ignored (the table wins), so a removed
    -- device cannot come back through an old environment.
    removed_at timestamptz
);

CREATE TABLE sungrow_tokens (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    text        NOT NULL REFERENCES sungrow_devices (id),
    sha256       bytea       NOT NULL UNIQUE CHECK (length(sha256) = 32),
    label        text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX sungrow_tokens_device ON sungrow_tokens (device_id);

CREATE TABLE sungrow_auth_version (
    version bigint  NOT NULL,
    one     boolean PRIMARY KEY DEFAULT true CHECK (one)
);
INSERT INTO sungrow_auth_version (version) VALUES (1);

-- +goose StatementBegin
CREATE FUNCTION sungrow_bump_auth_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sungrow_auth_version SET version = version + 1;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- Statement triggers: one bump per statement, however many rows it changes (a row
-- trigger would update the counter row once per row, which a bulk import of many
-- tokens makes quadratic). A statement that changes nothing bumps it too; the
-- commands roll such a statement back instead of committing it.
CREATE TRIGGER sungrow_devices_changed
    AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF id, interval_s, removed_at ON sungrow_devices
    FOR EACH STATEMENT EXECUTE FUNCTION sungrow_bump_auth_version();
CREATE TRIGGER sungrow_tokens_changed
    AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF device_id, sha256, revoked_at ON sungrow_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION sungrow_bump_auth_version();

-- +goose Down
DROP TABLE sungrow_tokens;
DROP TABLE sungrow_devices;
DROP TABLE sungrow_auth_version;
DROP FUNCTION sungrow_bump_auth_version();
