package reminders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Queue is the River queue of reminder jobs.
const Queue = "reminders"

// Kind is the River job kind of a reminder.
const Kind = "reminder"

// NotifyChannel is the channel a fired reminder is announced on, with the
// payload "<reminder id>:<user id>" (realtime.ReminderChannel).
const NotifyChannel = "tasksync_reminders"

// Defaults of [Config].
const (
	DefaultFetchPollInterval = time.Second
	DefaultWorkers           = 10
	// MaxLateness: a remind_at further in the past than this when it is
	// written is stored but not fired (a restored old task, a recurrence
	// whose reminder offset lands in the past): firing it at once would
	// remind about something long gone.
	MaxLateness = time.Minute
)

// Args are a reminder job's arguments. RemindAt is the task's remind_at
// when the job was enqueued; the job fires only if the task still has it.
type Args struct {
	UserID   string    `json:"user_id"`
	TaskID   int64     `json:"task_id"`
	RemindAt time.Time `json:"remind_at"`
}

// Kind is the job kind.
func (Args) Kind() string { return Kind }

// InsertOpts puts reminders on their own queue.
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 10}
}

// Config tunes the job queue; zero fields take the defaults.
type Config struct {
	// FetchPollInterval is how often an instance looks for jobs that became
	// available without a notification reaching it (River's
	// FetchPollInterval; DefaultFetchPollInterval). Tests shorten it.
	FetchPollInterval time.Duration
	// Workers is how many reminder jobs one instance runs at once.
	Workers int
	Logger  *slog.Logger
	// TestOnly skips River's staggered start of its maintenance services
	// (up to a second each), for tests.
	TestOnly bool
}

// Service schedules, cancels and fires reminders. It implements
// tasks.Scheduler.
type Service struct {
	db     *pgxpool.Pool
	client *river.Client[pgx.Tx]
	log    *slog.Logger

	mu      sync.Mutex
	started bool
	stopped bool
}

// New returns a Service over db; nothing runs until [Service.Start], but it
// may schedule and cancel (inside callers' transactions) at once.
func New(db *pgxpool.Pool, cfg Config) (*Service, error) {
	if cfg.FetchPollInterval <= 0 {
		cfg.FetchPollInterval = DefaultFetchPollInterval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{db: db, log: cfg.Logger}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &worker{db: db}); err != nil {
		return nil, fmt.Errorf("reminders: %w", err)
	}
	client, err := river.NewClient(riverpgxv5.New(db), &river.Config{
		Queues:            map[string]river.QueueConfig{Queue: {MaxWorkers: cfg.Workers}},
		Workers:           workers,
		FetchPollInterval: cfg.FetchPollInterval,
		FetchCooldown:     min(100*time.Millisecond, cfg.FetchPollInterval),
		JobTimeout:        30 * time.Second,
		// No LISTEN connection of River's own: DATABASE_URL may be a
		// transaction-pooled URL (PgBouncer, Neon's -pooler), where LISTEN
		// silently hears nothing, and a held connection per instance is not
		// worth it when the scheduler's 5 s pass bounds latency anyway.
		// Workers find due jobs by polling every FetchPollInterval.
		PollOnly:     true,
		Logger:       slog.New(riverLogHandler{cfg.Logger.Handler()}).With("component", "river"),
		ErrorHandler: errorHandler{log: cfg.Logger},
		TestOnly:     cfg.TestOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("reminders: river client: %w", err)
	}
	s.client = client
	return s, nil
}

// Start starts River's client (its fetchers, workers and, on the elected
// leader, the scheduler); it returns once they run. Idempotent.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopped {
		return nil
	}
	// Not ctx itself: River stops when its start context ends, and the
	// owner stops it with Stop, in its shutdown order.
	if err := s.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("reminders: start river: %w", err)
	}
	s.started = true
	return nil
}

