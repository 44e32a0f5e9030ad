/**
 * Every frame the server sends on /ws; the type field tells which.
 */
export type ServerFrame = HelloFrame | TaskCreatedFrame | TaskUpdatedFrame | TaskDeletedFrame | ReplyFrame | ErrorFrame | PongFrame | SyncedFrame | SnapshotFrame | PresenceFrame | ReminderFrame | ChatStartedFrame | ChatDeltaFrame | ChatToolCallFrame | ChatToolResultFrame | ChatDoneFrame | ChatErrorFrame;
export type Priority = "low" | "medium" | "high";
/**
 * The answer to a request that succeeded. id echoes the request's id, re names its type; the other fields depend on re. Replies may come in another order than the requests: match them by id.
 */
export type ReplyFrame = TaskMutationReply | TaskListReply | TaskHistoryReply | AuthRefreshReply | PresenceListReply | ChatSendReply | ChatCancelReply;
/**
 * A request id chosen by the client: a string of at most 64 bytes, or a number. Answers echo it verbatim.
 */
export type RequestId = string | number;
/**
 * Why a request failed; docs/PROTOCOL.md (Errors) says what a client should do on each.
 */
export type ErrorCode = "bad_request" | "invalid" | "not_found" | "version_mismatch" | "conflict" | "unauthorized" | "forbidden" | "rate_limited" | "unavailable" | "too_large" | "internal";
/**
 * The arguments object the model sent, or a string holding its raw text when it was not an object.
 */
export type ToolArguments = {
    [k: string]: unknown | undefined;
} | string;
/**
 * What the tool answered: an object (an array for list_tasks); {"error": ...} on a problem.
 */
export type ToolResult = {
    [k: string]: unknown | undefined;
} | unknown[];
/**
 * Why a chat turn failed after it started (chat.error).
 */
export type ChatErrorCode = "model_unavailable" | "model_timeout" | "model_error" | "round_limit" | "unavailable" | "internal";
/**
 * Every frame a client may send on /ws; the type field tells which.
 */
export type ClientFrame = PingFrame | TaskCreateFrame | TaskUpdateFrame | TaskCompleteFrame | TaskDeleteFrame | TaskListFrame | TaskHistoryFrame | TaskRestoreFrame | SyncFrame | AuthRefreshFrame | PresenceListFrame | ChatSendFrame | ChatCancelFrame;
/**
 * Idempotency key of a mutation: 1 to 200 printable ASCII characters (no space), the same rule and key space as the REST Idempotency-Key header. A retry with the same mutation_id is applied once and answered with the first result (replayed: true); the same mutation_id with a different request gets conflict.
 */
export type MutationId = string;
/**
 * At most 20 tags of 1 to 50 characters each; trimmed, duplicates (case-insensitive) dropped. null means none.
 *
 * @maxItems 20
 */
export type Tags = string[] | null;
/**
 * The first frame on every socket, before anything else (also before a refusal's close). The session is live from here: every change with a higher seq follows, in order, exactly once.
 */
export interface HelloFrame {
    type: "hello";
    protocol: 1;
    session_id: string;
    user_id: string;
    /**
     * The instance serving this socket.
     */
    instance: string;
    /**
     * An RFC 3339 date-time written by the server.
     */
    server_time: string;
    /**
     * The user's current change sequence number.
     */
    seq: number;
    /**
     * An RFC 3339 date-time written by the server.
     */
    token_expires_at?: string;
    /**
     * Present and true when the socket asked for batched messages (?batch=1): a message may hold several frames, one a line.
     */
    batch?: true;
    limits: Limits;
}
/**
 * The limits this server enforces on the socket (docs/PROTOCOL.md, Limits).
 */
export interface Limits {
    max_frame_bytes: number;
    frames_per_second: number;
    frame_burst: number;
    max_sockets_per_user: number;
    send_queue_bytes: number;
    ping_interval_ms: number;
    max_in_flight: number;
}
/**
 * A committed change of one of the user's tasks (whoever made it), with the user's next sequence number; task is the whole task after the change.
 */
