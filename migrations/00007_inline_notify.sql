-- Notifications carry the event itself when it fits (issue 12, latency):
-- an instance that receives one hands it to the user's sockets without
-- reading the change log back (docs/BENCHMARKS.md: the read was about a
-- tenth of a millisecond of each cross-instance delivery).
--
-- Payloads (parsed by realtime.parseNotification; docs/ARCHITECTURE.md):
--   inline:  e<seq>:<user id length in bytes>:<user id>:<op>:<task id>:<created_at, unix µs>:<task JSON, empty for deletes>
--   pointer: <seq>:<user id>   (as before, when the inline form would pass 7000 bytes)
-- The user id is length-prefixed (it may hold colons); nothing after it
-- needs quoting. The log stays the source of truth: the row is written as
-- before, and an instance that sees a seq that is not the next one for its
-- user reads the log from there.
--
-- Everything 00005 put in tasksync_append_event (the actor and session
-- read from the transaction's settings) is kept.
--
-- Rolling upgrade: instances built before this migration parse only the
-- pointer form and log "bad notification payload" for inline ones (their
-- sockets then get changes only after they reconnect). Replace every
-- instance first (the new code reads both forms), then migrate.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasksync_append_event(uid text, op text, task_id bigint, task json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
    at timestamptz := clock_timestamp();
    payload text;
BEGIN
    INSERT INTO user_seqs AS s (user_id, seq) VALUES (uid, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = s.seq + 1
    RETURNING s.seq INTO next_seq;

    -- A setting never set in this session is NULL; one set with
    -- is_local = true reads '' once its transaction has ended.
    INSERT INTO task_events (user_id, seq, op, task_id, task, actor, session, created_at)
    VALUES (uid, next_seq, op, task_id, task,
            coalesce(nullif(current_setting('tasksync.actor', true), ''), 'sql'),
            nullif(current_setting('tasksync.session', true), ''),
            at);

    -- The event inline when it fits well under NOTIFY's 8000-byte limit,
    -- else a pointer into the log.
    payload := 'e' || next_seq || ':' || octet_length(uid) || ':' || uid || ':' || op || ':' || task_id
        || ':' || (extract(epoch FROM at) * 1000000)::bigint || ':' || coalesce(task::text, '');
    IF octet_length(payload) > 7000 THEN
        payload := next_seq || ':' || uid;
    END IF;
    PERFORM pg_notify('tasksync_events', payload);
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasksync_append_event(uid text, op text, task_id bigint, task json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
BEGIN
    INSERT INTO user_seqs AS s (user_id, seq) VALUES (uid, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = s.seq + 1
    RETURNING s.seq INTO next_seq;

    -- A setting never set in this session is NULL; one set with
    -- is_local = true reads '' once its transaction has ended.
    INSERT INTO task_events (user_id, seq, op, task_id, task, actor, session)
    VALUES (uid, next_seq, op, task_id, task,
            coalesce(nullif(current_setting('tasksync.actor', true), ''), 'sql'),
            nullif(current_setting('tasksync.session', true), ''));

    -- A pointer, never the task: NOTIFY payloads are limited to 8000 bytes.
    PERFORM pg_notify('tasksync_events', next_seq || ':' || uid);
END
$$;
-- +goose StatementEnd
