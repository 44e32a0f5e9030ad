// The user's tasks as the server last told them, kept in seq order.
//
// Change events are applied in seq order, each exactly once: an event at or
// below the last applied seq is ignored, one above last + 1 is a gap (the
// caller asks for the missing ones with sync). A snapshot arrives in pages;
// they are collected aside and replace the whole set only when the page with
// more:false is in, so the list never shows half a snapshot. Replies to this
// client's own mutations carry the task too and are applied at once (a task's
// version decides which copy is newer), so a confirmed change does not
// flicker back while its event is on the way; deleted ids are remembered so
// that a late copy cannot bring a task back. Only a task.created event of a
// later seq can (task.restore brings a deleted task back with its id).

import type { SnapshotFrame, Task, TaskCreatedFrame, TaskDeletedFrame, TaskUpdatedFrame } from "./protocol.gen.js";

/** A change event of docs/PROTOCOL.md. */
export type TaskEvent = TaskCreatedFrame | TaskUpdatedFrame | TaskDeletedFrame;

/** What applying a frame did. */
export type ApplyResult = "applied" | "duplicate" | "gap" | "collecting";

export class TaskStore {
  /** Tasks by id, as the server holds them. */
  readonly tasks = new Map<number, Task>();
  /** The last applied seq; -1 before the first snapshot. */
  seq = -1;
  /** Bumped on every change (views recompute when it moved). */
  version = 0;
  // Deleted ids and the seq of their delete (Infinity while only the
  // reply to this client's delete told it, before its event).
  readonly #deleted = new Map<number, number>();
  #incoming: { seq: number; page: number; tasks: Task[] } | null = null;
  readonly #listeners = new Set<() => void>();

  /** Restores a persisted state (seq and tasks). */
  load(seq: number, tasks: readonly Task[]): void {
    this.tasks.clear();
    for (const t of tasks) this.tasks.set(t.id, t);
    this.seq = seq;
    this.#changed();
  }

  /** Forgets everything (another user signed in). */
  reset(): void {
    this.tasks.clear();
    this.#deleted.clear();
    this.#incoming = null;
    this.seq = -1;
    this.#changed();
  }

  subscribe(cb: () => void): () => void {
    this.#listeners.add(cb);
    return () => {
      this.#listeners.delete(cb);
    };
  }

  /** Applies a change event in seq order. */
  applyEvent(f: TaskEvent): ApplyResult {
    // No event comes between the pages of a snapshot: one that does means the snapshot was abandoned.
    this.#incoming = null;
    if (f.seq <= this.seq) return "duplicate";
    if (this.seq < 0 || f.seq !== this.seq + 1) return "gap";
    this.seq = f.seq;
    if (f.type === "task.deleted") this.#remove(f.task_id, f.seq);
    else {
      // In seq order an event is the truth: a created after a delete is
      // the task restored.
      if (f.type === "task.created") this.#deleted.delete(f.task.id);
      this.#put(f.task);
    }
    this.#changed();
    return "applied";
  }

  /** Collects a snapshot page; the last one (more:false) replaces the whole set. */
  applySnapshot(f: SnapshotFrame): ApplyResult {
    const page = f.page ?? 0;
    if (page === 0) {
      this.#incoming = { seq: f.seq, page: 0, tasks: [] };
    } else if (!this.#incoming || page !== this.#incoming.page + 1 || f.seq !== this.#incoming.seq) {
      // A page of a snapshot whose start was not seen: ask again at its end.
      this.#incoming = null;
      return f.more ? "collecting" : "gap";
    }
    const snap = this.#incoming;
    snap.page = page;
    for (const t of f.tasks ?? []) snap.tasks.push(t);
    if (f.more) return "collecting";
    this.#incoming = null;
    this.tasks.clear();
    // A task deleted after the snapshot's seq (or by this client, its event not yet seen) stays gone.
    for (const t of snap.tasks) if ((this.#deleted.get(t.id) ?? -1) <= snap.seq) this.tasks.set(t.id, t);
    this.seq = snap.seq;
    this.#changed();
    return "applied";
  }

  /** Whether a snapshot is being collected. */
  get collecting(): boolean {
    return this.#incoming !== null;
  }

  /** Forgets a snapshot a closed socket will not finish. */
  dropPartial(): void {
    this.#incoming = null;
  }

  /** Applies a task from a reply (or a version_mismatch error): kept when newer than what is known. */
  put(task: Task): void {
    if (this.#put(task)) this.#changed();
  }

  /** A delete this client made was confirmed. */
  remove(id: number): void {
    if (this.#remove(id)) this.#changed();
  }

  /** Removes several tasks in one change (views never see some of them gone and not the rest). */
  removeMany(ids: Iterable<number>): void {
    let changed = false;
    for (const id of ids) changed = this.#remove(id) || changed;
    if (changed) this.#changed();
  }

  #put(task: Task): boolean {
    if (this.#deleted.has(task.id)) return false;
    const cur = this.tasks.get(task.id);
    if (cur && cur.version > task.version) return false;
    if (cur === task) return false;
    this.tasks.set(task.id, task);
    return true;
  }

  #remove(id: number, seq = Infinity): boolean {
    if (seq !== Infinity || !this.#deleted.has(id)) this.#deleted.set(id, seq);
    return this.tasks.delete(id);
  }

  #changed(): void {
    this.version++;
    for (const cb of [...this.#listeners]) cb();
  }
}
