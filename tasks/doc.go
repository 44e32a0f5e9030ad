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
