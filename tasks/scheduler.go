package tasks

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scheduler keeps the job that fires a task's reminder in step with the
// task (package reminders implements it with a Postgres job queue;
// cmd/server plugs it in with [Service.UseScheduler]). The Service calls it
// inside the mutation's transaction, after the task row is written, so the
// job is enqueued or cancelled if and only if the write commits.
type Scheduler interface {
	// ScheduleReminder enqueues the job that fires the reminder of task
	// taskID of userID at at (the task's remind_at as stored).
	ScheduleReminder(ctx context.Context, tx pgx.Tx, userID string, taskID int64, at time.Time) error
	// CancelReminders cancels the task's reminder jobs that have not run.
	CancelReminders(ctx context.Context, tx pgx.Tx, userID string, taskID int64) error
}

// UseScheduler makes every later mutation keep reminder jobs in step
// through sch. Call it before the Service is used.
func (s *Service) UseScheduler(sch Scheduler) { s.scheduler = sch }

// reminderDue is when a task's reminder should fire: its remind_at while it
// is not completed, else never (nil).
func reminderDue(t *Task) *time.Time {
	if t == nil || t.Completed || t.RemindAt == nil {
		return nil
	}
	return t.RemindAt
}

// needsScheduler reports whether writing after may need a reminder job (a
// create with a remind_at): such a create must run in a transaction, not in
// autocommit or a multi-row INSERT.
func (s *Service) needsScheduler(after *Task) bool {
	return s.scheduler != nil && reminderDue(after) != nil
}

var errNoTx = errors.New("reminder scheduling outside a transaction")

// idOf is t's id, or 0 for no task (syncReminder then does nothing).
func idOf(t *Task) int64 {
	if t == nil {
		return 0
	}
	return t.ID
}

// syncReminder makes the task's reminder job match its new state, in the
// mutation's transaction: before is the task as it was (nil for a create:
// a new task, a restored one, a series' next occurrence), after as it is
// now (nil for a delete). Every write path of the Service calls it. Nothing happens when the time the
// reminder is due did not change (an edit of the title keeps its job).
func (s *Service) syncReminder(ctx context.Context, q querier, userID string, taskID int64, before, after *Task) error {
	if s.scheduler == nil {
		return nil
	}
	had, want := reminderDue(before), reminderDue(after)
	if had == nil && want == nil || had != nil && want != nil && had.Equal(*want) {
		return nil
	}
	tx, ok := q.(pgx.Tx)
	if !ok {
		return errNoTx
	}
	if had != nil {
		if err := s.scheduler.CancelReminders(ctx, tx, userID, taskID); err != nil {
			return err
		}
	}
	if want != nil {
		if err := s.scheduler.ScheduleReminder(ctx, tx, userID, taskID, *want); err != nil {
			return err
		}
	}
	return nil
}
