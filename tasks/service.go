package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"tasksync"
	"tasksync/auth"
)

// Op names what a mutation did; the same words name change events.
type Op string

// The mutation kinds.
const (
	OpCreated Op = "created"
	OpUpdated Op = "updated"
	OpDeleted Op = "deleted"
)

// Result is the outcome of a mutation, as stored for idempotent retries.
type Result struct {
	Op     Op    `json:"op"`
	TaskID int64 `json:"task_id"`
	Task   *Task `json:"task,omitempty"` // nil for deletes
	// Replayed is true when the result was stored by an earlier request
	// with the same idempotency key and nothing was changed now.
	Replayed bool `json:"-"`
}

// MutationOptions are the optional guards of a mutation.
type MutationOptions struct {
	// IdempotencyKey (REST Idempotency-Key, socket mutation_id) makes a
	// retry return the first result instead of applying the change again.
	IdempotencyKey string
	// IfVersion, when not zero, is the version the client last saw; the
	// mutation fails with CodeVersionMismatch if the task has moved on.
	IfVersion int
	// Actor names who makes the change (one of the Actor* values); the
	// change log records it (task_events.actor). Empty means ActorService.
	Actor string
	// Session narrows Actor down: the socket session id, the assistant's
	// conversation id. Empty for none.
	Session string
}

// The actors of the change log (task_events.actor). The trigger writes
// ActorSQL for a change made without naming one: plain SQL.
const (
	ActorSocket     = "socket"     // a socket frame; Session is the socket session id
	ActorREST       = "rest"       // the REST API
	ActorAssistant  = "assistant"  // a chat tool call; Session is the conversation id
	ActorMCP        = "mcp"        // an MCP tool call
	ActorRecurrence = "recurrence" // the next occurrence made by completing one
	ActorReminder   = "reminder"   // the reminder machinery
	ActorService    = "service"    // a Go caller of Service that named no actor
	ActorSQL        = "sql"        // plain SQL: nothing was set
)

// Limits of MutationOptions.Actor and Session.
const (
	MaxActor   = 32
	MaxSession = 200
)

// actorOf returns the actor and session a mutation is logged with.
func actorOf(opts MutationOptions) (actor, session string, err error) {
	actor = opts.Actor
	if actor == "" {
		actor = ActorService
	}
	if len(actor) > MaxActor || !storableText(actor) || len(opts.Session) > MaxSession || !storableText(opts.Session) {
		return "", "", tasksync.Errorf(tasksync.CodeBadRequest, "the actor must be 1 to %d bytes and the session at most %d bytes of UTF-8 text", MaxActor, MaxSession)
	}
	return actor, opts.Session, nil
}

// querier is what a mutation runs its statements on: the batch's
// transaction, or the pool itself for a one-statement mutation running
// alone (autocommit: the statement and its triggers are one transaction).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// setActorSQL names the actor ($1) and session ($2) that the change-log
// trigger records for the writes that follow in the transaction.
const setActorSQL = `SELECT set_config('tasksync.actor', $1, true), set_config('tasksync.session', $2, true)`

// CreateStatement is the statement of a create that runs alone: it names
// its own actor ($1, $2), because alone it runs in autocommit, where a
// set_config of its own would end with its own implicit transaction. Its
// other arguments are the row: user_id, title, description, completed,
// priority, tags, due_at, remind_at, recurrence, tz, series_id. Exported
// for the load tool's like-for-like baseline (loadgen notify --task), which
// runs exactly this without the server.
const CreateStatement = `
			WITH actor AS MATERIALIZED (` + setActorSQL + `)
			INSERT INTO tasks (user_id, title, description, completed, priority, tags, due_at, remind_at, recurrence, tz, series_id)
			SELECT $3::text, $4::text, $5::text, $6::bool, $7::text, $8::text[], $9::timestamptz, $10::timestamptz, $11::text, $12::text, $13::bigint
			FROM actor
			RETURNING ` + columns

// mutation is the work of one mutation inside its transaction.
type mutation func(ctx context.Context, q querier) (Result, error)

// MaxIdempotencyKey is the longest accepted idempotency key or mutation id.
const MaxIdempotencyKey = 200

