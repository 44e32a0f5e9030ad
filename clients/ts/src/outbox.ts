// The outbox: every local change, from the moment it is made until the
// server acknowledges it.
//
// A change is applied to the view at once (optimistically), kept in durable
// storage, and sent with a mutation_id that stays the same across resends
// (after a lost reply, a reconnect or a restart): the server's idempotency
// applies it once and answers a resend with "replayed":true. Changes are sent
// in order; two changes of one task are never on the wire together (the
// server may work on concurrent requests in either order), and a change of a
// task created offline waits for the create's reply that names its real id.
// The view is the server's state with the pending changes applied over it,
// recomputed whenever either moves, which rebases them over server events.
//
// Updates carry base_version, the version the change was made on; a
// version_mismatch asks onConflict (default: keep the server's) and is
// reported. not_found, invalid and other refusals drop the change (and
// those that depend on it) and report it; unavailable and internal are
// retried later with backoff.

import { DisconnectedError, RequestError } from "./errors.js";
import type { ClientFrame, ServerFrame, Task, TaskFields, TaskPatch } from "./protocol.gen.js";
import type { TaskStore } from "./store.js";
import { backoffDelay } from "./connection.js";

/** The kinds of change the outbox holds. */
export type MutationType = "task.create" | "task.update" | "task.complete" | "task.delete";

/** A local change not yet acknowledged by the server, as it is stored. */
export interface PendingMutation {
  /** The idempotency key sent with every attempt. */
  mutation_id: string;
  type: MutationType;
  /** The task changed: a real id, or the negative temporary id of a create still pending. */
  task_id?: number;
  /** A create: the negative id its placeholder carries until the server names the task. */
  temp_id?: number;
  /** A create's fields, or an update's patch. */
  task?: TaskFields | TaskPatch;
  /** A complete: the completion set. */
  completed?: boolean;
  /** The task version the change was made on (sent with updates as base_version). */
  base_version?: number;
  /** A delete: "all" deletes every task of the task's recurring series (absent: this task only). */
  series?: "this" | "all";
  /** A series delete: the series_id of the task, as shown when the delete was made. */
  series_id?: number;
  /** How many times it was sent. */
  attempts: number;
  /**
   * A create: the highest task id this client knew when it was first sent.
   * Its task will have a higher id: a task.created event applied before the
   * reply is matched to it by that and by its fields, and shown once.
   */
  after_id?: number;
  /** When the change was made (ISO 8601). */
  created_at: string;
  /** The last error that made it wait (unavailable, internal...). */
  last_error?: string;
}

/** A version conflict, as onConflict sees it and client.conflicts reports it. */
export interface Conflict {
  /** The local change (an update's patch, or {completed} for a complete). */
  local: TaskPatch;
  /** The task as the server holds it now. */
  server: Task;
  /** The refused change. */
  mutation: PendingMutation;
  /** What was done: the server's version kept, the local change resent, or a merged patch resent. */
  resolution?: "server" | "local" | "merged";
  /** When it happened (ISO 8601). */
  at?: string;
}

/** What onConflict decides: keep the server's version, resend the local change over it, or resend this patch. */
export type ConflictResolution = "server" | "local" | TaskPatch;

/** A change the server refused for good (not_found, invalid, ...). */
export interface RejectedMutation {
  mutation: PendingMutation;
  code: string;
  message: string;
  fields?: { [field: string]: string | undefined };
  at: string;
}

export interface OutboxDeps {
  store: TaskStore;
  request(frame: ClientFrame): Promise<ServerFrame>;
  live(): boolean;
  onConflict(c: Conflict): ConflictResolution | Promise<ConflictResolution>;
  onChange(): void;
  onConflictReported(c: Conflict): void;
  onRejected(r: RejectedMutation): void;
  retry: { minMs: number; maxMs: number };
}

interface Waiter {
  resolve(v: Task | undefined): void;
  reject(err: Error): void;
}

/** Resolves a temporary id through the creates acknowledged so far. */
type IdMap = Map<number, number>;

export class Outbox {
  readonly #d: OutboxDeps;
  #list: PendingMutation[] = [];
  readonly #idMap: IdMap = new Map();
  readonly #sending = new Set<string>(); // mutation_ids on the wire
  readonly #waiters = new Map<string, Waiter>();
  readonly #retryAt = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #nextTemp = -1;
  /** Bumped on every change of the list (views recompute when it moved). */
  version = 0;

  constructor(deps: OutboxDeps) {
    this.#d = deps;
  }

  /** The pending changes, oldest first. */
  get list(): readonly PendingMutation[] {
    return this.#list;
  }

  /** Temporary ids of acknowledged creates and the real ids they became. */
  get idMap(): ReadonlyMap<number, number> {
    return this.#idMap;
  }

