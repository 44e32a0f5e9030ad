package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"tasksync"
)

// Group commit.
//
// A transaction that NOTIFYs takes a database-wide lock at commit, and every
// commit waits for its WAL flush: one transaction per mutation caps writes
// far below what Postgres can insert. So concurrent mutations share
// transactions: whoever arrives while fewer than MaxBatches batches run
// becomes a leader and runs its own mutation together with every mutation
// queued at that moment, in one transaction (a mutation refused leaves no
// trace in it; see runBatch), and commits once: one flush and one
// NOTIFY-lock hold for the batch.
//
// There is no timer and no background goroutine: a lone mutation runs at
// once in a transaction of its own, exactly as without batching, so latency
// at low load is unchanged; batches form only when mutations queue up
// behind running ones. A leader that finishes hands leadership to the
// oldest queued caller, so nobody waits on a goroutine that is not working
// for it.

// Defaults of [BatchOptions].
const (
	DefaultMaxBatches = 4
	DefaultMaxBatch   = 64
)

// BatchOptions tune group commit; zero fields take the defaults.
type BatchOptions struct {
	// MaxBatches is how many transactions may run mutations at once
	// (DefaultMaxBatches); more concurrent mutations queue and are batched.
	MaxBatches int
	// MaxBatch is the most mutations in one transaction (DefaultMaxBatch).
	MaxBatch int
}

type batcher struct {
	mu      sync.Mutex
	queue   []*job
	leaders int
	opts    BatchOptions

	// batched counts mutations that shared a transaction, reruns those
	// run again alone after their batch failed (tests read them).
	batched     atomic.Int64
	reruns      atomic.Int64
	multiInsert atomic.Int64 // creates inserted by a multi-row INSERT
	// mutations and transactions count all mutations run and the
	// transactions they ran in (BatchStats).
	mutations    atomic.Int64
	transactions atomic.Int64
}

// job is one mutation waiting for, or in, a batch.
type job struct {
	ctx    context.Context
	userID string
	key    string
	fp     string
	fn     mutation
	single bool  // fn is one statement: alone and without a key, autocommit
	insert *Task // for a create: the row, so that a batch can insert many at once
	actor  actorSetting

	res     Result
	err     error
	done    chan struct{} // closed when res/err are final
	promote chan struct{} // closed when this caller becomes the leader
}

// run submits j and returns when it has been applied or refused, or when
// the caller gave up while it was still queued.
func (b *batcher) run(s *Service, j *job) {
	b.mu.Lock()
	if b.leaders < b.opts.MaxBatches {
		b.leaders++
		b.mu.Unlock()
		b.lead(s, j)
		return
	}
	j.promote = make(chan struct{})
	b.queue = append(b.queue, j)
	b.mu.Unlock()
	select {
	case <-j.done:
		return
	case <-j.promote:
		b.lead(s, j)
		return
	case <-j.ctx.Done():
	}
	// The caller gave up: withdraw the job unless a leader has taken it
	// already (into a batch, or by promoting it), in which case it runs
	// whatever happens to the caller's context.
	b.mu.Lock()
	if i := slices.Index(b.queue, j); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
		b.mu.Unlock()
		j.err = notStarted(j.ctx)
		close(j.done)
		return
	}
	b.mu.Unlock()
	select {
	case <-j.done:
	case <-j.promote:
		b.lead(s, j)
	}
}

// lead runs one batch made of first and what is queued, then hands
// leadership to the oldest queued caller, or gives it up.
func (b *batcher) lead(s *Service, first *job) {
	b.mu.Lock()
	n := min(len(b.queue), b.opts.MaxBatch-1)
	batch := make([]*job, 0, n+1)
	batch = append(append(batch, first), b.queue[:n]...)
	b.queue = slices.Delete(b.queue, 0, n)
	b.mu.Unlock()

	s.runBatch(batch)

	b.mu.Lock()
	if len(b.queue) > 0 {
		next := b.queue[0]
		b.queue = slices.Delete(b.queue, 0, 1)
		b.mu.Unlock()
		close(next.promote)
		return
	}
	b.leaders--
	b.mu.Unlock()
}

// batchTimeout bounds one transaction of mutations (a batch, or one
// mutation alone) once it has begun; see outcome.go.
const batchTimeout = 30 * time.Second