export interface TaskCreatedFrame {
    type: "task.created";
    seq: number;
    task: Task;
}
/**
 * A task as the server writes it: the same shape in REST answers, change events, snapshots and replies.
 */
export interface Task {
    id: number;
    user_id: string;
    title: string;
    description: string;
    completed: boolean;
    priority: Priority;
    /**
     * @maxItems 20
     */
    tags: string[];
    /**
     * When the task is due (UTC, six fractional digits), or null. Always equal to due_at (kept for date-only clients).
     */
    due_date: string | null;
    /**
     * When the task is due, or null: the same value as due_date.
     */
    due_at: string | null;
    /**
     * When the task's one reminder fires, or null.
     */
    remind_at: string | null;
    /**
     * An RFC 5545 RRULE without the RRULE: prefix (FREQ DAILY, WEEKLY, MONTHLY or YEARLY), evaluated from due_at in tz; null for a one-off task.
     */
    recurrence: string | null;
    /**
     * The IANA time zone the rule is evaluated in; null means UTC.
     */
    tz: string | null;
    /**
     * The id of the first task of a recurring series, shared by every occurrence; null for a task that is not part of one. Set by the server.
     */
    series_id: number | null;
    /**
     * A task time: UTC with exactly six fractional digits (the precision Postgres stores), identical over REST and in events.
     */
    created_at: string;
    /**
     * A task time: UTC with exactly six fractional digits (the precision Postgres stores), identical over REST and in events.
     */
    updated_at: string;
    /**
     * Starts at 1 and grows by one with every change of the task; the base_version of a later update.
     */
    version: number;
}
/**
 * A committed change of one of the user's tasks (whoever made it), with the user's next sequence number; task is the whole task after the change.
 */
export interface TaskUpdatedFrame {
    type: "task.updated";
    seq: number;
    task: Task;
}
/**
 * A task of the user was deleted.
 */
export interface TaskDeletedFrame {
    type: "task.deleted";
    seq: number;
    task_id: number;
}
/**
 * The answer to task.create, task.update, task.complete, task.delete and task.restore: what the mutation did (op) and the task after it (absent for deletes). replayed: a retry with the same mutation_id, answered with the first result.
 */
export interface TaskMutationReply {
    type: "reply";
    id?: RequestId;
    re: "task.create" | "task.update" | "task.complete" | "task.delete" | "task.restore";
    op: "created" | "updated" | "deleted";
    task?: Task;
    task_id: number;
    replayed?: true;
}
/**
 * The answer to task.list: one page of tasks; next_cursor is absent on the last page.
 */
export interface TaskListReply {
    type: "reply";
    id?: RequestId;
    re: "task.list";
    /**
     * @maxItems 500
     */
    tasks: Task[];
    next_cursor?: string;
}
/**
 * The answer to task.history: the task's versions the change log still holds, newest first.
 */
export interface TaskHistoryReply {
    type: "reply";
    id?: RequestId;
    re: "task.history";
    task_id: number;
    /**
     * @maxItems 500
     */
    versions: TaskVersion[];
}
/**
 * One change of a task as the change log recorded it: its seq, op, time, who made it (actor: socket with the socket session id in session, rest, assistant with the conversation id, mcp, recurrence, reminder, service, or sql for plain SQL) and the task after it (null for a delete).
 */
export interface TaskVersion {
    seq: number;
    op: "created" | "updated" | "deleted";
    /**
     * A task time: UTC with exactly six fractional digits (the precision Postgres stores), identical over REST and in events.
     */
    at: string;
    actor: string;
    session: string | null;
    task: Task | null;
}
/**
 * The answer to auth.refresh: the socket now lives until expires_at (null: the new token has no expiry).
 */
export interface AuthRefreshReply {
    type: "reply";
    id?: RequestId;
    re: "auth.refresh";
    expires_at: string | null;
}
/**
 * The answer to presence.list: the user's open sockets on every instance, oldest first.
 */
