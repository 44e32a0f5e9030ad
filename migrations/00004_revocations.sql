-- Sign-out everywhere (auth.Revocations): per user, the time before which
-- the user's tokens are refused. A token is refused when its iat is before
-- revoked_before (or when it has no iat at all). One row per user that ever
-- signed out everywhere; the time only moves forward.
--
-- A trigger notifies every instance on the tasksync_revocations channel in
-- the same transaction, whatever writes the row (the service, or an
-- operator revoking a user by hand with plain SQL), so that each instance
-- updates its cache and closes the user's local sockets.

-- +goose Up
CREATE TABLE user_revocations (
    user_id        text        PRIMARY KEY CHECK (user_id <> '' AND octet_length(user_id) <= 256),
    revoked_before timestamptz NOT NULL CHECK (isfinite(revoked_before))
);

-- +goose StatementBegin
CREATE FUNCTION user_revocations_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- "<revoked_before in Unix microseconds>:<user id>": the cache needs no
    -- query to apply it. Keep in step with auth.Revocations.HandleNotification.
    PERFORM pg_notify('tasksync_revocations',
        (extract(epoch FROM NEW.revoked_before) * 1000000)::bigint || ':' || NEW.user_id);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER user_revocations_notify AFTER INSERT OR UPDATE ON user_revocations
    FOR EACH ROW EXECUTE FUNCTION user_revocations_notify();

-- +goose Down
DROP TRIGGER user_revocations_notify ON user_revocations;
DROP FUNCTION user_revocations_notify();
DROP TABLE user_revocations;