// runBatch applies the jobs and closes their done channels.
//
// The batch runs without savepoints: a refusal (not found, stale version,
// invalid, a reused key) is decided in Go before anything is written, and
// leaves the transaction usable; only an SQL or connection error aborts
// it. Then nothing of the batch was applied, and every mutation runs again
// on its own, so that the failure stays with the one that caused it. A
// savepoint per mutation would cost a round trip each, on every batch, for
// a case that almost never happens (submit refuses what the database
// would).
func (s *Service) runBatch(batch []*job) {
	s.batches.mutations.Add(int64(len(batch)))
	s.batches.transactions.Add(1)
	if len(batch) == 1 {
		j := batch[0]
		j.res, j.err = s.mutateAlone(j)
		close(j.done)
		return
	}
	s.batches.batched.Add(int64(len(batch)))
	// Users in a fixed order, so that batches running at once take the
	// users' sequence-row locks in the same order and cannot deadlock on
	// them; one user's mutations keep their arrival order.
	slices.SortStableFunc(batch, func(a, b *job) int { return strings.Compare(a.userID, b.userID) })

	// The batch's own context: once a mutation has run in it, its caller
	// giving up must not cut the transaction short.
	ctx, cancel := context.WithTimeout(context.Background(), s.txTimeout)
	defer cancel()
	statementsDone := false
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		for i := 0; i < len(batch); {
			j := batch[i]
			if j.ctx.Err() != nil {
				j.err = notStarted(j.ctx) // given up on before its turn: not applied
				i++
				continue
			}
			if n := plainCreates(batch[i:]); n > 1 {
				if err := insertMany(ctx, tx, batch[i:i+n]); err != nil {
					return fmt.Errorf("batch aborted: %w", err)
				}
				s.batches.multiInsert.Add(int64(n))
				i += n
				continue
			}
			j.res, j.err = runMutation(ctx, tx, j, true)
			if j.err != nil && !refusal(j.err) {
				return fmt.Errorf("batch aborted: %w", j.err)
			}
			i++
		}
		statementsDone = true
		return nil
	})
	switch {
	case err == nil:
	case !statementsDone || surelyNotCommitted(err):
		// Rolled back (COMMIT was never sent, or the server refused it):
		// run each on its own. A caller that gave up meanwhile is told
		// that nothing was applied.
		s.batches.reruns.Add(int64(len(batch)))
		for _, j := range batch {
			j.res, j.err = s.mutateAlone(j)
			close(j.done)
		}
		return
	default:
		// The connection broke during COMMIT: the outcome is unknown.
		// Keyed mutations read it back from their record; the others
		// say so rather than risk a client applying them twice.
		for _, j := range batch {
			switch {
			case j.err != nil: // refused, or never started: nothing to resolve
			case j.key != "":
				j.res, j.err = s.resolveCommit(j, err)
			default:
				j.res, j.err = Result{}, outcomeUnknown(false, err)
			}
		}
	}
	for _, j := range batch {
		close(j.done)
	}
}

// plainCreates counts the creates without idempotency key (whose callers
// still wait) at the start of jobs, made by the same actor and session (the
// change log records one actor per statement).
func plainCreates(jobs []*job) int {
	n := 0
	for n < len(jobs) && jobs[n].insert != nil && jobs[n].key == "" && jobs[n].ctx.Err() == nil && jobs[n].actor == jobs[0].actor {
		n++
	}
	return n
}