export interface PresenceListReply {
    type: "reply";
    id?: RequestId;
    re: "presence.list";
    online: number;
    sessions: PresenceSession[];
}
/**
 * One open socket of the user, on any instance.
 */
export interface PresenceSession {
    session_id: string;
    /**
     * The device label (?device=, or the User-Agent), at most 64 bytes.
     */
    device: string;
    instance: string;
    /**
     * An RFC 3339 date-time written by the server.
     */
    connected_at: string;
}
/**
 * The answer to chat.send, sent once the conversation is claimed and the user message stored; the turn's chat.* frames follow (possibly before this reply: match them by turn_id).
 */
export interface ChatSendReply {
    type: "reply";
    id?: RequestId;
    re: "chat.send";
    conversation_id: number;
    /**
     * Names a chat turn in every chat.* frame.
     */
    turn_id: string;
    /**
     * The stored user message.
     */
    message_id: number;
    /**
     * Whether the turn created the conversation.
     */
    created: boolean;
    /**
     * The conversation's title (its first message, cut to 60 characters).
     */
    title: string;
}
/**
 * The answer to chat.cancel: cancelling (the turn runs on this instance and is stopping), relayed (another instance was told to stop it) or idle (no turn is running).
 */
export interface ChatCancelReply {
    type: "reply";
    id?: RequestId;
    re: "chat.cancel";
    conversation_id: number;
    status: "cancelling" | "relayed" | "idle";
}
/**
 * The answer to a request that failed. id is echoed when it could be read; re names the request type. fields comes with invalid (one message per bad field), task with version_mismatch (the task as it is now), retry_after_ms with rate_limited (frame rate or requests in flight; not on chat refusals).
 */
export interface ErrorFrame {
    type: "error";
    id?: RequestId;
    /**
     * The type of the failed request (as sent, at most 32 bytes), absent when it could not be read.
     */
    re?: string;
    code: ErrorCode;
    /**
     * Safe to show to the user.
     */
    message: string;
    /**
     * invalid: one message per bad field, keyed by its JSON name.
     */
    fields?: {
        [k: string]: string | undefined;
    };
    task?: Task;
    /**
     * rate_limited (frame rate or requests in flight): when to resend.
     */
    retry_after_ms?: number;
}
/**
 * The answer to ping.
 */
export interface PongFrame {
    type: "pong";
    id?: RequestId;
    /**
     * An RFC 3339 date-time written by the server.
     */
    server_time: string;
}
/**
 * Ends the replay a sync asked for: every event up to seq was sent; live events follow with no gap.
 */
export interface SyncedFrame {
    type: "synced";
    id?: RequestId;
    seq: number;
}
/**
 * One page of a full snapshot of the user's tasks, all pages consistent with seq. Page 0 starts a new snapshot; on the page with more false, replace the task list with the pages' tasks and continue from seq. id is the sync request answered (on every page; absent when a lagging socket found the events it needed already pruned).
 */
export interface SnapshotFrame {
    type: "snapshot";
    id?: RequestId;
    seq: number;
    page: number;
    /**
     * Why a snapshot was sent (page 0 only).
     */
    reason?: string;
    /**
     * At most 500 tasks (and about 256 KiB), ordered by id.
     *
     * @maxItems 500
     */
    tasks: Task[];
    more: boolean;
}
/**
 * The user's sessions changed: a device joined or left, or the list was rebuilt (sync: after a broker outage, or several changes folded into one frame). Read online and sessions, not the event name.
 */
export interface PresenceFrame {
    type: "presence";
    event: "join" | "leave" | "sync";
    /**
     * The session that came or went (join and leave).
     */
    session_id?: string;
    online: number;
    /**
     * Oldest first.
     */
    sessions: PresenceSession[];
}
/**
 * A task's reminder fired (at its remind_at, on whichever instance ran the job). Sent once to every session of the user that was open when it fired (pending false); a reminder that fired while the user had no session is sent once after hello on a later connect (pending true). task is the task as it is when the frame is sent. Snooze by updating the task's remind_at (task.update).
 */
