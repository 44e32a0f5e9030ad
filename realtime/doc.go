// Package realtime serves the socket side of tasksync: authenticated
// WebSocket sessions over which task mutations and chat travel as typed
// JSON frames (docs/PROTOCOL.md), and the fan-out that brings every change
// of a user to every open session of that user, on any instance.
//
// # A map of the package
//
//   - server.go: [Server], the GET /ws handler: authentication (header,
//     subprotocol or query), upgrade, session start, shutdown.
//   - handlers.go: the read loop, the frame-type -> handler table and the
//     handlers.
//   - session.go: one socket: its bounded send queue, the writer, pings,
//     and its teardown. stream.go: its event stream: live delivery,
//     catch-up from the change log, sync requests and paged snapshots.
//     cork.go: the socket's write coalescing under coder/websocket.
//   - hub.go: [Hub]: hands change-log notifications' events to sessions:
//     inline events at once, the others through the fetch loop's log reads;
//     registry.go: its sessions by user.
//   - relay.go: broker messages (chat streams, sign-out, signals).
//     presence.go: the user's devices listed in the broker, with its
//     throttling and heartbeat. broker.go, redisbroker.go: the [Broker]
//     interface, in memory and over Redis.
//   - listener.go: the LISTEN connection ([Listener]); changelog.go: reads
//     of the durable change log ([ChangeLog]); catchup.go: sessions'
//     catch-up reads (and presence joins) grouped into shared queries;
//     reminders.go: delivery of
//     fired reminders ([ReminderLog], the hub's reminder loop).
//   - disconnect.go: close codes and the [Disconnect] values the server
//     sends; frames.go: frame types, decoding and encoding.
//
// # Where data comes from
//
// Postgres is the source of truth. Every committed change of a task adds a
// row to the per-user change log (gap-free seq per user) and a NOTIFY that
// carries the event itself when it fits, else a pointer to it
// ([NotifyChannel]). The [Listener] tells the [Hub], which hands each
// event, encoded once, to the user's sessions in seq order: an inline
// event that follows the last one dispatched for its user goes out at
// once, without a query; a pointer, or a seq gap (a notification lost or
// reordered), makes it read the log from that user's cursor on; every
// (re)connect of the listener reads it for every user. A session that
// falls behind, or asks to resume (sync, ?since=),
// reads the log itself at its own pace; one whose resume point was pruned
// gets a snapshot in pages, all consistent with one seq. The broker
// (Redis) carries only what may be lost: presence, chat streams, session
// control.
//
// # Concurrency contract
//
// Goroutines and their owners:
//
//   - [Hub.Run] owns the hub's loops (fetch, broker delivery, presence and,
//     with reminders, the reminder loop of reminders.go, the only goroutine
//     that reads the reminders table) in one errgroup and returns once they
//     have all stopped.
//     The fetch loop and, for inline events, the listener's goroutine
//     dispatch events, one at a time (the hub's dmu); a panic
//     in a batch is recovered and the batch retried.
//   - [Listener.Run] owns the LISTEN connection.
//   - [Server] owns the sessions. Each session owns its reader (which
//     tears the session down and waits for everything below), its writer
//     (the only goroutine that writes to the socket), at most
//     Config.MaxInFlight request goroutines, at most one fill goroutine, at
//     most one ping and its presence join. [Server.Shutdown] closes every
//     session with 1001 and waits until all of them are torn down.
//
// What may block, and what is bounded:
//
//   - Nothing that fans out blocks on a client: the hub, the relay and
//     chat turns only append to a session's send queue, bounded by
//     Config.SendQueueBytes. Events that do not fit switch the session to
//     catch-up from the log; other frames that do not fit close it with
//     4008.
//   - The reader never waits for a request: requests run on their own
//     goroutines (Config.MaxInFlight per socket, more are refused with
//     rate_limited), so pongs and close frames are always read. Replies
//     may therefore come in another order than the requests.
//   - hello is queued before the session is registered with the hub, so it
//     is always the first frame. From its registration the session is in
//     catch-up mode (live events only tell it how far the log goes) until it
//     has read the log up to the seq current after the registration: a
//     resume (?since=) replays before any live event, and an event
//     dispatched between the start seq and the registration is not missed.
//     Nothing waits for the broker before hello.
//   - Pings are single-flight; every write has WriteTimeout; every read of
//     the change log and every broker call has a timeout.
//   - A session's catch-up reads (its current seq before hello, the check
//     after registration, each page of a replay) wait in one queue per
//     instance: at most Config.CatchupQueries queries run at once, each
//     answering every read queued meanwhile; reads of registered sessions
//     go before new sockets' first read. No goroutine is started for it:
//     a waiting caller either gets its answer or is handed the lead.
//   - Snapshots are built at most Config.MaxSnapshots at a time per
//     instance, read from Postgres a page at a time as the socket drains,
//     and bounded by Config.SnapshotTimeout.
package realtime
