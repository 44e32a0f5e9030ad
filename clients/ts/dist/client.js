// createClient: one socket, the task store kept in seq order, the durable
// outbox, presence and chat, wired together.
import { Chat } from "./chat.js";
import { browserOnline, Connection, tokenOf, } from "./connection.js";
import { Cell, reportError } from "./observable.js";
import { newMutationId, Outbox, overlay, } from "./outbox.js";
import { Presence } from "./presence.js";
import { DisconnectedError } from "./errors.js";
import { defaultStorage } from "./storage.js";
import { TaskStore } from "./store.js";
import { tokenUser } from "./token.js";
import { TaskView } from "./view.js";
/** How many times restore() sends its request when the socket drops before the answer. */
const RESTORE_ATTEMPTS = 5;
/** What views show while stored state waits for its owner to be confirmed. */
const NOTHING = new Map();
/** Creates a client and starts connecting (after the stored state is loaded). */
export function createClient(options) {
    return new Client(options);
}
class Client {
    #conn;
    #store = new TaskStore();
    #outbox;
    #presence = new Presence();
    chat;
    #storage;
    #outboxCell = new Cell([]);
    #conflicts = new Cell([]);
    #rejected = new Cell([]);
    #viewListeners = new Set();
    #eventListeners = new Set();
    #reminderListeners = new Set();
    // Reminder ids already handed to the app: a reminder reaches a session once, and this keeps it once for the
    // client across its reconnects too.
    #remindersSeen = new Set();
    #loaded;
    #storedUser = null;
    // Stored state whose owner nobody confirmed yet (no userId option, no
    // readable token): views hide it until hello names the user.
    #unconfirmed = false;
    #userHint;
    #getToken;
    #view = null;
    #syncing = false;
    #ready;
    #dirty = false;
    #saving = null;
    #closed = false;
    constructor(o) {
        const WS = o.WebSocket ?? globalThis.WebSocket;
        if (!WS)
            throw new TypeError("tasksync: no WebSocket here (Node 20): pass createClient({WebSocket}) from the ws package");
        this.#storage = o.storage ?? defaultStorage();
        this.#userHint = o.userId;
        this.#getToken = o.getToken;
        let resolveReady;
        this.#ready = { promise: new Promise((r) => (resolveReady = r)), resolve: () => resolveReady(), done: false };
        const onConflict = o.onConflict ?? (() => "server");
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
            if (s.status !== "live")
                return;
            this.#outbox.pump();
            this.#conn.request({ type: "presence.list" }).catch(() => { });
        });
        this.#loaded = this.#storage.load().then((state) => this.#restore(state), (err) => reportError(err));
        void this.#loaded.then(() => {
            if (!this.#closed)
                this.#conn.start();
        });
    }
    get connection() {
        return this.#conn.state;
    }
    get userId() {
        return this.#conn.userId ?? this.#storedUser;
    }
    get seq() {
        return this.#store.seq;
    }
    get outbox() {
        return this.#outboxCell;
    }
    get conflicts() {
        return this.#conflicts;
    }
    get rejected() {
        return this.#rejected;
    }
    get presence() {
        return this.#presence.state;
    }
    tasks(filter = {}) {
        return new TaskView({
            all: () => this.#all(),
            subscribe: (cb) => {
                this.#viewListeners.add(cb);
                return () => {
                    this.#viewListeners.delete(cb);
                };
            },
            create: (fields) => this.#mutate({ type: "task.create", task: fields }),
            update: (id, patch, opts) => this.#mutate({ type: "task.update", task_id: id, task: patch, base_version: opts?.baseVersion }),
            complete: async (id, completed) => {
                await this.#loaded;
                const current = this.#all().get(this.#outbox.resolveId(id));
                const value = completed ?? !(current?.completed ?? false);
                return (await this.#mutate({ type: "task.complete", task_id: id, completed: value }));
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
        }, filter);
    }
    ready() {
        return this.#ready.promise;
    }
    reconnect() {
        this.#conn.reconnect();
    }
    onEvent(cb) {
        this.#eventListeners.add(cb);
        return () => {
            this.#eventListeners.delete(cb);
        };
    }
    onReminder(cb) {
        this.#reminderListeners.add(cb);
        return () => {
            this.#reminderListeners.delete(cb);
        };
    }
    async history(taskId, opts = {}) {
        await this.#loaded;
        const frame = { type: "task.history", task_id: this.#outbox.resolveId(taskId) };
        if (opts.limit !== undefined)
            frame.limit = opts.limit;
        const reply = (await this.#conn.request(frame, { wait: true }));
        return reply.versions;
    }
    async restore(taskId, version) {
        await this.#loaded;
        const frame = { type: "task.restore", task_id: this.#outbox.resolveId(taskId), mutation_id: newMutationId() };
        if (version !== undefined)
            frame.version = version;
        // A reply lost with the socket is asked for again with the same
        // mutation_id: the server applies the restore once and answers the
        // retry with the first result.
        for (let attempt = 0;; attempt++) {
            if (this.#closed)
                throw new DisconnectedError("the client was closed");
            try {
                const reply = (await this.#conn.request(frame, { wait: true }));
                return reply.task;
            }
            catch (err) {
                if (!(err instanceof DisconnectedError) || attempt >= RESTORE_ATTEMPTS - 1)
                    throw err;
            }
        }
    }
    request(frame, opts) {
        return this.#conn.request(frame, opts);
    }
    async close() {
        if (this.#closed)
            return;
        this.#closed = true;
        this.#conn.close();
        this.#outbox.stop();
        this.chat.close();
        await this.#loaded;
        await this.#flush();
    }
    async #mutate(m) {
        await this.#loaded;
        if (this.#closed)
            throw new Error("tasksync: the client is closed");
        return this.#outbox.add(m).done;
    }
    #all() {
        if (this.#unconfirmed)
            return NOTHING;
        const v = this.#view;
        if (v && v.store === this.#store.version && v.outbox === this.#outbox.version)
            return v.map;
        const map = overlay(this.#store.tasks, this.#outbox.list, this.userId ?? "");
        this.#view = { store: this.#store.version, outbox: this.#outbox.version, map };
        return map;
    }
    #changed() {
        this.#persist();
        for (const cb of [...this.#viewListeners])
            cb();
    }
    async #restore(state) {
        if (!state || state.v !== 1)
            return;
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
    async #signedInUser() {
        if (this.#userHint)
            return this.#userHint;
        try {
            const token = tokenOf(await this.#getToken());
            return token ? tokenUser(token) : null;
        }
        catch {
            return null;
        }
    }
    #onHello(hello) {
        if (this.#unconfirmed) {
            this.#unconfirmed = false;
            this.#view = null; // the stored state shows now, or is dropped below
            if (this.#storedUser === hello.user_id)
                this.#changed();
        }
        if (this.#storedUser !== null && this.#storedUser !== hello.user_id) {
            // Another user's state: never show it, never send its changes.
            this.#store.reset();
            this.#outbox.clear();
            // The ?since= of this socket was the other user's: start over from a snapshot.
            this.#syncing = true;
            this.#conn.request({ type: "sync", since: -1 }, { wait: true }).catch(() => { });
            this.#storedUser = hello.user_id;
            return;
        }
        this.#storedUser = hello.user_id;
        this.#syncing = true; // connected with ?since=: a synced or a snapshot comes first
        this.#store.dropPartial();
    }
    #onDown() {
        this.#syncing = false;
        this.#store.dropPartial();
        this.#presence.clear();
        this.chat.down();
    }
    #onFrame(f) {
        switch (f.type) {
            case "task.created":
            case "task.updated":
            case "task.deleted": {
                const r = this.#store.applyEvent(f);
                if (r === "applied")
                    for (const cb of [...this.#eventListeners])
                        cb(f);
                else if (r === "gap")
                    this.#resync();
                return;
            }
            case "snapshot": {
                const r = this.#store.applySnapshot(f);
                if (r === "applied")
                    this.#synced();
                else if (r === "gap")
                    this.#resync(true);
                return;
            }
            case "synced":
                this.#synced();
                return;
            case "presence":
                this.#presence.apply(f);
                return;
            case "reminder":
                if (this.#remindersSeen.has(f.reminder_id))
                    return;
                this.#remindersSeen.add(f.reminder_id);
                for (const cb of [...this.#reminderListeners]) {
                    try {
                        cb(f);
                    }
                    catch (err) {
                        reportError(err);
                    }
                }
                return;
            case "reply":
                if (f.re === "presence.list")
                    this.#presence.apply(f);
                return;
        }
        this.chat.apply(f);
    }
    #synced() {
        this.#syncing = false;
        if (!this.#ready.done) {
            this.#ready.done = true;
            this.#ready.resolve();
        }
    }
    /** An event is missing (a gap): ask for everything after the last applied seq. */
    #resync(force = false) {
        if (this.#syncing && !force)
            return;
        this.#syncing = true;
        this.#conn.request({ type: "sync", since: this.#store.seq }).catch(() => {
            this.#syncing = false;
        });
    }
    #state() {
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
    #persist() {
        this.#dirty = true;
        this.#saving ??= (async () => {
            await this.#loaded;
            while (this.#dirty) {
                this.#dirty = false;
                try {
                    await this.#storage.save(this.#state());
                }
                catch (err) {
                    reportError(err);
                }
            }
            this.#saving = null;
        })();
    }
    async #flush() {
        while (this.#saving)
            await this.#saving;
    }
}
