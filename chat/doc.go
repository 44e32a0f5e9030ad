// Package chat is the tasksync assistant: conversations and messages in
// Postgres, a tool-calling agent over any OpenAI-compatible Chat
// Completions endpoint (openai-go), a built-in offline assistant, the REST
// and SSE chat endpoints, and an MCP server offering the same tools.
//
// # What it owns
//
//   - [Store]: the conversations and messages tables (migrations/00002).
//     Every query has user_id = $1; another user's conversation is
//     reported exactly like one that does not exist.
//   - [Tools]: add_task, list_tasks, complete_task, update_task and
//     delete_task over a [TaskService] (*tasks.Service), so that every
//     change takes the one write path and lands in the change log that
//     sockets stream from. The user is always the one authenticated by
//     the caller; a user_id argument is ignored. Tool failures are results
//     ({"error": "..."}) the model can read, never a failed turn.
//   - [Model]: one model call, streamed. [OpenAI] and [Offline] implement
//     it; [Agent] runs the rounds of a turn over either (call the model,
//     run its tool calls, feed back the results, up to MaxRounds, each
//     call bounded by ModelTimeout).
//   - [Service]: the running turns, their limits and their events.
//   - [Handler]: POST /api/{user_id}/chat (JSON or SSE) and the history
//     under /api/{user_id}/conversations.
//   - [NewMCPServer], [NewMCPHandler]: the tools over MCP streamable HTTP.
//
// It does not import realtime: events leave through the [Publisher]
// interface (satisfied by *realtime.Hub) and cancels travel between
// instances through [Signaler]; cmd/server plugs them together and adapts
// [Service] to the socket layer's ChatService.
//
// # A turn
//
// [Service.Start] validates the message, claims the conversation (creating
// it when no id is given) and stores the user message in one transaction,
// then starts the turn's goroutine and returns its ids at once. The claim
// is a lease in the conversations row (active_turn, active_until): while
// it holds, no instance starts another turn in that conversation
// (conflict). The goroutine loads the history window (the last
// HistoryMessages messages, the new one included), runs the [Agent],
// stores the assistant message with its tool calls and their results and
// releases the lease in one transaction, and emits the last event. The
// server keeps no conversation state between turns: any instance can
// continue any conversation.
//
// Events: chat.started, then chat.delta / chat.tool_call / chat.tool_result
// in order, then chat.done (status complete or cancelled) or chat.error
// (status error, with a code); docs/PROTOCOL.md (Chat) has every field.
//
// # Ownership and concurrency
//
// The Service owns every turn goroutine from Start until the assistant
// message is stored and the last event handed to the Publisher; each turn
// owns two helpers it starts and waits for: the lease renewal and the
// publisher of its events.
// [Service.Stop] refuses new turns, cancels the running ones (each stores
// what it has with status error, code unavailable) and waits for them; it
// is idempotent. Nothing runs before Start; a constructor starts nothing.
//
// Limits: MaxTurnsPerUser turns per user and MaxTurns in total run at once
// on one instance (rate_limited / unavailable beyond), one per
// conversation across all instances (the lease), MaxRounds model calls per
// turn (the last one offered no tools), ModelTimeout per model call, and a
// deadline for the whole turn (MaxRounds × (ModelTimeout + 30s)). The
// lease lasts [LeaseTTL] and the turn renews it (one goroutine per turn,
// every LeaseTTL/3) until it ends, so a crashed instance's conversation
// frees up within LeaseTTL.
//
// A turn never waits for a reader. Each consumer (the Publisher, and a
// REST follower) has its own unbounded queue whose consecutive text deltas
// are merged while the consumer lags, so memory grows with the answer's
// text, not with the number of deltas; one goroutine per turn publishes
// its queue in order, each publish bounded by a timeout.
//
// Cancelling (chat.cancel, or a REST client that goes away) cancels the
// turn's context: a model stream in progress stops at once, a tool call in
// progress finishes (tool calls run detached from cancellation, so no
// change is left half-known) and the calls after it are answered "not
// run". The partial answer is stored with status cancelled. A chat.cancel
// that reaches an instance not running the turn is relayed with the
// Signaler to the instances where the user has sessions; the one running
// it stops it ([Service.HandleSignal]).
//
// Store, Tools, OpenAI, Offline, Service and Handler are safe for
// concurrent use.
package chat
