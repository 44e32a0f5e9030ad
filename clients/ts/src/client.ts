// createClient: one socket, the task store kept in seq order, the durable
// outbox, presence and chat, wired together.

import { Chat } from "./chat.js";
import {
  browserOnline, Connection, tokenOf, type ConnectionState, type OnlineSource, type RequestOptions, type TokenGetter,
  type WebSocketConstructor,
} from "./connection.js";
import { Cell, reportError, type Observable } from "./observable.js";
import {
  newMutationId, Outbox, overlay, type Conflict, type ConflictResolution, type PendingMutation, type RejectedMutation, type ViewTask,
} from "./outbox.js";
import { Presence, type PresenceState } from "./presence.js";
import { DisconnectedError } from "./errors.js";
import type {
  ClientFrame, HelloFrame, ReminderFrame, ServerFrame, Task, TaskFields, TaskFilter, TaskHistoryFrame, TaskHistoryReply,
  TaskMutationReply, TaskPatch, TaskRestoreFrame, TaskVersion,
} from "./protocol.gen.js";
import { defaultStorage, type OutboxStorage, type StoredState } from "./storage.js";
import { TaskStore, type TaskEvent } from "./store.js";
import { tokenUser } from "./token.js";
import { TaskView } from "./view.js";

/** How many times restore() sends its request when the socket drops before the answer. */
const RESTORE_ATTEMPTS = 5;

/** What views show while stored state waits for its owner to be confirmed. */
const NOTHING: Map<number, ViewTask> = new Map();

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
  backoff?: { minMs?: number; maxMs?: number };
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
  history(taskId: number, opts?: { limit?: number }): Promise<TaskVersion[]>;
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
export function createClient(options: ClientOptions): TasksyncClient {
  return new Client(options);
}

class Client implements TasksyncClient {
  readonly #conn: Connection;
  readonly #store = new TaskStore();
  readonly #outbox: Outbox;
  readonly #presence = new Presence();
  readonly chat: Chat;
  readonly #storage: OutboxStorage;
  readonly #outboxCell = new Cell<readonly PendingMutation[]>([]);
  readonly #conflicts = new Cell<readonly Conflict[]>([]);
  readonly #rejected = new Cell<readonly RejectedMutation[]>([]);
  readonly #viewListeners = new Set<() => void>();
  readonly #eventListeners = new Set<(e: TaskEvent) => void>();
  readonly #reminderListeners = new Set<(r: ReminderFrame) => void>();
  // Reminder ids already handed to the app: a reminder reaches a session once, and this keeps it once for the
  // client across its reconnects too.
  readonly #remindersSeen = new Set<string>();
  readonly #loaded: Promise<void>;
  #storedUser: string | null = null;
  // Stored state whose owner nobody confirmed yet (no userId option, no
  // readable token): views hide it until hello names the user.
  #unconfirmed = false;
  readonly #userHint: string | undefined;
  readonly #getToken: TokenGetter;
  #view: { store: number; outbox: number; map: Map<number, ViewTask> } | null = null;
  #syncing = false;
  #ready: { promise: Promise<void>; resolve(): void; done: boolean };
  #dirty = false;
  #saving: Promise<void> | null = null;
  #closed = false;

