-- Cheaper writes, found by profiling the write path (docs/BENCHMARKS.md):
--
-- - The change-log trigger built the event JSON through two LANGUAGE sql
--   helpers (tasksync_task_json, tasksync_time). Called from PL/pgSQL they
--   are not inlined, and a non-inlined SQL function is parsed again on every
--   call. The same JSON, in the same format, is now built inline in the
--   PL/pgSQL trigger, whose plans are cached.
-- - The stored generated column priority_rank had its expression read back
--   from its stored form on every INSERT and UPDATE statement; sorting by
--   priority now computes the rank in the query (there was no index on it).

-- +goose Up
ALTER TABLE tasks DROP COLUMN priority_rank;

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
    -- Keep in step with tasks.Task.MarshalJSON (key order, time format).
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
ALTER TABLE tasks ADD COLUMN priority_rank smallint NOT NULL GENERATED ALWAYS AS (
    CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END) STORED;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasks_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, tasksync_task_json(NEW));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
    ELSIF NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        PERFORM tasksync_append_event(OLD.user_id, 'deleted', OLD.id, NULL);
        PERFORM tasksync_append_event(NEW.user_id, 'created', NEW.id, tasksync_task_json(NEW));
    ELSE
        PERFORM tasksync_append_event(NEW.user_id, 'updated', NEW.id, tasksync_task_json(NEW));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
