package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"tasksync"
)

// Recurring tasks.
//
// A recurring task is a series of occurrences, each an ordinary task row
// with the same series_id (the id of the first one). Only one step of the
// rule is ever computed: completing an occurrence (completed false->true),
// or deleting one that is not done, inserts the next occurrence in the same
// transaction (see spawnNext). Nothing runs in the background, and nothing
// is created ahead of time.
//
// The next occurrence is the first instance of the rule strictly after this
// occurrence's due_at, with DTSTART = due_at in the task's tz: the rule runs
// on local wall time, so "every Monday at 09:00" stays 09:00 across a
// daylight-saving change, and a rule that names no day (FREQ=WEEKLY) takes
// its day from the due date the occurrence has now (moved or not).
//
// COUNT counts from the occurrence that carries it: the next one gets
// COUNT-1, and the occurrence with COUNT=1 is the last. (DTSTART moves with
// every occurrence, so a COUNT left as it is would never run out.) UNTIL
// is absolute and kept as written.

// nextOccurrence returns the due time and the rule of the occurrence after
// t, or ok false when the rule has run out (COUNT, UNTIL, or no instance
// before year 10000). The rule is read by [Rule], as validation reads it.
func nextOccurrence(t Task) (next time.Time, nextRule string, ok bool, err error) {
	r, err := Rule(t)
	if err != nil {
		return time.Time{}, "", false, err
	}
	count := r.OrigOptions.Count
	if count == 1 {
		return time.Time{}, "", false, nil // this occurrence was the last
	}
	// DTSTART is t's due time truncated to the second (the library's
	// precision); After is strict, so neither it nor, when due_at has a
	// fraction of a second, its floor can come out. With COUNT >= 2 the
	// library has at least one instance after DTSTART to give.
	next = r.After(*t.DueAt, false)
	if next.IsZero() {
		return time.Time{}, "", false, nil
	}
	nextRule = *t.Recurrence
	if count > 1 {
		nextRule = withCount(nextRule, count-1)
	}
	return next.UTC(), nextRule, true, nil
}

// withCount returns rule with its COUNT part set to n, the other parts
// untouched and in their order.
func withCount(rule string, n int) string {
	parts := strings.Split(rule, ";")
	for i, p := range parts {
		if k, _, found := strings.Cut(p, "="); found && strings.EqualFold(strings.TrimSpace(k), "COUNT") {
			parts[i] = "COUNT=" + strconv.Itoa(n)
		}
	}
	return strings.Join(parts, ";")
}

// occurrence is the next occurrence of a series, computed before anything
// is written (a refusal must leave no trace in a group-commit batch).
type occurrence struct {
	task Task // the row to insert: no id, version or timestamps yet
}

// planNext returns the occurrence that follows done, or nil when done is
// not recurring or its series has run out. An error means the stored rule
// cannot be evaluated: the caller refuses its change (CodeInvalid).
func planNext(done Task) (*occurrence, error) {
	if done.Recurrence == nil || done.DueAt == nil {
		return nil, nil
	}
	series := done.SeriesID
	if series == nil {
		// Written by plain SQL without a series: this task starts one.
		series = &done.ID
	}
	due, rule, ok, err := nextOccurrence(done)
	if err != nil {
		return nil, tasksync.Invalid(map[string]string{"recurrence": err.Error()})
	}
	if !ok {
		return nil, nil
	}
	next := Task{
		UserID: done.UserID, Title: done.Title, Description: done.Description, Priority: done.Priority,
		Tags: done.Tags, DueAt: &due, Recurrence: &rule, TZ: done.TZ, SeriesID: series,
	}
	if next.Tags == nil {
		next.Tags = []string{}
	}
	if done.RemindAt != nil {
		// The reminder keeps its distance to the due time.
		remind := due.Add(-done.DueAt.Sub(*done.RemindAt))
		next.RemindAt = &remind
	}
	return &occurrence{task: next}, nil
}

// insert writes the occurrence and returns it (nil when nothing was
// inserted), logged with actor "recurrence" and the
// session of the change that made it. The setting lasts until the next
// mutation of the transaction, which names its own actor (setActor).
//
// Nothing is inserted when the series already has an occurrence due at or
// after this one: a completion undone and done again, an older occurrence
// completed late, or the same occurrence completed at the same moment on
// two instances (the row lock of lockTask serialises those; the unique
// index tasks_series_due_idx is the backstop, ON CONFLICT DO NOTHING so
// that it can never abort a batch).
func (o *occurrence) insert(ctx context.Context, tx querier, opts MutationOptions) (*Task, error) {
	_, session, err := actorOf(opts)
	if err != nil {
		return nil, err
	}
	t := o.task
	created, err := scanTask(tx.QueryRow(ctx, `
		WITH actor AS MATERIALIZED (`+setActorSQL+`)
		INSERT INTO tasks (user_id, title, description, priority, tags, due_at, remind_at, recurrence, tz, series_id)
		SELECT $3::text, $4::text, $5::text, $6::text, $7::text[], $8::timestamptz, $9::timestamptz, $10::text, $11::text, $12::bigint
		FROM actor
		WHERE NOT EXISTS (SELECT FROM tasks WHERE user_id = $3 AND series_id = $12 AND due_at >= $8)
		ON CONFLICT DO NOTHING
		RETURNING `+columns,
		ActorRecurrence, session, t.UserID, t.Title, t.Description, t.Priority, t.Tags, t.DueAt, t.RemindAt, t.Recurrence, t.TZ, t.SeriesID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil // the series is ahead already
	}
	if err != nil {
		return nil, fmt.Errorf("insert next occurrence: %w", err)
	}
	return &created, nil
}

// checkSeriesSlot refuses moving an occurrence to the due time of another
// occurrence of its series (the unique index would refuse it mid-batch).
func checkSeriesSlot(ctx context.Context, tx querier, cur, next Task) error {
	if next.SeriesID == nil || next.DueAt == nil || sameTime(cur.DueAt, next.DueAt) && samePtr(cur.SeriesID, next.SeriesID) {
		return nil
	}
	var other int64
	err := tx.QueryRow(ctx, `SELECT id FROM tasks WHERE user_id = $1 AND series_id = $2 AND due_at = $3 AND id <> $4 LIMIT 1`,
		cur.UserID, *next.SeriesID, *next.DueAt, cur.ID).Scan(&other)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check series: %w", err)
	}
	return tasksync.Errorf(tasksync.CodeConflict, "task %d of the same series is already due at %s; a series has one occurrence per due time",
		other, next.DueAt.UTC().Format(time.RFC3339))
}

