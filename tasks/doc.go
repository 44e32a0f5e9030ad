// Package tasks is the task domain of tasksync: the Task type, validation of
// client input, the Service that reads and writes tasks in Postgres, list
// queries with keyset pagination, and the REST handlers under
// /api/{user_id}/tasks.
//
// # One path for writes
//
// Every mutation (REST, socket, chat agent, MCP) calls a Service method,
// and every Service write runs through Service.mutate: one transaction that
// claims the idempotency key (if any), locks and checks the task, writes it,
// and stores the result for retries. The change log is not written here:
// triggers on the tasks table append the event and NOTIFY inside the same
// transaction (see migrations), so writes by other programs are captured
// too. This package does not import realtime or chat.
//
// # Who made a change, and undo
//
// Each mutation names its actor (MutationOptions.Actor, Session); the
// service sets the transaction-local settings tasksync.actor and
// tasksync.session before it writes, and the trigger copies them into the
// change-log row (plain SQL sets nothing and is logged as sql). History
// reads a task's rows of the log; Restore re-inserts a deleted task with
// its id, or applies an earlier version as an ordinary update. Both reach
// only as far back as the log is kept (EVENT_RETENTION).
//
// # Scoping
//
// Every query has user_id = $1 with the authenticated user. A task of
// another user is reported exactly like a task that does not exist.
//
// # Concurrency
//
// Service and Handler are safe for concurrent use. Concurrent writers of one
// user serialise on that user's sequence row (in the trigger) until commit;
// writers of different users do not wait for each other.
package tasks