export interface ReminderFrame {
    type: "reminder";
    /**
     * Identifies this firing; the same reminder never reaches one session twice.
     */
    reminder_id: string;
    task: Task;
    /**
     * A task time: UTC with exactly six fractional digits (the precision Postgres stores), identical over REST and in events.
     */
    remind_at: string;
    /**
     * true: it fired while the user had no open session, and is delivered on this connect.
     */
    pending: boolean;
}
/**
 * Opens every chat turn, on every session of the user (whichever session or REST request started it). request_id is the id of the chat.send that started the turn and session_id the session that sent it (both absent for REST turns).
 */
export interface ChatStartedFrame {
    type: "chat.started";
    conversation_id: number;
    /**
     * Names a chat turn in every chat.* frame.
     */
    turn_id: string;
    /**
     * The stored user message.
     */
    message_id: number;
    /**
     * The user message, so that other sessions can show it.
     */
    message: string;
    /**
     * Whether the turn created the conversation.
     */
    created: boolean;
    title: string;
    request_id?: RequestId;
    session_id?: string;
    /**
     * The model answering (offline for the built-in assistant).
     */
    model: string;
}
/**
 * The next piece of the answer's text; concatenated, the deltas equal chat.done.text (deltas may be merged when a reader lags).
 */
export interface ChatDeltaFrame {
    type: "chat.delta";
    conversation_id: number;
    /**
     * Names a chat turn in every chat.* frame.
     */
    turn_id: string;
    text: string;
}
/**
 * A tool call, sent before the tool runs.
 */
export interface ChatToolCallFrame {
    type: "chat.tool_call";
    conversation_id: number;
    /**
     * Names a chat turn in every chat.* frame.
     */
    turn_id: string;
    call_id: string;
    name: string;
    arguments: ToolArguments;
}
/**
 * The result of a tool call.
 */
export interface ChatToolResultFrame {
    type: "chat.tool_result";
    conversation_id: number;
    /**
     * Names a chat turn in every chat.* frame.
     */
    turn_id: string;
    call_id: string;
    name: string;
    result: ToolResult;
    is_error: boolean;
}
/**
 * Ends a turn that completed or was cancelled; the assistant message is stored by then.
 */
export interface ChatDoneFrame {
    type: "chat.done";
    conversation_id: number;
    /**
     * Names a chat turn in every chat.* frame.
     */
    turn_id: string;
    /**
     * The stored assistant message.
     */
    message_id: number;
    status: "complete" | "cancelled";
    /**
     * The whole answer (the partial answer when cancelled).
     */
    text: string;
    /**
     * Every call of the turn, in order.
     */
    tool_calls: ToolCall[];
}
/**
 * One tool call of a turn with its outcome (chat.done, chat.error, stored messages).
 */
export interface ToolCall {
    id: string;
    name: string;
    arguments: ToolArguments;
    result: ToolResult;
    /**
     * Present (true) on failed calls only.
     */
    is_error?: boolean;
}
/**
 * Ends a turn that failed after it started. It is stored anyway, with the partial text and the tool calls that ran.
 */
export interface ChatErrorFrame {
    type: "chat.error";
    conversation_id: number;
    /**
     * Names a chat turn in every chat.* frame.
     */
    turn_id: string;
    /**
     * The stored assistant message; 0 only if even storing failed.
     */
    message_id: number;
    code: ChatErrorCode;
    /**
     * Safe to show to the user.
     */
    message: string;
    /**
     * The partial answer.
     */
    text: string;
    tool_calls: ToolCall[];
}
/**
 * Asks for a pong (a round trip).
 */
export interface PingFrame {
    type: "ping";
    id?: RequestId;
}
/**
 * Creates a task; answered by a reply (op created) or an error.
 */
export interface TaskCreateFrame {
    type: "task.create";
    id?: RequestId;
    mutation_id?: MutationId;
    task: TaskFields;
}
/**
 * The fields of a new task (task.create). Text is trimmed; priority defaults to medium.
 */
