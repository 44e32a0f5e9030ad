package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"tasksync"
)

// Limits of [Service.History].
const (
	DefaultHistoryLimit = 100
	MaxHistoryLimit     = 500
)

// Version is one entry of a task's history: one row of the change log.
type Version struct {
	Seq     int64           `json:"seq"`
	Op      Op              `json:"op"`
	At      time.Time       `json:"-"`
	Actor   string          `json:"actor"`
	Session *string         `json:"session"`
	Task    json.RawMessage `json:"task"` // as logged, key order and times kept; null for deletes
}

// MarshalJSON writes a version with its time in TimeLayout.
func (v Version) MarshalJSON() ([]byte, error) {
	type plain Version
	task := v.Task
	if task == nil {
		task = json.RawMessage("null")
	}
	return json.Marshal(struct {
		Seq     int64           `json:"seq"`
		Op      Op              `json:"op"`
		At      string          `json:"at"`
		Actor   string          `json:"actor"`
		Session *string         `json:"session"`
		Task    json.RawMessage `json:"task"`
	}{v.Seq, v.Op, v.At.UTC().Format(TimeLayout), v.Actor, v.Session, task})
}

// History is what the change log still holds of one task, newest first.
type History struct {
	TaskID   int64     `json:"task_id"`
	Versions []Version `json:"versions"`
}

