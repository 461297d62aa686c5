-- Read-only tokens (`sungrow token add DEVICE --read-only`): for a dashboard on a phone
-- or a wall tablet, which must read its device but must not be able to post samples
-- if it leaks. Existing tokens, and every DEVICE_TOKENS entry, stay read-write.
--
-- The scope decides what a token may do, so changing it must reach every serve
-- instance: the tokens' trigger now bumps sungrow_auth_version on it too.

-- +goose Up
ALTER TABLE sungrow_tokens ADD COLUMN read_only boolean NOT NULL DEFAULT false;

DROP TRIGGER sungrow_tokens_changed ON sungrow_tokens;
CREATE TRIGGER sungrow_tokens_changed
    AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF device_id, sha256, revoked_at, read_only ON sungrow_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION sungrow_bump_auth_version();

-- +goose Down
-- Going down makes a read-only token read-write, which would hand a leaked dashboard
-- token the right to post samples: revoke them instead (`sungrow token add` issues
-- new ones after going up again).
UPDATE sungrow_tokens SET revoked_at = now() WHERE read_only AND revoked_at IS NULL;

DROP TRIGGER sungrow_tokens_changed ON sungrow_tokens;
ALTER TABLE sungrow_tokens DROP COLUMN read_only;
CREATE TRIGGER sungrow_tokens_changed
    AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF device_id, sha256, revoked_at ON sungrow_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION sungrow_bump_auth_version();