// ValidateIdempotencyKey checks an idempotency key (REST Idempotency-Key,
// socket mutation_id): 1 to MaxIdempotencyKey printable ASCII characters,
// or empty for none. Every mutation is checked by the Service itself
// before it can join a group-commit batch, so callers need not call it;
// it is exported for transports that want to refuse a frame early with the
// same rule and the same error (CodeBadRequest).
func ValidateIdempotencyKey(key string) error {
	if key == "" || validKey(key) {
		return nil
	}
	return tasksync.Errorf(tasksync.CodeBadRequest,
		"the idempotency key (Idempotency-Key header or mutation_id) must be 1 to %d printable ASCII characters", MaxIdempotencyKey)
}

// Service is the one way tasks are read and written. Every write goes
// through [Service.mutate], a single transaction; the change-log triggers
// add the event row and the notification to that transaction.
//
// A Service is safe for concurrent use.
type Service struct {
	db      *pgxpool.Pool
	batches batcher
	// txTimeout bounds a transaction of mutations once it has begun
	// (batchTimeout; tests shorten it).
	txTimeout time.Duration
	// scheduler, when set (UseScheduler), keeps reminder jobs in step
	// with the tasks, in the mutations' transactions (scheduler.go).
	scheduler Scheduler
}

// NewService returns a Service over db with default group-commit options.
func NewService(db *pgxpool.Pool) *Service { return NewServiceWith(db, BatchOptions{}) }