  /** Restores a stored outbox. */
  load(list: readonly PendingMutation[], idMap: readonly (readonly [number, number])[]): void {
    this.#list = list.map((m) => ({ ...m }));
    for (const [tmp, real] of idMap) this.#idMap.set(tmp, real);
    let lowest = 0;
    for (const m of this.#list) lowest = Math.min(lowest, m.temp_id ?? 0, m.task_id ?? 0);
    for (const tmp of this.#idMap.keys()) lowest = Math.min(lowest, tmp);
    this.#nextTemp = lowest - 1;
    this.#changed();
  }

  /** Drops everything (another user signed in). */
  clear(): void {
    for (const w of this.#waiters.values()) w.reject(new Error("the outbox was cleared: another user signed in"));
    this.#waiters.clear();
    this.#list = [];
    this.#idMap.clear();
    this.#changed();
  }

  /** Stops retry timers (client.close). */
  stop(): void {
    clearTimeout(this.#timer);
  }

  /** The real id of a task, when id is the temporary id of an acknowledged create. */
  resolveId(id: number): number {
    return this.#idMap.get(id) ?? id;
  }

  /** Queues a change; resolves with the task the server returns (undefined for a delete). */
  add(m: Omit<PendingMutation, "mutation_id" | "attempts" | "created_at">): { mutation: PendingMutation; done: Promise<Task | undefined> } {
    const mutation: PendingMutation = { ...m, mutation_id: newMutationId(), attempts: 0, created_at: new Date().toISOString() };
    if (mutation.type === "task.create") mutation.temp_id = this.#nextTemp--;
    if (mutation.task_id !== undefined) mutation.task_id = this.resolveId(mutation.task_id);
    if (mutation.type !== "task.create" && mutation.base_version === undefined && mutation.task_id! > 0) {
      mutation.base_version = this.#d.store.tasks.get(mutation.task_id!)?.version;
    }
    const done = new Promise<Task | undefined>((resolve, reject) => this.#waiters.set(mutation.mutation_id, { resolve, reject }));
    this.#list.push(mutation);
    this.#changed();
    this.pump();
    return { mutation, done };
  }

  /** Sends what may be sent now: in order, one change per task on the wire, creates before their dependants. */
  pump(): void {
    if (!this.#d.live()) return;
    clearTimeout(this.#timer);
    const busy = new Set<number>();
    let nextRetry = Infinity;
    for (const m of this.#list) {
      const key = m.task_id ?? m.temp_id!;
      if (busy.has(key)) continue;
      busy.add(key);
      if (this.#sending.has(m.mutation_id)) continue;
      if (m.task_id !== undefined && m.task_id < 0) continue; // waits for its create's reply
      const at = this.#retryAt.get(m.mutation_id) ?? 0;
      if (at > Date.now()) {
        nextRetry = Math.min(nextRetry, at);
        continue;
      }
      this.#send(m);
    }
    if (nextRetry !== Infinity) this.#timer = setTimeout(() => this.pump(), nextRetry - Date.now());
  }

  #send(m: PendingMutation): void {
    this.#sending.add(m.mutation_id);
    if (m.type === "task.create" && m.after_id === undefined) {
      let max = 0;
      for (const id of this.#d.store.tasks.keys()) max = Math.max(max, id);
      m.after_id = max;
    }
    m.attempts++;
    this.#d.request(frameOf(m)).then(
      (reply) => {
        this.#sending.delete(m.mutation_id);
        this.#acked(m, reply);
        this.pump();
      },
      (err: Error) => {
        this.#sending.delete(m.mutation_id);
        void this.#refused(m, err).then(() => this.pump());
      },
    );
  }

  #acked(m: PendingMutation, reply: ServerFrame): void {
    if (!this.#list.includes(m)) return;
    const task = reply.type === "reply" && "task" in reply && !Array.isArray(reply.task) ? reply.task : undefined;
    const store = this.#d.store;
    this.#retryAt.delete(m.mutation_id);
    if (m.type === "task.create" && task) {
      this.#idMap.set(m.temp_id!, task.id);
      for (const later of this.#list) {
        if (later.task_id === m.temp_id) {
          later.task_id = task.id;
          later.base_version ??= task.version;
        }
      }
    } else if (task && m.task_id !== undefined) {
      // Later changes of this task were made on top of this one: they are based on its result.
      for (const later of this.#list) {
        if (later !== m && later.task_id === m.task_id && later.base_version === m.base_version) later.base_version = task.version;
      }
    }
    // One step for the views: the outbox lets go of the change in the same
    // notification as the store takes its result, so no view shows the
    // change missing (or shown twice, temporary and real) in between.
    this.#list = this.#list.filter((x) => x !== m);
    this.#retryAt.delete(m.mutation_id);
    this.version++;
    if (m.type === "task.delete") {
      // The deletes of the rest of a series come as events, usually after
      // the acknowledgement: the series goes at once, in one step.
      const gone = [m.task_id!];
      if (m.series_id !== undefined) for (const t of store.tasks.values()) if (t.series_id === m.series_id) gone.push(t.id);
      store.removeMany(gone);
    } else if (task) store.put(task);
    this.#changed();
    this.#settle(m, null, task);
  }

  async #refused(m: PendingMutation, err: Error): Promise<void> {
    if (!this.#list.includes(m)) return;
    if (err instanceof DisconnectedError) return; // resent after the reconnect, same mutation_id
    if (!(err instanceof RequestError)) return this.#later(m, String(err?.message ?? err));
    switch (err.code) {
      case "version_mismatch":
        return this.#conflict(m, err);
      case "unavailable":
      case "internal":
      case "rate_limited":
        return this.#later(m, err.message);
    }
    // not_found, invalid, bad_request, conflict (a reused mutation_id), forbidden: this change will never apply.
    if (err.code === "not_found" && m.task_id !== undefined && m.task_id > 0) this.#d.store.remove(m.task_id);
    this.#drop(m, err);
  }

  #later(m: PendingMutation, why: string): void {
    m.last_error = why;
    this.#retryAt.set(m.mutation_id, Date.now() + backoffDelay(m.attempts, this.#d.retry.minMs, this.#d.retry.maxMs));
    this.#changed();
  }

  async #conflict(m: PendingMutation, err: RequestError): Promise<void> {
    const server = err.frame.task;
    if (!server) return this.#drop(m, err);
    this.#d.store.put(server);
    const local: TaskPatch = m.type === "task.update" ? { ...(m.task as TaskPatch) } : { completed: m.completed };
    const c: Conflict = { local, server, mutation: { ...m } };
    let decision: ConflictResolution = "server";
    try {
      decision = await this.#d.onConflict(c);
    } catch {
      decision = "server";
    }
    if (!this.#list.includes(m)) return;
    c.at = new Date().toISOString();
    if (decision === "server") {
      c.resolution = "server";
      this.#d.onConflictReported(c);
      this.#remove(m);
      this.#settle(m, err);
      return;
    }
    c.resolution = decision === "local" ? "local" : "merged";
    this.#d.onConflictReported(c);
    // Resent over the server's version; a new mutation_id, since the request differs from the refused one.
    const waiter = this.#waiters.get(m.mutation_id);
    this.#waiters.delete(m.mutation_id);
    m.mutation_id = newMutationId();
    if (waiter) this.#waiters.set(m.mutation_id, waiter);
    m.base_version = server.version;
    if (decision !== "local") m.task = decision;
    this.#changed();
  }

  #drop(m: PendingMutation, err: RequestError): void {
    const dropped = [m];
    // Changes of a task whose create was refused can never be sent.
    if (m.type === "task.create") dropped.push(...this.#list.filter((x) => x.task_id === m.temp_id));
    for (const x of dropped) {
      this.#remove(x);
      this.#d.onRejected({ mutation: x, code: err.code, message: err.message, fields: err.frame.fields, at: new Date().toISOString() });
      this.#settle(x, err);
    }
  }

  #remove(m: PendingMutation): void {
    this.#list = this.#list.filter((x) => x !== m);
    this.#retryAt.delete(m.mutation_id);
    this.#changed();
  }

  #settle(m: PendingMutation, err: Error | null, task?: Task): void {
    const w = this.#waiters.get(m.mutation_id);
    if (!w) return;
    this.#waiters.delete(m.mutation_id);
    if (err) w.reject(err);
    else w.resolve(task);
  }

  #changed(): void {
    this.version++;
    this.#d.onChange();
  }
}

function frameOf(m: PendingMutation): ClientFrame {
  switch (m.type) {
    case "task.create":
      return { type: m.type, mutation_id: m.mutation_id, task: m.task as TaskFields };
    case "task.update": {
      const f: ClientFrame = { type: m.type, mutation_id: m.mutation_id, task_id: m.task_id!, task: m.task as TaskPatch };
      if (m.base_version !== undefined) f.base_version = m.base_version;
      return f;
    }
    case "task.complete":
      return { type: m.type, mutation_id: m.mutation_id, task_id: m.task_id!, completed: m.completed };
    case "task.delete": {
      const f: ClientFrame = { type: m.type, mutation_id: m.mutation_id, task_id: m.task_id! };
      if (m.series === "all") f.series = "all";
      return f;
    }
  }
}

/** A fresh idempotency key (crypto.randomUUID where it exists). */
export function newMutationId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `m-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

/** A task as the view shows it: the server's, with this client's pending changes applied. */
export type ViewTask = Task & { pending?: true };

/** The server's tasks with the pending changes applied over them, in outbox order. */
export function overlay(tasks: ReadonlyMap<number, Task>, pending: readonly PendingMutation[], userId: string): Map<number, ViewTask> {
  const view = new Map<number, ViewTask>(tasks);
  const claimed = new Set<number>();
  for (const m of pending) {
    if (m.type === "task.create") {
      const f = m.task as TaskFields;
      // The task this create made may already be here, from its event,
      // with the reply still on its way (events and replies travel
      // separately): show it once, as the placeholder, until the reply.
      const twin = m.after_id === undefined ? undefined : twinOf(tasks, f, m.after_id, claimed);
      if (twin !== undefined) {
        claimed.add(twin);
        view.delete(twin);
      }
      view.set(m.temp_id!, {
        id: m.temp_id!,
        user_id: userId,
        title: f.title,
        description: f.description ?? "",
        completed: f.completed ?? false,
        priority: f.priority ?? "medium",
        tags: f.tags ?? [],
        due_date: dueDate(f.due_at ?? f.due_date),
        due_at: dueDate(f.due_at ?? f.due_date),
        remind_at: dueDate(f.remind_at),
        recurrence: ruleText(f.recurrence),
        tz: f.tz || null,
        series_id: null,
        created_at: m.created_at,
        updated_at: m.created_at,
        version: 0,
        pending: true,
      });
      continue;
    }
    // A series delete hides the whole series, even once the named task's
    // own event has removed it.
    if (m.type === "task.delete" && m.series_id !== undefined) {
      for (const v of [...view.values()]) if (v.series_id === m.series_id) view.delete(v.id);
    }
    const t = view.get(m.task_id!);
    if (!t) continue;
    if (m.type === "task.delete") view.delete(t.id);
    else if (m.type === "task.complete") view.set(t.id, { ...t, completed: m.completed ?? !t.completed, pending: true });
    else {
      const p = m.task as TaskPatch;
      const next: ViewTask = { ...t, ...p, pending: true } as ViewTask;
      // due_at and due_date are one field under two names.
      if ("due_at" in p || "due_date" in p) next.due_date = next.due_at = dueDate("due_at" in p ? p.due_at : p.due_date);
      if ("remind_at" in p) next.remind_at = dueDate(p.remind_at);
      if ("recurrence" in p) next.recurrence = ruleText(p.recurrence);
      if ("tz" in p) next.tz = p.tz || null;
      view.set(t.id, next);
    }
  }
  return view;
}

/**
 * The id of a task newer than afterId whose fields are what the server makes
 * of create fields f (as tasks/input.go normalises them: text trimmed,
 * priority lower case, tags trimmed without repeats, defaults filled in),
 * not already claimed by another create; undefined
 * when there is none.
 */
function twinOf(tasks: ReadonlyMap<number, Task>, f: TaskFields, afterId: number, claimed: ReadonlySet<number>): number | undefined {
  const tags: string[] = [];
  const seen = new Set<string>();
  for (const raw of f.tags ?? []) {
    const tag = raw.trim(); // repeats dropped case-insensitively, the first spelling kept
    if (tag !== "" && seen.has(tag.toLowerCase())) continue;
    seen.add(tag.toLowerCase());
    tags.push(tag);
  }
  const priority = (f.priority ?? "medium").trim().toLowerCase();
  const due = dueDate(f.due_at ?? f.due_date);
  for (const t of tasks.values()) {
    if (t.id <= afterId || claimed.has(t.id)) continue;
    if (t.title !== f.title.trim() || t.description !== (f.description ?? "").trim()) continue;
    if (t.completed !== (f.completed ?? false) || t.priority !== priority) continue;
    if (t.tags.length !== tags.length || t.tags.some((x, i) => x !== tags[i])) continue;
    if ((t.due_date === null) !== (due === null) || (due !== null && Date.parse(t.due_date!) !== Date.parse(due))) continue;
    return t.id;
  }
  return undefined;
}

/** A rule as the server stores it: trimmed, without "RRULE:", upper case; "" is none. */
function ruleText(r: string | null | undefined): string | null {
  const s = (r ?? "").trim().replace(/^rrule:/i, "").trim().toUpperCase();
  return s === "" ? null : s;
}

/** A due date as the server stores it: YYYY-MM-DD means midnight UTC. */
function dueDate(d: string | null | undefined): string | null {
  if (!d) return null;
  return /^\d{4}-\d{2}-\d{2}$/.test(d) ? `${d}T00:00:00Z` : d;
}