// History returns the last limit entries of the change log for task id of
// userID, newest first. The log is pruned after the event retention
// (EVENT_RETENTION), so that is how far back it goes; a task with nothing
// left in the log (never existed, another user's, or pruned) is not found.
func (s *Service) History(ctx context.Context, userID string, id int64, limit int) (History, error) {
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	limit = min(limit, MaxHistoryLimit)
	rows, err := s.db.Query(ctx, `
		SELECT seq, op, created_at, actor, session, task::text FROM task_events
		WHERE user_id = $1 AND task_id = $2 ORDER BY seq DESC LIMIT $3`, userID, id, limit)
	if err != nil {
		return History{}, fmt.Errorf("read history: %w", err)
	}
	h := History{TaskID: id, Versions: []Version{}}
	for rows.Next() {
		var v Version
		var task *string
		if err := rows.Scan(&v.Seq, &v.Op, &v.At, &v.Actor, &v.Session, &task); err != nil {
			rows.Close()
			return History{}, fmt.Errorf("read history: %w", err)
		}
		if task != nil {
			v.Task = json.RawMessage(*task)
		}
		h.Versions = append(h.Versions, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return History{}, fmt.Errorf("read history: %w", err)
	}
	if len(h.Versions) == 0 {
		return History{}, tasksync.Errorf(tasksync.CodeNotFound, "task %d has no history: it is not yours, never existed, or its changes are older than the change log keeps", id)
	}
	return h, nil
}

// Restore brings task id of userID back, as an ordinary mutation with its
// own event and actor:
//
//   - version 0, task deleted: re-inserted with the same id and the fields
//     it had when deleted (OpCreated). Its version goes on from the last
//     logged one, so a client never sees a version number twice.
//   - version N, task present: the editable fields of version N (title,
//     description, completed, priority, tags, due_at, remind_at,
//     recurrence, tz) applied as an update (OpUpdated; nothing changes
//     and no event is logged when it already has them).
//   - version N, task deleted: re-inserted with the fields of version N.
//   - version 0, task present: CodeConflict (not deleted).
//
// A version the log no longer holds (or never held) is CodeNotFound. The
// id taken meanwhile (by a concurrent restore) is CodeConflict.
func (s *Service) Restore(ctx context.Context, userID string, id int64, version int, opts MutationOptions) (Result, error) {
	if version < 0 {
		return Result{}, tasksync.Invalid(map[string]string{"version": "must be a version of the task (1 or more)"})
	}
	return s.mutate(ctx, userID, opts, fingerprint(opts, "restore", id, version), func(ctx context.Context, tx querier) (Result, error) {
		cur, err := lockTask(ctx, tx, userID, id, 0)
		exists := err == nil
		if err != nil && tasksync.ErrorCode(err) != tasksync.CodeNotFound {
			return Result{}, err
		}
		if exists && version == 0 {
			return Result{}, tasksync.Errorf(tasksync.CodeConflict, "task %d is not deleted: send {\"version\": N} to return it to an earlier version", id)
		}
		if exists && opts.IfVersion != 0 && cur.Version != opts.IfVersion {
			_, err := lockTask(ctx, tx, userID, id, opts.IfVersion)
			return Result{}, err
		}
		old, err := loggedVersion(ctx, tx, userID, id, version)
		if err != nil {
			return Result{}, err
		}
		if exists {
			next := cur
			next.Title, next.Description, next.Completed, next.Priority, next.Tags = old.Title, old.Description, old.Completed, old.Priority, old.Tags
			next.DueAt, next.RemindAt, next.Recurrence, next.TZ = old.DueAt, old.RemindAt, old.Recurrence, old.TZ
			res, err := s.writeChange(ctx, tx, cur, next, opts)
			if err != nil || !cur.Completed || res.Task == nil || res.Task.Completed {
				return res, err
			}
			// Undoing a completion: the occurrence it made goes too.
			return res, s.withdrawSpawned(ctx, tx, *res.Task)
		}
		if err := check(old); err != nil {
			return Result{}, err
		}
		var last int
		if err := tx.QueryRow(ctx, `
			SELECT coalesce(max((task->>'version')::int), 0) FROM task_events
			WHERE user_id = $1 AND task_id = $2 AND task IS NOT NULL`, userID, id).Scan(&last); err != nil {
			return Result{}, fmt.Errorf("read last version: %w", err)
		}
		// ON CONFLICT: a concurrent restore of the same task (or a task
		// holding its series' due time) got there first; the INSERT waits
		// for it and then does nothing, instead of failing the batch.
		restored, err := scanTask(tx.QueryRow(ctx, `
			INSERT INTO tasks (id, user_id, title, description, completed, priority, tags, due_at, remind_at, recurrence, tz, series_id, created_at, version)
			OVERRIDING SYSTEM VALUE
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
			ON CONFLICT DO NOTHING
			RETURNING `+columns,
			id, userID, old.Title, old.Description, old.Completed, old.Priority, old.Tags, old.DueAt, old.RemindAt, old.Recurrence, old.TZ,
			old.SeriesID, old.CreatedAt, last+1))
		if errors.Is(err, pgx.ErrNoRows) {
			return Result{}, tasksync.Errorf(tasksync.CodeConflict, "task %d cannot be restored: it was restored meanwhile, or another task holds its place in its series", id)
		}
		if err != nil {
			return Result{}, fmt.Errorf("restore task: %w", err)
		}
		// Its reminder job comes back with it.
		if err := s.syncReminder(ctx, tx, userID, id, nil, &restored); err != nil {
			return Result{}, err
		}
		// Undoing a "this one" delete: the occurrence it made goes.
		if err := s.withdrawSpawned(ctx, tx, restored); err != nil {
			return Result{}, err
		}
		return Result{Op: OpCreated, TaskID: id, Task: &restored}, nil
	})
}

// withdrawSpawned deletes the next occurrence that completing or deleting
// restored (an open occurrence again) made, if nobody has touched it since
// (version 1, not completed); its delete event is logged with the
// recurrence actor. Without it, an undo of a completion or of a "this one"
// delete left two open occurrences of one series. An occurrence that was
// edited or completed meanwhile is kept: it is the user's now.
func (s *Service) withdrawSpawned(ctx context.Context, tx querier, restored Task) error {
	if restored.Completed || restored.SeriesID == nil || restored.Recurrence == nil || restored.DueAt == nil {
		return nil
	}
	due, _, ok, err := nextOccurrence(restored)
	if err != nil || !ok {
		return err
	}
	// The restore's own write is logged already: the actor can change.
	if _, err := tx.Exec(ctx, setActorSQL, ActorRecurrence, ""); err != nil {
		return fmt.Errorf("set actor: %w", err)
	}
	spawned, err := scanTask(tx.QueryRow(ctx, `
		DELETE FROM tasks
		WHERE user_id = $1 AND series_id = $2 AND due_at = $3 AND id <> $4 AND version = 1 AND NOT completed
		RETURNING `+columns, restored.UserID, *restored.SeriesID, due, restored.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("withdraw next occurrence: %w", err)
	}
	return s.syncReminder(ctx, tx, restored.UserID, spawned.ID, &spawned, nil)
}

// loggedVersion reads the task as logged at version (0: the last logged
// version) from the change log of userID.
func loggedVersion(ctx context.Context, tx querier, userID string, id int64, version int) (Task, error) {
	var raw []byte
	var err error
	if version == 0 {
		err = tx.QueryRow(ctx, `
			SELECT task::text FROM task_events WHERE user_id = $1 AND task_id = $2 AND task IS NOT NULL
			ORDER BY seq DESC LIMIT 1`, userID, id).Scan(&raw)
	} else {
		err = tx.QueryRow(ctx, `
			SELECT task::text FROM task_events WHERE user_id = $1 AND task_id = $2 AND task IS NOT NULL
			AND (task->>'version')::int = $3 ORDER BY seq DESC LIMIT 1`, userID, id, version).Scan(&raw)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if version == 0 {
			return Task{}, tasksync.Errorf(tasksync.CodeNotFound, "task %d has no history to restore from: it is not yours, never existed, or its changes are older than the change log keeps", id)
		}
		return Task{}, tasksync.Errorf(tasksync.CodeNotFound, "version %d of task %d is not in its history: it never existed, or is older than the change log keeps", version, id)
	}
	if err != nil {
		return Task{}, fmt.Errorf("read logged version: %w", err)
	}
	var t Task
	if err := json.Unmarshal(raw, &t); err != nil {
		return Task{}, fmt.Errorf("decode logged version: %w", err)
	}
	if t.Tags == nil {
		t.Tags = []string{}
	}
	return t, nil
}
