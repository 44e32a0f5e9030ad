// A live, filtered and ordered view of the user's tasks, with the local
// changes not yet acknowledged applied (tasks carry pending: true).
// Filters follow GET /api/{user_id}/tasks, applied on the client.

import type { Task, TaskFields, TaskFilter, TaskPatch } from "./protocol.gen.js";
import type { ViewTask } from "./outbox.js";

/** What a TaskView needs from the client. */
/** Options of TaskView.update. */
export interface UpdateOptions {
  /** The task version the change was made on (default: the version known now). */
  baseVersion?: number;
}

export interface TaskSource {
  /** The whole view (server state plus pending changes); the same Map until something changed. */
  all(): ReadonlyMap<number, ViewTask>;
  subscribe(cb: () => void): () => void;
  create(fields: TaskFields): Promise<Task>;
  update(id: number, patch: TaskPatch, opts?: UpdateOptions): Promise<Task>;
  complete(id: number, completed?: boolean): Promise<Task>;
  delete(id: number, opts?: DeleteOptions): Promise<void>;
}

/** Options of TaskView.delete. */
export interface DeleteOptions {
  /**
   * For an occurrence of a recurring task: "this" (the default) deletes this one (when it is not
   * completed, the server creates the next occurrence), "all" deletes every task of its series.
   */
  series?: "this" | "all";
}

/**
 * A live list of tasks. getSnapshot() returns the same array until the list
 * changes (fit for React's useSyncExternalStore); subscribe(cb) calls cb on
 * every change. Changes made through it are optimistic: they show at once
 * (pending: true) and are sent through the durable outbox; their promise
 * settles when the server acknowledges or refuses them (it stays pending
 * while offline).
 */
export class TaskView {
  readonly filter: TaskFilter;
  readonly #src: TaskSource;
  #from: ReadonlyMap<number, ViewTask> | null = null;
  #snapshot: readonly ViewTask[] = [];

  constructor(src: TaskSource, filter: TaskFilter = {}) {
    this.#src = src;
    this.filter = filter;
  }

  /** The tasks that match the filter, in its order. */
  getSnapshot = (): readonly ViewTask[] => {
    const all = this.#src.all();
    if (all === this.#from) return this.#snapshot;
    this.#from = all;
    const next = select(all.values(), this.filter);
    if (next.length !== this.#snapshot.length || next.some((t, i) => t !== this.#snapshot[i])) this.#snapshot = next;
    return this.#snapshot;
  };

  /** Calls cb after every change of the list; returns the unsubscribe function. */
  subscribe = (cb: () => void): (() => void) => {
    let last = this.getSnapshot();
    return this.#src.subscribe(() => {
      const next = this.getSnapshot();
      if (next !== last) {
        last = next;
        cb();
      }
    });
  };

  /** Creates a task; it shows at once with a negative temporary id; resolves with the server's task. */
  create(fields: TaskFields): Promise<Task> {
    return this.#src.create(fields);
  }

  /**
   * Changes some fields (sent with base_version: a concurrent change elsewhere is a conflict).
   * base_version is the version shown now, unless opts.baseVersion names the one the user started
   * from (an editor opened before a change came in: saving it should be a conflict, not an overwrite).
   */
  update(id: number, patch: TaskPatch, opts?: UpdateOptions): Promise<Task> {
    return this.#src.update(id, patch, opts);
  }

  /** Sets completion; toggles the shown value when completed is omitted. */
  complete(id: number, completed?: boolean): Promise<Task> {
    return this.#src.complete(id, completed);
  }

  /** Deletes a task, or with { series: "all" } every task of its recurring series. */
  delete(id: number, opts?: DeleteOptions): Promise<void> {
    return this.#src.delete(id, opts);
  }
}

const PRIORITY_RANK: Record<string, number> = { low: 0, medium: 1, high: 2 };

function list(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : String(v).split(",")).map((s) => s.trim().toLowerCase()).filter(Boolean);
}

/** The tasks that match filter, ordered as the REST list would order them. */
export function select(tasks: Iterable<ViewTask>, filter: TaskFilter): ViewTask[] {
  const priorities = list(filter.priority as string | string[] | undefined);
  const tags = list(filter.tag as string | string[] | undefined);
  const q = typeof filter.q === "string" ? filter.q.trim().toLowerCase() : "";
  const before = filter.due_before ? Date.parse(String(filter.due_before)) : NaN;
  const after = filter.due_after ? Date.parse(String(filter.due_after)) : NaN;
  const out: ViewTask[] = [];
  for (const t of tasks) {
    if (filter.status === "pending" && t.completed) continue;
    if (filter.status === "completed" && !t.completed) continue;
    if (priorities.length && !priorities.includes(t.priority)) continue;
    if (tags.length) {
      const have = new Set(t.tags.map((x) => x.toLowerCase()));
      if (!tags.every((x) => have.has(x))) continue;
    }
    if (q && !`${t.title}\n${t.description}`.toLowerCase().includes(q)) continue;
    const due = t.due_date ? Date.parse(t.due_date) : NaN;
    if (!Number.isNaN(before) && !(due < before)) continue;
    if (!Number.isNaN(after) && !(due > after)) continue;
    out.push(t);
  }
  const sort = filter.sort ?? "created";
  const dir = filter.order === "desc" ? -1 : 1;
  const key = (t: ViewTask): string | number => {
    switch (sort) {
      case "updated": return t.updated_at;
      case "title": return t.title.toLowerCase();
      case "due_date": return t.due_date ? Date.parse(t.due_date) : Infinity;
      case "priority": return PRIORITY_RANK[t.priority] ?? 1;
      default: return t.created_at;
    }
  };
  // Pending creates (negative ids) sort after the tasks of the same key.
  const idKey = (t: ViewTask) => (t.id < 0 ? 1e15 - t.id : t.id);
  out.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka < kb) return -dir;
    if (ka > kb) return dir;
    return (idKey(a) - idKey(b)) * dir;
  });
  if (typeof filter.limit === "number" && filter.limit > 0) out.length = Math.min(out.length, filter.limit);
  return out;
}