// DeleteScope says what deleting an occurrence of a recurring task removes.
type DeleteScope string

// The delete scopes.
const (
	// DeleteThis deletes the one task (the default). For an occurrence
	// that is not done, the next occurrence is created first, so that the
	// series goes on: "skip this one".
	DeleteThis DeleteScope = "this"
	// DeleteSeries deletes every task of the series, done or not.
	DeleteSeries DeleteScope = "all"
)

// ParseDeleteScope reads the series option of a delete (REST ?series=,
// socket and chat tool "series"): "" or "this", or "all".
func ParseDeleteScope(s string) (DeleteScope, error) {
	switch DeleteScope(s) {
	case "", DeleteThis:
		return DeleteThis, nil
	case DeleteSeries:
		return DeleteSeries, nil
	}
	return "", tasksync.Invalid(map[string]string{"series": `must be "this" (the default: this occurrence only) or "all" (every task of its series)`})
}

// DeleteSeries deletes the task id and every other task of its series
// (same series_id), completed or not; a task without a series is deleted
// alone. opts.IfVersion checks the version of task id. Each deleted task
// is its own change event; the result names task id.
func (s *Service) DeleteSeries(ctx context.Context, userID string, id int64, opts MutationOptions) (Result, error) {
	return s.mutate(ctx, userID, opts, fingerprint(opts, "delete-series", id, nil), func(ctx context.Context, tx querier) (Result, error) {
		cur, err := lockTask(ctx, tx, userID, id, opts.IfVersion)
		if err != nil {
			return Result{}, err
		}
		if cur.SeriesID != nil {
			// Lock the whole series first, in id order. A completion
			// running now holds its occurrence until it commits, with
			// the occurrence it creates; the DELETE below, a statement
			// of its own, then sees that one too.
			if _, err := tx.Exec(ctx, `SELECT FROM tasks WHERE user_id = $1 AND series_id = $2 ORDER BY id FOR UPDATE`, userID, *cur.SeriesID); err != nil {
				return Result{}, fmt.Errorf("lock series: %w", err)
			}
		}
		rows, err := tx.Query(ctx, `DELETE FROM tasks WHERE user_id = $1 AND (id = $2 OR series_id = $3) RETURNING id, completed, remind_at`, userID, id, cur.SeriesID)
		if err != nil {
			return Result{}, fmt.Errorf("delete series: %w", err)
		}
		var gone []Task
		var g Task
		if _, err := pgx.ForEachRow(rows, []any{&g.ID, &g.Completed, &g.RemindAt}, func() error {
			gone = append(gone, g)
			return nil
		}); err != nil {
			return Result{}, fmt.Errorf("delete series: %w", err)
		}
		for _, g := range gone {
			if err := s.syncReminder(ctx, tx, userID, g.ID, &g, nil); err != nil {
				return Result{}, err
			}
		}
		return Result{Op: OpDeleted, TaskID: id}, nil
	})
}

// prepareSeries is the part of a change that concerns its series, decided
// before the change is written: a task that gets a rule and has no series
// starts one (series_id = its id); moving an occurrence onto the due time
// of another of its series is refused; completing an occurrence plans the
// next one, which the caller inserts after its UPDATE.
func prepareSeries(ctx context.Context, tx querier, cur Task, next *Task) (*occurrence, error) {
	if next.Recurrence != nil && next.SeriesID == nil {
		next.SeriesID = &cur.ID
	}
	if err := checkSeriesSlot(ctx, tx, cur, *next); err != nil {
		return nil, err
	}
	if cur.Completed || !next.Completed {
		return nil, nil
	}
	return planNext(*next)
}

// createFirstOccurrence inserts a task that has a rule: the first
// occurrence of a new series, whose series_id is its own id. The id is
// drawn before the INSERT so that one statement writes both (see Create
// for why the statement names its actor).
func createFirstOccurrence(ctx context.Context, tx querier, actor, session string, t Task) (Result, error) {
	created, err := scanTask(tx.QueryRow(ctx, `
		WITH actor AS MATERIALIZED (`+setActorSQL+`),
		n AS (SELECT nextval(pg_get_serial_sequence('tasks', 'id')) AS id FROM actor)
		INSERT INTO tasks (id, user_id, title, description, completed, priority, tags, due_at, remind_at, recurrence, tz, series_id)
		OVERRIDING SYSTEM VALUE
		SELECT n.id, $3::text, $4::text, $5::text, $6::bool, $7::text, $8::text[], $9::timestamptz, $10::timestamptz, $11::text, $12::text, n.id
		FROM n
		RETURNING `+columns,
		actor, session, t.UserID, t.Title, t.Description, t.Completed, t.Priority, t.Tags, t.DueAt, t.RemindAt, t.Recurrence, t.TZ))
	if err != nil {
		return Result{}, fmt.Errorf("insert task: %w", err)
	}
	return Result{Op: OpCreated, TaskID: created.ID, Task: &created}, nil
}
