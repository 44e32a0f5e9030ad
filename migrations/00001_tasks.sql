-- Tasks, their per-user change log and the triggers that keep the log
-- complete whatever writes to the table (the service, or plain SQL run by
-- another program).

-- +goose Up
CREATE TABLE tasks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       text        NOT NULL CHECK (user_id <> '' AND octet_length(user_id) <= 256),
    title         text        NOT NULL CHECK (char_length(btrim(title)) BETWEEN 1 AND 200),
    description   text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    completed     boolean     NOT NULL DEFAULT false,
    priority      text        NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high')),
    tags          text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    due_at        timestamptz CHECK (isfinite(due_at)),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer     NOT NULL DEFAULT 1,
    -- Sorting by priority means high > medium > low, not alphabetical.
    priority_rank smallint    NOT NULL GENERATED ALWAYS AS (
        CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END) STORED
);

-- Every query is scoped by user_id; each index ends in id for keyset pagination.
CREATE INDEX tasks_user_created_idx   ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_completed_idx ON tasks (user_id, completed, created_at, id);
CREATE INDEX tasks_user_updated_idx   ON tasks (user_id, updated_at, id);
CREATE INDEX tasks_user_due_idx       ON tasks (user_id, due_at, id);

-- The last change sequence number handed out per user. The row lock taken by
-- the upsert in tasks_log_change() serialises a user's writers until commit,
-- which makes the sequence gap-free and in commit order.
CREATE TABLE user_seqs (
    user_id text   PRIMARY KEY,
    seq     bigint NOT NULL
);

-- The durable change log that sockets resume from. task holds the task after
-- the change in the public JSON shape (NULL for deletes); json rather than
-- jsonb keeps the key order of the REST responses.
CREATE TABLE task_events (
    user_id    text        NOT NULL,
    seq        bigint      NOT NULL,
    op         text        NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
    task_id    bigint      NOT NULL,
    task       json,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX task_events_created_at_idx ON task_events (created_at);

-- Results of mutations that carried an Idempotency-Key (REST) or a
-- mutation_id (socket): a retry returns the stored result.
CREATE TABLE idempotency_keys (
    user_id     text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    result      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- Timestamps in the exact format the Go side writes (tasks.Task.MarshalJSON),
-- so that an event and a REST response show the same bytes for a time.
-- +goose StatementBegin
CREATE FUNCTION tasksync_time(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasksync_task_json(t tasks) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', t.id,
        'user_id', t.user_id,
        'title', t.title,
        'description', t.description,
        'completed', t.completed,
        'priority', t.priority,
        'tags', to_json(t.tags),
        'due_date', tasksync_time(t.due_at),
        'created_at', tasksync_time(t.created_at),
        'updated_at', tasksync_time(t.updated_at),
        'version', t.version)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasks_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A no-op update changes nothing and logs nothing.
    -- (Compared field by field: generated columns are not yet computed in NEW.)
    IF (NEW.user_id, NEW.title, NEW.description, NEW.completed, NEW.priority, NEW.tags, NEW.due_at)
       IS NOT DISTINCT FROM
       (OLD.user_id, OLD.title, OLD.description, OLD.completed, OLD.priority, OLD.tags, OLD.due_at) THEN
        RETURN NULL;
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasksync_append_event(uid text, op text, task_id bigint, task json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
BEGIN
    INSERT INTO user_seqs AS s (user_id, seq) VALUES (uid, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = s.seq + 1
    RETURNING s.seq INTO next_seq;

    INSERT INTO task_events (user_id, seq, op, task_id, task)
    VALUES (uid, next_seq, op, task_id, task);

    -- A pointer, never the task: NOTIFY payloads are limited to 8000 bytes.
    PERFORM pg_notify('tasksync_events', next_seq || ':' || uid);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasks_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, tasksync_task_json(NEW));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
    ELSIF NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        -- A task moved between users by plain SQL: gone for one, new for the other.
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, tasksync_task_json(NEW));
    ELSE
        PERFORM tasksync_append_event(NEW.user_id, 'updated', NEW.id, tasksync_task_json(NEW));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER tasks_before_update BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_before_update();
CREATE TRIGGER tasks_log_change AFTER INSERT OR UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_log_change();

-- +goose Down
DROP TRIGGER tasks_log_change ON tasks;
DROP TRIGGER tasks_before_update ON tasks;
DROP FUNCTION tasks_log_change();
DROP FUNCTION tasks_before_update();
DROP FUNCTION tasksync_append_event(text, text, bigint, json);
DROP FUNCTION tasksync_task_json(tasks);
DROP FUNCTION tasksync_time(timestamptz);
DROP TABLE idempotency_keys, task_events, user_seqs, tasks;
