import { Chat } from "./chat.js";
import { type ConnectionState, type OnlineSource, type RequestOptions, type TokenGetter, type WebSocketConstructor } from "./connection.js";
import { type Observable } from "./observable.js";
import { type Conflict, type ConflictResolution, type PendingMutation, type RejectedMutation } from "./outbox.js";
import { type PresenceState } from "./presence.js";
import type { ClientFrame, ReminderFrame, ServerFrame, Task, TaskFilter, TaskVersion } from "./protocol.gen.js";
import { type OutboxStorage } from "./storage.js";
import { type TaskEvent } from "./store.js";
import { TaskView } from "./view.js";
/** Options of createClient. */
export interface ClientOptions {
    /** The server's base URL (http, https, ws or wss; "/ws" is added), or several, tried in turn when one fails. */
    url: string | string[];
    /** Returns the current token (a JWT): called to connect and again before token_expires_at. Return null when signed out. */
    getToken: TokenGetter;
    /** The WebSocket constructor (default globalThis.WebSocket; on Node 20 pass WebSocket from the `ws` package). */
    WebSocket?: WebSocketConstructor;
    /** fetch for the REST call that tells a refused token from a down server (default globalThis.fetch). */
    fetch?: typeof fetch;
    /** Where the outbox, last seq and task cache are kept (default IndexedDB when it exists, else memory). */
    storage?: OutboxStorage;
    /**
     * The signed-in user, when the app knows it (its session says). Stored state is shown before the
     * server confirms the user only when it is this user's, or when the token names its owner; another
     * user's stored state is never shown and its changes are never sent.
     */
    userId?: string;
    /** Decides a version conflict of a local change (default: keep the server's version). Every conflict is reported in client.conflicts. */
    onConflict?: (c: Conflict) => ConflictResolution | Promise<ConflictResolution>;
    /** A label for this device in presence (default: the server uses the User-Agent). */
    device?: string;
    /** Reconnect backoff: full jitter between 0 and min(maxMs, minMs * 2^attempt). Default 500 ms to 20 s. */
    backoff?: {
        minMs?: number;
        maxMs?: number;
    };
    /** Refresh the token this long before it expires (default 60 s; at most half the token's remaining life). */
    refreshBeforeMs?: number;
    /** Whether the network is up (default navigator.onLine and the window's online/offline events). */
    online?: OnlineSource;
    /** How long without any frame before a ping checks the socket (default 30 s). */
    heartbeatMs?: number;
}
/** A tasksync client. Create it with createClient. */
export interface TasksyncClient {
    /** The connection's state: connecting, live, offline, reconnecting, unauthenticated, closed. */
    readonly connection: Observable<ConnectionState>;
    /** The signed-in user (from hello, else from the token or storage); null before it is known. */
    readonly userId: string | null;
    /** The last applied change seq (-1 before the first snapshot). */
    readonly seq: number;
    /** A live view of the tasks that match filter. */
    tasks(filter?: TaskFilter): TaskView;
    /** Local changes not yet acknowledged, oldest first. */
    readonly outbox: Observable<readonly PendingMutation[]>;
    /** Version conflicts met so far, newest last. */
    readonly conflicts: Observable<readonly Conflict[]>;
    /** Local changes the server refused for good (not_found, invalid, ...), newest last. */
    readonly rejected: Observable<readonly RejectedMutation[]>;
    /** The user's sessions online. */
    readonly presence: Observable<PresenceState>;
    /** The assistant: send(message) streams a turn; turns.subscribe follows turns started elsewhere. */
    readonly chat: Chat;
    /** Resolves once the first sync (or snapshot) of this client is applied. */
    ready(): Promise<void>;
    /** Connects now: after "unauthenticated" once getToken returns a new token, or to skip a backoff wait. */
    reconnect(): void;
    /** Calls cb with every change event applied (once per event, in seq order); returns the unsubscribe function. */
    onEvent(cb: (event: TaskEvent) => void): () => void;
    /**
     * Calls cb with every reminder the server sends: once per reminder, when it fires while this client is
     * connected (pending: false), or after the next connect when it fired while none of the user's devices was
     * (pending: true; then only the device that connects first gets it). Snooze with
     * tasks().update(id, { remind_at }). Returns the unsubscribe function.
     */
    onReminder(cb: (reminder: ReminderFrame) => void): () => void;
    /**
     * The versions of a task the server's change log still holds, newest first (task.history): each
     * with its seq, op, time, who made it (actor, session) and the task after it (null for a delete).
     * The log is pruned after the server's EVENT_RETENTION, which bounds how far back it goes.
     * Fails with RequestError not_found for a task with no history (or another user's).
     */
    history(taskId: number, opts?: {
        limit?: number;
    }): Promise<TaskVersion[]>;
    /**
     * Undo (task.restore): without version, brings a deleted task back with its id and its last
     * fields; with version, returns the task to that version's fields (see history). Resolves with
     * the task; the change also arrives as an event, on every device. Sent with a mutation_id and
     * resent after a dropped socket, so it is applied once. Fails with RequestError: conflict (not
     * deleted, or restored meanwhile), not_found (no such version left in the log).
     */
    restore(taskId: number, version?: number): Promise<Task>;
    /** Sends any request of docs/PROTOCOL.md (task.list, ping, ...) and resolves with its answer. */
    request(frame: ClientFrame, opts?: RequestOptions): Promise<ServerFrame>;
    /** Closes the socket; the outbox stays in storage for the next client. */
    close(): Promise<void>;
}
/** Creates a client and starts connecting (after the stored state is loaded). */
export declare function createClient(options: ClientOptions): TasksyncClient;