export interface TaskFields {
    /**
     * 1 to 200 characters after trimming, not blank.
     */
    title: string;
    /**
     * At most 1000 characters; null means empty.
     */
    description?: string | null;
    completed?: boolean;
    priority?: Priority;
    tags?: Tags;
    /**
     * An RFC 3339 date-time, or YYYY-MM-DD meaning midnight UTC (years 1 to 9999), or null for no due date.
     */
    due_date?: string | null;
    /**
     * An RFC 3339 date-time, or YYYY-MM-DD meaning midnight UTC (years 1 to 9999), or null for no due date.
     */
    due_at?: string | null;
    /**
     * When to remind: an RFC 3339 date-time (or YYYY-MM-DD, midnight UTC), or null for no reminder.
     */
    remind_at?: string | null;
    /**
     * An RFC 5545 RRULE (an RRULE: prefix is stripped; read ignoring case): FREQ DAILY, WEEKLY, MONTHLY or YEARLY, with INTERVAL, COUNT or UNTIL, BYDAY, BYMONTHDAY, ... At most 500 characters. Needs due_at (the first occurrence). null or "" for none.
     */
    recurrence?: string | null;
    /**
     * An IANA time zone name (Europe/Berlin); null or "" means UTC.
     */
    tz?: string | null;
}
/**
 * Changes some fields of a task; an update that changes nothing answers with the current task and produces no event.
 */
export interface TaskUpdateFrame {
    type: "task.update";
    id?: RequestId;
    mutation_id?: MutationId;
    /**
     * The task version the change is based on; a stale one is answered version_mismatch with the current task, and nothing changes. 0 or absent: no check.
     */
    base_version?: number;
    task_id: number;
    task: TaskPatch;
}
/**
 * A partial change of a task (task.update): only the fields sent change; due_date (or due_at) null clears the due date, remind_at, recurrence and tz null clear theirs.
 */
export interface TaskPatch {
    /**
     * 1 to 200 characters after trimming, not blank.
     */
    title?: string;
    /**
     * At most 1000 characters; null means empty.
     */
    description?: string | null;
    completed?: boolean;
    priority?: Priority;
    tags?: Tags;
    /**
     * An RFC 3339 date-time, or YYYY-MM-DD meaning midnight UTC (years 1 to 9999), or null for no due date.
     */
    due_date?: string | null;
    /**
     * An RFC 3339 date-time, or YYYY-MM-DD meaning midnight UTC (years 1 to 9999), or null for no due date.
     */
    due_at?: string | null;
    /**
     * When to remind: an RFC 3339 date-time (or YYYY-MM-DD, midnight UTC), or null for no reminder.
     */
    remind_at?: string | null;
    /**
     * An RFC 5545 RRULE (an RRULE: prefix is stripped; read ignoring case): FREQ DAILY, WEEKLY, MONTHLY or YEARLY, with INTERVAL, COUNT or UNTIL, BYDAY, BYMONTHDAY, ... At most 500 characters. Needs due_at (the first occurrence). null or "" for none.
     */
    recurrence?: string | null;
    /**
     * An IANA time zone name (Europe/Berlin); null or "" means UTC.
     */
    tz?: string | null;
}
/**
 * Sets completion with completed, or toggles it when completed is absent.
 */
export interface TaskCompleteFrame {
    type: "task.complete";
    id?: RequestId;
    mutation_id?: MutationId;
    /**
     * The task version the change is based on; a stale one is answered version_mismatch with the current task, and nothing changes. 0 or absent: no check.
     */
    base_version?: number;
    task_id: number;
    completed?: boolean;
}
/**
 * Deletes a task, or every task of its recurring series (series: all). Deleting an occurrence that is not completed creates the next occurrence of its series first (docs/PROTOCOL.md, Recurring tasks).
 */