// NewServiceWith returns a Service over db with the given group-commit
// options.
func NewServiceWith(db *pgxpool.Pool, opts BatchOptions) *Service {
	if opts.MaxBatches <= 0 {
		opts.MaxBatches = DefaultMaxBatches
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	return &Service{db: db, batches: batcher{opts: opts}, txTimeout: batchTimeout}
}

const columns = `id, user_id, title, description, completed, priority, tags, due_at, remind_at, recurrence, tz, series_id, created_at, updated_at, version`

// scanDest returns where the values of columns go in t.
func scanDest(t *Task) []any {
	return []any{&t.ID, &t.UserID, &t.Title, &t.Description, &t.Completed, &t.Priority, &t.Tags,
		&t.DueAt, &t.RemindAt, &t.Recurrence, &t.TZ, &t.SeriesID, &t.CreatedAt, &t.UpdatedAt, &t.Version}
}

func scanTask(row pgx.Row) (Task, error) {
	var t Task
	err := row.Scan(scanDest(&t)...)
	if t.Tags == nil {
		t.Tags = []string{}
	}
	return t, err
}

func notFound(id int64) error {
	return tasksync.Errorf(tasksync.CodeNotFound, "task %d not found", id)
}

// Get returns one task of userID.
func (s *Service) Get(ctx context.Context, userID string, id int64) (Task, error) {
	t, err := scanTask(s.db.QueryRow(ctx, `SELECT `+columns+` FROM tasks WHERE user_id = $1 AND id = $2`, userID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Task{}, notFound(id)
	}
	if err != nil {
		return Task{}, fmt.Errorf("get task: %w", err)
	}
	return t, nil
}

// Create adds a task for userID. Title is required; the other fields take
// their defaults (medium priority, no tags, no due date) when not sent.
func (s *Service) Create(ctx context.Context, userID string, f Fields, opts MutationOptions) (Result, error) {
	t := Task{UserID: userID, Priority: PriorityMedium, Tags: []string{}}
	f.applyTo(&t)
	if f.Title == nil {
		return Result{}, tasksync.Invalid(map[string]string{"title": "is required and must not be blank"})
	}
	if err := check(t); err != nil {
		return Result{}, err
	}
	// One statement: alone and without an idempotency key it runs in
	// autocommit, one round trip instead of three (BEGIN, INSERT, COMMIT).
	// In a batch, consecutive creates are one multi-row INSERT (insertMany).
	actor, session, err := actorOf(opts)
	if err != nil {
		return Result{}, err
	}
	// A create that sets a reminder enqueues its job in its transaction:
	// not in autocommit, nor in a multi-row INSERT.
	reminder, insert := s.needsScheduler(&t), &t
	if reminder {
		insert = nil
	}
	return s.submit(ctx, userID, opts, fingerprint(opts, "create", 0, t), func(ctx context.Context, tx querier) (Result, error) {
		if t.Recurrence != nil {
			res, err := createFirstOccurrence(ctx, tx, actor, session, t)
			if err == nil {
				err = s.syncReminder(ctx, tx, userID, res.TaskID, nil, res.Task)
			}
			return res, err
		}
		created, err := scanTask(tx.QueryRow(ctx, CreateStatement, actor, session, userID, t.Title, t.Description, t.Completed, t.Priority, t.Tags, t.DueAt, t.RemindAt, t.Recurrence, t.TZ, t.SeriesID))
		if err != nil {
			return Result{}, fmt.Errorf("insert task: %w", err)
		}
		if err := s.syncReminder(ctx, tx, userID, created.ID, nil, &created); err != nil {
			return Result{}, err
		}
		return Result{Op: OpCreated, TaskID: created.ID, Task: &created}, nil
	}, !reminder, insert)
}

// Update applies the sent fields to a task (PATCH semantics).
func (s *Service) Update(ctx context.Context, userID string, id int64, f Fields, opts MutationOptions) (Result, error) {
	return s.change(ctx, userID, id, opts, fingerprint(opts, "update", id, f), func(cur Task) (Task, error) {
		next := cur
		f.applyTo(&next)
		return next, nil
	})
}

// Replace sets every editable field of a task (PUT semantics): fields not
// sent return to their defaults, except completion, which is kept unless
// sent (it has its own endpoint and a client that edits a title should not
// reopen a done task by leaving it out).
func (s *Service) Replace(ctx context.Context, userID string, id int64, f Fields, opts MutationOptions) (Result, error) {
	if f.Title == nil {
		return Result{}, tasksync.Invalid(map[string]string{"title": "is required and must not be blank"})
	}
	return s.change(ctx, userID, id, opts, fingerprint(opts, "replace", id, f), func(cur Task) (Task, error) {
		next := cur
		next.Description, next.Priority, next.Tags = "", PriorityMedium, []string{}
		next.DueAt, next.RemindAt, next.Recurrence, next.TZ = nil, nil, nil, nil
		f.applyTo(&next)
		return next, nil
	})
}

// SetCompleted marks a task done or not done; a nil completed toggles it.
func (s *Service) SetCompleted(ctx context.Context, userID string, id int64, completed *bool, opts MutationOptions) (Result, error) {
	return s.change(ctx, userID, id, opts, fingerprint(opts, "complete", id, completed), func(cur Task) (Task, error) {
		next := cur
		if completed == nil {
			next.Completed = !cur.Completed
		} else {
			next.Completed = *completed
		}
		return next, nil
	})
}

// Delete removes a task. When it is an occurrence of a recurring task that
// is not completed, the next occurrence is created in the same transaction
// (this one is skipped; the series goes on). [Service.DeleteSeries]
// deletes the whole series.
func (s *Service) Delete(ctx context.Context, userID string, id int64, opts MutationOptions) (Result, error) {
	return s.mutate(ctx, userID, opts, fingerprint(opts, "delete", id, nil), func(ctx context.Context, tx querier) (Result, error) {
		cur, err := lockTask(ctx, tx, userID, id, opts.IfVersion)
		if err != nil {
			return Result{}, err
		}
		var following *occurrence
		if !cur.Completed {
			// Deleting an open occurrence skips it: the series goes on.
			// A rule that cannot be evaluated does not stop the delete.
			following, _ = planNext(cur)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tasks WHERE user_id = $1 AND id = $2`, userID, id); err != nil {
			return Result{}, fmt.Errorf("delete task: %w", err)
		}
		if following != nil {
			next, err := following.insert(ctx, tx, opts)
			if err != nil {
				return Result{}, err
			}
			if err := s.syncReminder(ctx, tx, userID, idOf(next), nil, next); err != nil {
				return Result{}, err
			}
		}
		if err := s.syncReminder(ctx, tx, userID, id, &cur, nil); err != nil {
			return Result{}, err
		}
		return Result{Op: OpDeleted, TaskID: id}, nil
	})
}

// change is the read-modify-write shared by Update, Replace and
// SetCompleted: lock the row, check the version, compute the new task,
// validate it, and write it unless nothing changed.
func (s *Service) change(ctx context.Context, userID string, id int64, opts MutationOptions, fp string, next func(Task) (Task, error)) (Result, error) {
	return s.mutate(ctx, userID, opts, fp, func(ctx context.Context, tx querier) (Result, error) {
		cur, err := lockTask(ctx, tx, userID, id, opts.IfVersion)
		if err != nil {
			return Result{}, err
		}
		t, err := next(cur)
		if err != nil {
			return Result{}, err
		}
		return s.writeChange(ctx, tx, cur, t, opts)
	})
}

// writeChange validates t, the new state of the locked task cur, and
// writes it unless nothing changed, with its reminder job. Completing an
// occurrence of a recurring task creates the next one, in this transaction.
func (s *Service) writeChange(ctx context.Context, tx querier, cur, t Task, opts MutationOptions) (Result, error) {
	if err := check(t); err != nil {
		return Result{}, err
	}
	if sameEditable(cur, t) {
		return Result{Op: OpUpdated, TaskID: cur.ID, Task: &cur}, nil
	}
	following, err := prepareSeries(ctx, tx, cur, &t)
	if err != nil {
		return Result{}, err
	}
	updated, err := scanTask(tx.QueryRow(ctx, `
		UPDATE tasks SET title = $3, description = $4, completed = $5, priority = $6, tags = $7, due_at = $8,
			remind_at = $9, recurrence = $10, tz = $11, series_id = $12
		WHERE user_id = $1 AND id = $2
		RETURNING `+columns,
		cur.UserID, cur.ID, t.Title, t.Description, t.Completed, t.Priority, t.Tags, t.DueAt, t.RemindAt, t.Recurrence, t.TZ, t.SeriesID))
	if err != nil {
		return Result{}, fmt.Errorf("update task: %w", err)
	}
	if following != nil {
		// Completing an occurrence: the next one, in this transaction.
		next, err := following.insert(ctx, tx, opts)
		if err != nil {
			return Result{}, err
		}
		if err := s.syncReminder(ctx, tx, cur.UserID, idOf(next), nil, next); err != nil {
			return Result{}, err
		}
	}
	if err := s.syncReminder(ctx, tx, cur.UserID, cur.ID, &cur, &updated); err != nil {
		return Result{}, err
	}
	return Result{Op: OpUpdated, TaskID: cur.ID, Task: &updated}, nil
}

// lockTask reads a task of userID FOR UPDATE and checks its version.
func lockTask(ctx context.Context, tx querier, userID string, id int64, ifVersion int) (Task, error) {
	cur, err := scanTask(tx.QueryRow(ctx, `SELECT `+columns+` FROM tasks WHERE user_id = $1 AND id = $2 FOR UPDATE`, userID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Task{}, notFound(id)
	}
	if err != nil {
		return Task{}, fmt.Errorf("lock task: %w", err)
	}
	if ifVersion != 0 && cur.Version != ifVersion {
		return Task{}, &tasksync.Error{
			Code:    tasksync.CodeVersionMismatch,
			Message: fmt.Sprintf("task %d is at version %d, not %d: someone else changed it first", id, cur.Version, ifVersion),
			Current: cur,
		}
	}
	return cur, nil
}

// mutate is the single write path: one transaction holding the idempotency
// record (if any), the change itself and, through the triggers, the change
// log row and its notification. Concurrent mutations share transactions
// (group commit, see commit.go); a refused mutation leaves no trace in its
// batch. A deadlock or serialization failure is retried a few times; any
// other error rolls the mutation back. What the caller is told is what the
// database did (see outcome.go).
func (s *Service) mutate(ctx context.Context, userID string, opts MutationOptions, fp string, fn mutation) (Result, error) {
	return s.submit(ctx, userID, opts, fp, fn, false, nil)
}

// submit queues a mutation for group commit and waits for its result.
// single says fn is one statement (alone and without an idempotency key it
// may run in autocommit); insert, for a create, is the row fn inserts, so
// that a batch can insert several creates with one statement.
//
// Everything the database could refuse about the caller's input is refused
// here, before the mutation can share a transaction with anyone else's: an
// SQL error inside a batch rolls back every mutation in it (see runBatch).
func (s *Service) submit(ctx context.Context, userID string, opts MutationOptions, fp string, fn mutation, single bool, insert *Task) (Result, error) {
	if err := ValidateIdempotencyKey(opts.IdempotencyKey); err != nil {
		return Result{}, err
	}
	if err := validUser(userID); err != nil {
		return Result{}, err
	}
	actor, session, err := actorOf(opts)
	if err != nil {
		return Result{}, err
	}
	if ctx.Err() != nil {
		return Result{}, notStarted(ctx)
	}
	j := &job{ctx: ctx, userID: userID, key: opts.IdempotencyKey, fp: fp, fn: fn, single: single, insert: insert,
		actor: actorSetting{actor: actor, session: session}, done: make(chan struct{})}
	s.batches.run(s, j)
	<-j.done
	return j.res, j.err
}

// actorSetting is the actor and session the change-log trigger records.
type actorSetting struct{ actor, session string }

// setActor makes the transaction's next writes be logged with j's actor.
// It is set before every mutation, even one of the same actor as the one
// before it in a batch, because a mutation may log other writes under
// another actor (the next occurrence of a recurring task, as recurrence).
// A single-statement mutation (a create) names its actor in its own
// statement instead: alone it runs in autocommit, where a set_config of
// its own would end with its own implicit transaction.
func setActor(ctx context.Context, tx querier, j *job) error {
	if j.single {
		return nil
	}
	if _, err := tx.Exec(ctx, setActorSQL, j.actor.actor, j.actor.session); err != nil {
		return fmt.Errorf("set actor: %w", err)
	}
	return nil
}

// runMutation runs j's mutation with its idempotency record. inBatch says
// the transaction goes on after this mutation: a refusal must then leave
// no trace, so a key claimed for it is released again.
func runMutation(ctx context.Context, tx querier, j *job, inBatch bool) (Result, error) {
	userID, key, fp, fn := j.userID, j.key, j.fp, j.fn
	if err := setActor(ctx, tx, j); err != nil {
		return Result{}, err
	}
	if key != "" {
		// Claim the key. A concurrent request with the same key blocks on
		// the primary key until this transaction ends, then finds our row.
		tag, err := tx.Exec(ctx, `
			INSERT INTO idempotency_keys (user_id, key, fingerprint, result) VALUES ($1, $2, $3, '{}')
			ON CONFLICT (user_id, key) DO NOTHING`, userID, key, fp)
		if err != nil {
			return Result{}, fmt.Errorf("claim idempotency key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return replay(ctx, tx, userID, key, fp)
		}
	}
	res, err := fn(ctx, tx)
	if err != nil {
		if key != "" && inBatch && refusal(err) {
			if _, derr := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key); derr != nil {
				return Result{}, fmt.Errorf("release idempotency key: %w", derr)
			}
		}
		return Result{}, err
	}
	if key != "" {
		raw, err := json.Marshal(res)
		if err != nil {
			return Result{}, fmt.Errorf("encode result: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET result = $3 WHERE user_id = $1 AND key = $2`, userID, key, raw); err != nil {
			return Result{}, fmt.Errorf("store idempotent result: %w", err)
		}
	}
	return res, nil
}

func replay(ctx context.Context, tx querier, userID, key, fp string) (Result, error) {
	var storedFP string
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT fingerprint, result FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key).Scan(&storedFP, &raw)
	if err != nil {
		return Result{}, fmt.Errorf("read idempotency key: %w", err)
	}
	if storedFP != fp {
		return Result{}, tasksync.Errorf(tasksync.CodeConflict, "this idempotency key was already used for a different request")
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return Result{}, fmt.Errorf("decode idempotent result: %w", err)
	}
	res.Replayed = true
	return res, nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// fingerprint identifies a request so that an idempotency key reused for a
// different request is refused rather than answered with the wrong result.
func fingerprint(opts MutationOptions, op string, id int64, input any) string {
	if opts.IdempotencyKey == "" {
		return "" // only compared when a key is stored: not worth a JSON encoding and a hash per write
	}
	b, _ := json.Marshal(input)
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s", op, id, b)))
	return hex.EncodeToString(sum[:])
}

// Snapshot returns all tasks of userID and the user's change sequence number
// at the same instant: applying later events (seq > the returned seq) to the
// snapshot gives the current state. It is [Service.SnapshotPages] collected
// into one slice, for callers that hold the whole list anyway.
func (s *Service) Snapshot(ctx context.Context, userID string) ([]Task, int64, error) {
	var list []Task
	seq, err := s.SnapshotPages(ctx, userID, 1000, func(_ int64, page []Task) error {
		list = append(list, page...)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot: %w", err)
	}
	return list, seq, nil
}

// PruneIdempotencyKeys deletes stored results older than maxAge.
func (s *Service) PruneIdempotencyKeys(ctx context.Context, maxAge time.Duration) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)`, maxAge.Seconds())
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// validUser refuses a user id that the tasks table would refuse. Ids come
// from verified tokens (auth refuses the same ones), so this is a guard
// for the batch rather than a message users see.
func validUser(id string) error {
	if id == "" || len(id) > auth.MaxUserIDBytes || !storableText(id) {
		return tasksync.Errorf(tasksync.CodeBadRequest, "the user id must be 1 to %d bytes of UTF-8 text without NUL", auth.MaxUserIDBytes)
	}
	return nil
}

// validKey reports whether an idempotency key is printable ASCII of a sane length.
func validKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKey {
		return false
	}
	return !strings.ContainsFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e })
}
