// Package reminders fires task reminders with a Postgres-backed job queue
// (riverqueue/river): scheduled jobs, run once across all instances, and
// enqueued in the same transaction as the task write that sets remind_at.
//
// # What it owns
//
//   - [Service] implements tasks.Scheduler: the tasks service calls it
//     inside each mutation's transaction, so a job exists exactly when the
//     task committed with a remind_at to fire (create, update, restore,
//     the next occurrence of a series), and changing remind_at, deleting or
//     completing the task cancels the old job in the same transaction.
//   - The job's worker: at remind_at, in one transaction, it checks that
//     the task still exists, is not completed and still has this remind_at
//     (a plain-SQL write bypasses the service and so the cancel: the check
//     keeps such a task from firing at its old time), records the reminder
//     in the reminders table, NOTIFYs realtime.ReminderChannel and marks the
//     job completed (river.JobCompleteTx): the reminder is recorded and
//     announced exactly once, whichever instance runs it, even if the job
//     is retried.
//   - River's client and its goroutines: [Service.Start] and
//     [Service.Stop] (idempotent; Stop waits for running jobs).
//
// Delivery to sockets is realtime's (realtime/reminders.go): every
// instance hears the NOTIFY and sends to its own sessions of the user.
// This package does not import realtime.
//
// # Timing
//
// River moves a scheduled job to "available" in its leader's scheduler
// pass, every 5 s (River's JobSchedulerIntervalDefault, not configurable in
// v0.51), and each instance looks for available jobs every
// FetchPollInterval (River runs poll-only here: no LISTEN connection of its
// own, which a transaction-pooled DATABASE_URL would break). A reminder
// fires up to about 5 s plus one poll after remind_at; the tests wait with
// deadlines, never fixed sleeps.
//
// # Concurrency
//
// Service is safe for concurrent use once constructed. The worker locks the
// task row (FOR SHARE) while it decides, so it serialises with a mutation of
// the same task: either the mutation commits first (and the worker sees the
// new remind_at) or the reminder fires first and the mutation's cancel finds
// the job completed.
package reminders