export interface TaskDeleteFrame {
    type: "task.delete";
    id?: RequestId;
    mutation_id?: MutationId;
    /**
     * The task version the change is based on; a stale one is answered version_mismatch with the current task, and nothing changes. 0 or absent: no check.
     */
    base_version?: number;
    task_id: number;
    /**
     * this (the default): this task only; all: every task with its series_id, completed or not. Any other value is answered invalid.
     */
    series?: "this" | "all";
}
/**
 * Reads one page of tasks (the query of GET /api/{user_id}/tasks).
 */
export interface TaskListFrame {
    type: "task.list";
    id?: RequestId;
    filter?: TaskFilter | null;
}
/**
 * The query parameters of GET /api/{user_id}/tasks, for task.list. Values may be strings, numbers, booleans or arrays of those; the server reads them as query strings.
 */
export interface TaskFilter {
    status?: "all" | "pending" | "completed";
    /**
     * One priority, several comma-separated, or an array.
     */
    priority?: string | Priority[];
    /**
     * A tag, or an array meaning every one of the tags (at most 20, each at most 50 characters).
     */
    tag?: string | string[];
    /**
     * Search in title and description.
     */
    q?: string;
    /**
     * An RFC 3339 date-time or a YYYY-MM-DD date.
     */
    due_before?: string;
    /**
     * An RFC 3339 date-time or a YYYY-MM-DD date.
     */
    due_after?: string;
    sort?: "created" | "updated" | "title" | "due_date" | "priority";
    order?: "asc" | "desc";
    /**
     * 1 to 500 (default 100).
     */
    limit?: number | string;
    /**
     * The next_cursor of the previous page.
     */
    cursor?: string;
}
/**
 * Reads what the change log still holds of one task, newest first (GET /api/{user_id}/tasks/{id}/history). The log is pruned after EVENT_RETENTION: that bounds how far back it goes.
 */
export interface TaskHistoryFrame {
    type: "task.history";
    id?: RequestId;
    task_id: number;
    /**
     * At most this many entries (1 to 500, default 100).
     */
    limit?: number;
}
/**
 * Brings a deleted task back with its id (no version), or returns a task to an earlier version (POST /api/{user_id}/tasks/{id}/restore). An ordinary mutation: its own event, mutation_id and base_version honoured.
 */
export interface TaskRestoreFrame {
    type: "task.restore";
    id?: RequestId;
    mutation_id?: MutationId;
    /**
     * The task version the change is based on (for a task that is not deleted); a stale one is answered version_mismatch with the current task. 0 or absent: no check.
     */
    base_version?: number;
    task_id: number;
    /**
     * The version to return to (from task.history); absent or null: the last version before the task was deleted.
     */
    version?: number | null;
}
/**
 * Restarts the event stream after since (the last seq the client applied; 0 for everything). Answered by the events after since then synced, or by a snapshot when since is unknown or no longer retained (e.g. -1).
 */
export interface SyncFrame {
    type: "sync";
    id?: RequestId;
    since: number;
}
/**
 * Replaces the socket's token before it expires.
 */
export interface AuthRefreshFrame {
    type: "auth.refresh";
    id?: RequestId;
    /**
     * A newer token of the same user.
     */
    token: string;
}
/**
 * Asks for the user's open sockets on every instance.
 */
export interface PresenceListFrame {
    type: "presence.list";
    id?: RequestId;
}
/**
 * Sends a message to the assistant: answered by a reply at once, then the turn's chat.* frames on every session of the user.
 */
export interface ChatSendFrame {
    type: "chat.send";
    id?: RequestId;
    /**
     * The conversation to continue; absent or 0 starts one.
     */
    conversation_id?: number;
    /**
     * 1 to 4000 characters, not blank.
     */
    message: string;
    /**
     * The user's IANA time zone (Europe/Berlin): dates in the message are read in it, and new tasks with a due time get it. Absent or null: UTC. An unknown zone is refused (invalid, fields.tz).
     */
    tz?: string | null;
}
/**
 * Stops the turn running in a conversation; the turn then ends with chat.done, status cancelled.
 */
export interface ChatCancelFrame {
    type: "chat.cancel";
    id?: RequestId;
    conversation_id: number;
}