  constructor(o: ClientOptions) {
    const WS = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError("tasksync: no WebSocket here (Node 20): pass createClient({WebSocket}) from the ws package");
    this.#storage = o.storage ?? defaultStorage();
    this.#userHint = o.userId;
    this.#getToken = o.getToken;
    let resolveReady!: () => void;
    this.#ready = { promise: new Promise<void>((r) => (resolveReady = r)), resolve: () => resolveReady(), done: false };
    const onConflict = o.onConflict ?? (() => "server" as const);
    this.#outbox = new Outbox({
      store: this.#store,
      request: (f) => this.#conn.request(f),
      live: () => this.#conn.live,
      onConflict,
      onChange: () => {
        this.#outboxCell.set([...this.#outbox.list]);
        this.#changed();
      },
      onConflictReported: (c) => this.#conflicts.set([...this.#conflicts.get(), c]),
      onRejected: (r) => this.#rejected.set([...this.#rejected.get(), r]),
      retry: { minMs: o.backoff?.minMs ?? 500, maxMs: o.backoff?.maxMs ?? 20000 },
    });
    this.#conn = new Connection({
      urls: Array.isArray(o.url) ? o.url : [o.url],
      WebSocket: WS,
      getToken: o.getToken,
      fetch: o.fetch,
      device: o.device,
      backoff: { minMs: o.backoff?.minMs ?? 500, maxMs: o.backoff?.maxMs ?? 20000 },
      refreshBeforeMs: o.refreshBeforeMs ?? 60000,
      online: o.online ?? browserOnline(),
      heartbeatMs: o.heartbeatMs ?? 30000,
      since: () => this.#store.seq,
      onHello: (h) => this.#onHello(h),
      onFrame: (f) => this.#onFrame(f),
      onDown: () => this.#onDown(),
    });
    this.chat = new Chat({
      request: (f, opts) => this.#conn.request(f, opts),
      sessionId: () => this.#conn.hello?.session_id,
    });
    this.#store.subscribe(() => {
      this.#conn.setSeq(this.#store.seq);
      this.#changed();
    });
    this.#conn.state.subscribe((s) => {
      if (s.status !== "live") return;
      this.#outbox.pump();
      this.#conn.request({ type: "presence.list" }).catch(() => {});
    });
    this.#loaded = this.#storage.load().then(
      (state) => this.#restore(state),
      (err) => reportError(err),
    );
    void this.#loaded.then(() => {
      if (!this.#closed) this.#conn.start();
    });
  }

  get connection(): Observable<ConnectionState> {
    return this.#conn.state;
  }

  get userId(): string | null {
    return this.#conn.userId ?? this.#storedUser;
  }

  get seq(): number {
    return this.#store.seq;
  }

  get outbox(): Observable<readonly PendingMutation[]> {
    return this.#outboxCell;
  }

  get conflicts(): Observable<readonly Conflict[]> {
    return this.#conflicts;
  }

  get rejected(): Observable<readonly RejectedMutation[]> {
    return this.#rejected;
  }

  get presence(): Observable<PresenceState> {
    return this.#presence.state;
  }

  tasks(filter: TaskFilter = {}): TaskView {
    return new TaskView(
      {
        all: () => this.#all(),
        subscribe: (cb) => {
          this.#viewListeners.add(cb);
          return () => {
            this.#viewListeners.delete(cb);
          };
        },
        create: (fields) => this.#mutate({ type: "task.create", task: fields }) as Promise<Task>,
        update: (id, patch, opts) =>
          this.#mutate({ type: "task.update", task_id: id, task: patch, base_version: opts?.baseVersion }) as Promise<Task>,
        complete: async (id, completed) => {
          await this.#loaded;
          const current = this.#all().get(this.#outbox.resolveId(id));
          const value = completed ?? !(current?.completed ?? false);
          return (await this.#mutate({ type: "task.complete", task_id: id, completed: value })) as Task;
        },
        delete: async (id, opts) => {
          if (opts?.series !== "all") {
            await this.#mutate({ type: "task.delete", task_id: id });
            return;
          }
          await this.#loaded;
          const seriesId = this.#all().get(this.#outbox.resolveId(id))?.series_id;
          await this.#mutate({ type: "task.delete", task_id: id, series: "all", ...(seriesId != null ? { series_id: seriesId } : {}) });
        },
      },
      filter,
    );
  }

  ready(): Promise<void> {
    return this.#ready.promise;
  }

  reconnect(): void {
    this.#conn.reconnect();
  }

  onEvent(cb: (event: TaskEvent) => void): () => void {
    this.#eventListeners.add(cb);
    return () => {
      this.#eventListeners.delete(cb);
    };
  }

  onReminder(cb: (reminder: ReminderFrame) => void): () => void {
    this.#reminderListeners.add(cb);
    return () => {
      this.#reminderListeners.delete(cb);
    };
  }

  async history(taskId: number, opts: { limit?: number } = {}): Promise<TaskVersion[]> {
    await this.#loaded;
    const frame: TaskHistoryFrame = { type: "task.history", task_id: this.#outbox.resolveId(taskId) };
    if (opts.limit !== undefined) frame.limit = opts.limit;
    const reply = (await this.#conn.request(frame, { wait: true })) as TaskHistoryReply;
    return reply.versions;
  }

  async restore(taskId: number, version?: number): Promise<Task> {
    await this.#loaded;
    const frame: TaskRestoreFrame = { type: "task.restore", task_id: this.#outbox.resolveId(taskId), mutation_id: newMutationId() };
    if (version !== undefined) frame.version = version;
    // A reply lost with the socket is asked for again with the same
    // mutation_id: the server applies the restore once and answers the
    // retry with the first result.
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new DisconnectedError("the client was closed");
      try {
        const reply = (await this.#conn.request(frame, { wait: true })) as TaskMutationReply;
        return reply.task!;
      } catch (err) {
        if (!(err instanceof DisconnectedError) || attempt >= RESTORE_ATTEMPTS - 1) throw err;
      }
    }
  }

  request(frame: ClientFrame, opts?: RequestOptions): Promise<ServerFrame> {
    return this.#conn.request(frame, opts);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
    this.#outbox.stop();
    this.chat.close();
    await this.#loaded;
    await this.#flush();
  }

  async #mutate(m: Parameters<Outbox["add"]>[0]): Promise<Task | undefined> {
    await this.#loaded;
    if (this.#closed) throw new Error("tasksync: the client is closed");
    return this.#outbox.add(m).done;
  }

  #all(): Map<number, ViewTask> {
    if (this.#unconfirmed) return NOTHING;
    const v = this.#view;
    if (v && v.store === this.#store.version && v.outbox === this.#outbox.version) return v.map;
    const map = overlay(this.#store.tasks, this.#outbox.list, this.userId ?? "");
    this.#view = { store: this.#store.version, outbox: this.#outbox.version, map };
    return map;
  }

  #changed(): void {
    this.#persist();
    for (const cb of [...this.#viewListeners]) cb();
  }

  async #restore(state: StoredState | null): Promise<void> {
    if (!state || state.v !== 1) return;
    const who = await this.#signedInUser();
    if (who !== null && state.user_id !== null && who !== state.user_id) {
      // Another user's state (a shared browser): never shown, never sent.
      // Overwritten by this user's state at the first save.
      return;
    }
    this.#storedUser = state.user_id;
    this.#unconfirmed = who === null && state.user_id !== null;
    this.#store.load(state.seq, state.tasks);
    this.#outbox.load(state.outbox, state.id_map);
  }

  /** The user the app says is signed in, else the one its token names; null when neither tells. */
  async #signedInUser(): Promise<string | null> {
    if (this.#userHint) return this.#userHint;
    try {
      const token = tokenOf(await this.#getToken());
      return token ? tokenUser(token) : null;
    } catch {
      return null;
    }
  }

  #onHello(hello: HelloFrame): void {
    if (this.#unconfirmed) {
      this.#unconfirmed = false;
      this.#view = null; // the stored state shows now, or is dropped below
      if (this.#storedUser === hello.user_id) this.#changed();
    }
    if (this.#storedUser !== null && this.#storedUser !== hello.user_id) {
      // Another user's state: never show it, never send its changes.
      this.#store.reset();
      this.#outbox.clear();
      // The ?since= of this socket was the other user's: start over from a snapshot.
      this.#syncing = true;
      this.#conn.request({ type: "sync", since: -1 }, { wait: true }).catch(() => {});
      this.#storedUser = hello.user_id;
      return;
    }
    this.#storedUser = hello.user_id;
    this.#syncing = true; // connected with ?since=: a synced or a snapshot comes first
    this.#store.dropPartial();
  }

  #onDown(): void {
    this.#syncing = false;
    this.#store.dropPartial();
    this.#presence.clear();
    this.chat.down();
  }

  #onFrame(f: ServerFrame): void {
    switch (f.type) {
      case "task.created":
      case "task.updated":
      case "task.deleted": {
        const r = this.#store.applyEvent(f);
        if (r === "applied") for (const cb of [...this.#eventListeners]) cb(f);
        else if (r === "gap") this.#resync();
        return;
      }
      case "snapshot": {
        const r = this.#store.applySnapshot(f);
        if (r === "applied") this.#synced();
        else if (r === "gap") this.#resync(true);
        return;
      }
      case "synced":
        this.#synced();
        return;
      case "presence":
        this.#presence.apply(f);
        return;
      case "reminder":
        if (this.#remindersSeen.has(f.reminder_id)) return;
        this.#remindersSeen.add(f.reminder_id);
        for (const cb of [...this.#reminderListeners]) {
          try {
            cb(f);
          } catch (err) {
            reportError(err);
          }
        }
        return;
      case "reply":
        if (f.re === "presence.list") this.#presence.apply(f);
        return;
    }
    this.chat.apply(f);
  }

  #synced(): void {
    this.#syncing = false;
    if (!this.#ready.done) {
      this.#ready.done = true;
      this.#ready.resolve();
    }
  }

  /** An event is missing (a gap): ask for everything after the last applied seq. */
  #resync(force = false): void {
    if (this.#syncing && !force) return;
    this.#syncing = true;
    this.#conn.request({ type: "sync", since: this.#store.seq }).catch(() => {
      this.#syncing = false;
    });
  }

  #state(): StoredState {
    return {
      v: 1,
      user_id: this.userId,
      seq: this.#store.seq,
      tasks: [...this.#store.tasks.values()],
      outbox: [...this.#outbox.list],
      id_map: [...this.#outbox.idMap.entries()],
    };
  }

  /** Saves the newest state; one save at a time, coalescing changes made meanwhile. */
  #persist(): void {
    this.#dirty = true;
    this.#saving ??= (async () => {
      await this.#loaded;
      while (this.#dirty) {
        this.#dirty = false;
        try {
          await this.#storage.save(this.#state());
        } catch (err) {
          reportError(err);
        }
      }
      this.#saving = null;
    })();
  }

  async #flush(): Promise<void> {
    while (this.#saving) await this.#saving;
  }
}
