-- Time-aware tasks (issue 13) and who made each change.
--
-- - tasks gains remind_at (the absolute time of its one reminder),
--   recurrence (an RFC 5545 RRULE without the "RRULE:" prefix, evaluated
--   from due_at in tz), tz (an IANA zone name; NULL means UTC) and
--   series_id (the id of the first task of a recurring series, shared by
--   every occurrence). The Go side validates all of them (tasks.check);
--   the CHECKs below only keep plain SQL from storing what no reader could
--   use.
-- - task_events gains actor and session: who made the change (socket,
--   rest, assistant, mcp, recurrence, reminder, service; sql when nothing
--   said) and which socket session or conversation. The service sets them
--   with set_config('tasksync.actor' / 'tasksync.session', ..., true)
--   before each mutation of its transaction; plain SQL sets nothing and
--   is logged as 'sql'.
-- - The task JSON of the change log gains due_at (the same column as
--   due_date, both always present), remind_at, recurrence, tz and
--   series_id, in the key order of tasks.Task.MarshalJSON.

-- +goose Up
ALTER TABLE tasks
    ADD COLUMN remind_at  timestamptz CHECK (isfinite(remind_at)),
    ADD COLUMN recurrence text CHECK (char_length(recurrence) BETWEEN 1 AND 500),
    ADD COLUMN tz         text CHECK (char_length(tz) BETWEEN 1 AND 64),
    ADD COLUMN series_id  bigint,
    -- A rule is evaluated from due_at: no rule without it.
    ADD CONSTRAINT tasks_recurrence_needs_due CHECK (recurrence IS NULL OR due_at IS NOT NULL);

-- One occurrence per series and due time: completing an occurrence on two
-- devices at once cannot create two next occurrences.
CREATE UNIQUE INDEX tasks_series_due_idx ON tasks (series_id, due_at) WHERE series_id IS NOT NULL;

-- Constant defaults: no table rewrite.
ALTER TABLE task_events
    ADD COLUMN actor   text NOT NULL DEFAULT 'sql',
    ADD COLUMN session text;

-- History of one task (GET /tasks/{id}/history), newest first.
CREATE INDEX task_events_task_idx ON task_events (user_id, task_id, seq);

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

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasks_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A no-op update changes nothing and logs nothing.
    IF (NEW.user_id, NEW.title, NEW.description, NEW.completed, NEW.priority, NEW.tags, NEW.due_at,
        NEW.remind_at, NEW.recurrence, NEW.tz, NEW.series_id)
       IS NOT DISTINCT FROM
       (OLD.user_id, OLD.title, OLD.description, OLD.completed, OLD.priority, OLD.tags, OLD.due_at,
        OLD.remind_at, OLD.recurrence, OLD.tz, OLD.series_id) THEN
        RETURN NULL;
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasks_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    doc json;
    due text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
        RETURN NULL;
    END IF;
    -- Keep in step with tasks.Task.MarshalJSON (key order, time format).
    due := to_char(NEW.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    doc := json_build_object(
        'id', NEW.id,
        'user_id', NEW.user_id,
        'title', NEW.title,
        'description', NEW.description,
        'completed', NEW.completed,
        'priority', NEW.priority,
        'tags', to_json(NEW.tags),
        'due_date', due,
        'due_at', due,
        'remind_at', to_char(NEW.remind_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'recurrence', NEW.recurrence,
        'tz', NEW.tz,
        'series_id', NEW.series_id,
        'created_at', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(NEW.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', NEW.version);
    IF TG_OP = 'INSERT' THEN
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, doc);
    ELSIF NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        -- A task moved between users by plain SQL: gone for one, new for the other.
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, doc);
    ELSE
        PERFORM tasksync_append_event(NEW.user_id, 'updated', NEW.id, doc);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasks_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    doc json;
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
        RETURN NULL;
    END IF;
    doc := json_build_object(
        'id', NEW.id,
        'user_id', NEW.user_id,
        'title', NEW.title,
        'description', NEW.description,
        'completed', NEW.completed,
        'priority', NEW.priority,
        'tags', to_json(NEW.tags),
        'due_date', to_char(NEW.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'created_at', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'updated_at', to_char(NEW.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'version', NEW.version);
    IF TG_OP = 'INSERT' THEN
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, doc);
    ELSIF NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, doc);
    ELSE
        PERFORM tasksync_append_event(NEW.user_id, 'updated', NEW.id, doc);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasks_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
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
CREATE OR REPLACE FUNCTION tasksync_append_event(uid text, op text, task_id bigint, task json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
BEGIN
    INSERT INTO user_seqs AS s (user_id, seq) VALUES (uid, 1)
    ON CONFLICT (user_id) DO UPDATE SET seq = s.seq + 1
    RETURNING s.seq INTO next_seq;

    INSERT INTO task_events (user_id, seq, op, task_id, task)
    VALUES (uid, next_seq, op, task_id, task);

    PERFORM pg_notify('tasksync_events', next_seq || ':' || uid);
END
$$;
-- +goose StatementEnd

DROP INDEX task_events_task_idx;
ALTER TABLE task_events DROP COLUMN session, DROP COLUMN actor;
DROP INDEX tasks_series_due_idx;
ALTER TABLE tasks DROP CONSTRAINT tasks_recurrence_needs_due,
    DROP COLUMN series_id, DROP COLUMN tz, DROP COLUMN recurrence, DROP COLUMN remind_at;