// insertMany inserts the rows of several creates with one statement: one
// round trip, and Postgres prepares the table's constraints and triggers
// once instead of once per row. Each row carries its job's index: the ids
// are drawn from the identity sequence next to the index, before the
// INSERT, and the inserted rows are joined back to their index by id, so
// that every job gets its own row by construction (Postgres promises no
// order for RETURNING, nor that identity values follow VALUES order).
func insertMany(ctx context.Context, tx querier, jobs []*job) error {
	var sql strings.Builder
	// The jobs share one actor (plainCreates), named first.
	sql.WriteString("WITH actor AS MATERIALIZED (" + setActorSQL + "),\n")
	sql.WriteString("v (i, user_id, title, description, completed, priority, tags, due_at, remind_at, recurrence, tz, series_id) AS (VALUES ")
	args := make([]any, 0, 2+12*len(jobs))
	args = append(args, jobs[0].actor.actor, jobs[0].actor.session)
	for i, j := range jobs {
		if i > 0 {
			sql.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&sql, "($%d::int, $%d::text, $%d::text, $%d::text, $%d::bool, $%d::text, $%d::text[], $%d::timestamptz, $%d::timestamptz, $%d::text, $%d::text, $%d::bigint)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11, n+12)
		t := j.insert
		args = append(args, i, t.UserID, t.Title, t.Description, t.Completed, t.Priority, t.Tags, t.DueAt, t.RemindAt, t.Recurrence, t.TZ, t.SeriesID)
	}
	sql.WriteString(`),
		n AS (SELECT nextval(pg_get_serial_sequence('tasks', 'id')) AS id, v.* FROM v, actor),
		ins AS (
			INSERT INTO tasks (id, user_id, title, description, completed, priority, tags, due_at, remind_at, recurrence, tz, series_id) OVERRIDING SYSTEM VALUE
			SELECT id, user_id, title, description, completed, priority, tags, due_at, remind_at, recurrence, tz,
				-- A task created with a rule starts a series: createFirstOccurrence.
				CASE WHEN recurrence IS NULL THEN series_id ELSE coalesce(series_id, id) END FROM n
			RETURNING ` + columns + `)
		SELECT n.i, ins.* FROM ins JOIN n ON n.id = ins.id`)
	rows, err := tx.Query(ctx, sql.String(), args...)
	if err != nil {
		return fmt.Errorf("insert tasks: %w", err)
	}
	defer rows.Close()
	created := make([]*Task, len(jobs))
	for rows.Next() {
		var (
			i int
			t Task
		)
		if err := rows.Scan(append([]any{&i}, scanDest(&t)...)...); err != nil {
			return fmt.Errorf("insert tasks: %w", err)
		}
		if i < 0 || i >= len(jobs) || created[i] != nil {
			return fmt.Errorf("insert tasks: row for job %d of %d twice or out of range", i, len(jobs))
		}
		if t.Tags == nil {
			t.Tags = []string{}
		}
		created[i] = &t
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert tasks: %w", err)
	}
	for i := range jobs {
		if created[i] == nil {
			return fmt.Errorf("insert tasks: no row for job %d of %d", i, len(jobs))
		}
	}
	for i, j := range jobs {
		j.res, j.err = Result{Op: OpCreated, TaskID: created[i].ID, Task: created[i]}, nil
	}
	return nil
}

// refusal reports whether err is a domain answer decided before anything
// was written (the transaction stays usable), as opposed to a database or
// connection failure.
func refusal(err error) bool {
	var e *tasksync.Error
	return errors.As(err, &e)
}

// mutateAlone runs one mutation in a transaction of its own (a single
// statement without idempotency key: in autocommit), retrying a deadlock
// or serialization failure a few times.
func (s *Service) mutateAlone(j *job) (Result, error) {
	var res Result
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		res, err = s.runAlone(j)
		if !retryable(err) {
			break
		}
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// runAlone makes one attempt of mutateAlone. The caller's context bounds
// only the wait for a connection; the statements run on their own context
// (see outcome.go).
func (s *Service) runAlone(j *job) (Result, error) {
	conn, err := s.db.Acquire(j.ctx)
	if err != nil {
		if j.ctx.Err() != nil {
			return Result{}, notStarted(j.ctx)
		}
		return Result{}, notApplied(fmt.Errorf("acquire connection: %w", err))
	}
	defer conn.Release()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), s.txTimeout)
	defer cancel()

	if j.single && j.key == "" {
		res, err := j.fn(ctx, conn)
		if err != nil && !refusal(err) && !surelyNotCommitted(err) {
			// The statement may have committed although its answer
			// was lost: the cancel request pgx sends when it gives
			// up can arrive after the commit.
			return Result{}, outcomeUnknown(false, err)
		}
		return res, err
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		return Result{}, notApplied(fmt.Errorf("begin: %w", err))
	}
	res, err := runMutation(ctx, tx, j, false)
	if err != nil {
		_ = tx.Rollback(ctx) // on failure pgx closes the connection: nothing is committed
		if refusal(err) || serverRefused(err) {
			return Result{}, err
		}
		// COMMIT was never sent, so nothing is committed.
		return Result{}, notApplied(err)
	}
	if err := tx.Commit(ctx); err != nil {
		switch {
		case serverRefused(err):
			return Result{}, fmt.Errorf("commit: %w", err) // e.g. a serialization failure: retried
		case surelyNotCommitted(err):
			return Result{}, notApplied(fmt.Errorf("commit: %w", err))
		case j.key != "":
			return s.resolveCommit(j, err)
		default:
			return Result{}, outcomeUnknown(false, err)
		}
	}
	return res, nil
}

// BatchStats returns how many mutations were run and in how many
// transactions: their ratio is the average group-commit batch.
func (s *Service) BatchStats() (mutations, transactions int64) {
	return s.batches.mutations.Load(), s.batches.transactions.Load()
}

// BatchReruns returns how many mutations were run a second time, each in a
// transaction of its own, because the batch they shared was rolled back:
// by a database outage, or by a mutation that failed in a way validation
// did not catch. The second kind means one client's input cost others a
// rerun; make chaos reads it from /metrics and expects 0 without faults.
func (s *Service) BatchReruns() int64 {
	return s.batches.reruns.Load()
}
