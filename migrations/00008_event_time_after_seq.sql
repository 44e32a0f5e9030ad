-- An event's created_at is taken after its seq, not before (issue 12 note:
-- the prune-boundary hole).
--
-- 00007 read clock_timestamp() when the function began, before the upsert
-- that assigns the seq and locks the user's user_seqs row until commit. Two
-- transactions of one user could then take seqs in the other order than
-- their clocks: seq 101 with a later created_at than seq 102. The pruner
-- deletes by created_at, so a cut-off between the two would delete 102 and
-- keep 101 and 103: a hole in the middle of the log. (The server no longer
-- skips a hole silently: a catch-up stops at it and sends a snapshot,
-- realtime/stream.go; this makes the hole not happen.) Taken after the
-- upsert, under the row lock, each event's clock is later than the commit
-- of the event before it.
--
-- The function is otherwise 00007's.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasksync_append_event(uid text, op text, task_id bigint, task json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
    at timestamptz;
    payload text;
BEGIN
    INSERT INTO user_seqs AS s (user_id, seq) VALUES (uid, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = s.seq + 1
    RETURNING s.seq INTO next_seq;
    -- After the seq, under its row lock (held to commit): the user's
    -- events are then in created_at order as in seq order.
    at := clock_timestamp();

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