// Stop stops fetching jobs and waits for running ones (or ctx). Idempotent;
// safe without Start.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		s.stopped = true
		return nil
	}
	s.stopped = true
	if err := s.client.Stop(ctx); err != nil {
		return fmt.Errorf("reminders: stop river: %w", err)
	}
	return nil
}

// ScheduleReminder enqueues, in tx, the job that fires the reminder of
// task taskID at at. A time more than MaxLateness in the past schedules
// nothing.
func (s *Service) ScheduleReminder(ctx context.Context, tx pgx.Tx, userID string, taskID int64, at time.Time) error {
	if time.Since(at) > MaxLateness {
		return nil
	}
	if _, err := s.client.InsertTx(ctx, tx, Args{UserID: userID, TaskID: taskID, RemindAt: at},
		&river.InsertOpts{ScheduledAt: at}); err != nil {
		return fmt.Errorf("schedule reminder: %w", err)
	}
	return nil
}

// CancelReminders cancels, in tx, the task's reminder jobs that have not
// run yet.
func (s *Service) CancelReminders(ctx context.Context, tx pgx.Tx, userID string, taskID int64) error {
	// river_job_args_index (GIN on args) serves the containment test.
	rows, err := tx.Query(ctx, `
		SELECT id FROM river_job
		WHERE kind = $1 AND state IN ('scheduled', 'available', 'retryable', 'pending')
		  AND args @> jsonb_build_object('user_id', $2::text, 'task_id', $3::bigint)`, Kind, userID, taskID)
	if err != nil {
		return fmt.Errorf("find reminder jobs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("find reminder jobs: %w", err)
	}
	for _, id := range ids {
		if _, err := s.client.JobCancelTx(ctx, tx, id); err != nil && !errors.Is(err, river.ErrNotFound) {
			return fmt.Errorf("cancel reminder job %d: %w", id, err)
		}
	}
	return nil
}

// Prune deletes reminders that were delivered and fired more than
// olderThan ago (the pruner runs it with the change log's retention).
func (s *Service) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	tag, err := s.db.Exec(ctx, `
		DELETE FROM reminders WHERE delivered_at IS NOT NULL AND fired_at < now() - make_interval(secs => $1)`, olderThan.Seconds())
	if err != nil {
		return 0, fmt.Errorf("prune reminders: %w", err)
	}
	return tag.RowsAffected(), nil
}

// worker fires one reminder.
type worker struct {
	river.WorkerDefaults[Args]
	db *pgxpool.Pool
}

// Work records and announces the reminder if the task still wants it, and
// completes the job in the same transaction.
func (w *worker) Work(ctx context.Context, job *river.Job[Args]) error {
	a := job.Args
	return pgx.BeginFunc(ctx, w.db, func(tx pgx.Tx) error {
		var fire bool
		err := tx.QueryRow(ctx, `
			SELECT NOT completed AND remind_at IS NOT DISTINCT FROM $3::timestamptz
			FROM tasks WHERE user_id = $1 AND id = $2 FOR SHARE`, a.UserID, a.TaskID, a.RemindAt).Scan(&fire)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read task: %w", err)
		}
		if fire {
			var id int64
			err := tx.QueryRow(ctx, `
				INSERT INTO reminders (user_id, task_id, remind_at, job_id) VALUES ($1, $2, $3, $4)
				ON CONFLICT (job_id) DO NOTHING
				RETURNING id`, a.UserID, a.TaskID, a.RemindAt, job.ID).Scan(&id)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				// Recorded by an earlier attempt whose completion was lost.
			case err != nil:
				return fmt.Errorf("record reminder: %w", err)
			default:
				if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, fmt.Sprintf("%d:%s", id, a.UserID)); err != nil {
					return fmt.Errorf("announce reminder: %w", err)
				}
			}
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete reminder job: %w", err)
		}
		return nil
	})
}

// Timeout bounds one run of the job.
func (w *worker) Timeout(*river.Job[Args]) time.Duration { return 30 * time.Second }
