// The task set of the signed-in user, as the server last told it, plus the
// changes this page made that the server has not confirmed yet.
//
// The server's state comes from change events applied in seq order, and
// from snapshots that replace it. A snapshot arrives in pages (page 0, 1,
// ... until more:false): the pages are collected aside and replace the
// state only once the last one is in, so that the view never shows part of
// a snapshot; an unfinished snapshot is dropped when a new page 0 (or an
// event, or a new socket) shows that it will not be finished. Replies to this page's own mutations
// carry the task too and are applied at once (so that a confirmed change
// never flickers back while its event is on its way); a task version
// decides which of two copies is newer, and deleted ids are remembered so
// that a late event cannot bring a task back.
//
// Pending changes (ops) are applied over the server's state to make the
// view; a refused change is simply dropped, which rolls the view back.

import { randomId } from './dom.js';

export class TaskStore {
  constructor() {
    this.reset();
    this.listeners = new Set();
  }

  reset() {
    this.server = new Map(); // id → task
    this.deleted = new Set(); // ids known to be deleted (ids are never reused)
    this.seq = -1; // last applied seq; -1: nothing yet (connect asks for a snapshot)
    this.ops = []; // pending optimistic changes, oldest first
    this.conflicts = new Map(); // task id → {kind, patch?, theirs}
    this.tmp = 0;
    this.loaded = false;
    this.incoming = null; // the snapshot being collected: {seq, page, tasks}
    this.emit?.();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit() {
    for (const fn of this.listeners ?? []) fn();
  }

  /**
   * Applies a change event or a snapshot page. Returns 'gap' when an event
   * is not the next one, or a snapshot page is not the one expected (the
   * caller resyncs), else true when it was applied (or collected), false
   * when it was already applied.
   */
  applyFrame(f) {
    if (f.type === 'snapshot') return this.snapshotPage(f);
    // No event comes between the pages of a snapshot: one that does means
    // the snapshot was abandoned (a new socket, a new sync).
    this.incoming = null;
    if (typeof f.seq !== 'number' || f.seq <= this.seq) return false; // already applied
    if (this.seq >= 0 && f.seq !== this.seq + 1) return 'gap';
    this.seq = f.seq;
    switch (f.type) {
      case 'task.created':
        this.linkCreate(f.task);
        this.put(f.task);
        break;
      case 'task.updated':
        this.put(f.task);
        break;
      case 'task.deleted':
        this.remove(f.task_id);
        break;
    }
    this.emit();
    return true;
  }

  /** Collects one page of a snapshot; the last one (more:false) replaces the state. */
  snapshotPage(f) {
    const page = f.page ?? 0; // a server without pages sends one frame without page or more
    if (page === 0) {
      this.incoming = { seq: f.seq, page: 0, tasks: [] };
    } else if (!this.incoming || page !== this.incoming.page + 1 || f.seq !== this.incoming.seq) {
      // A page of a snapshot whose start was not seen (a conforming server
      // never sends one): ask again once, at its end.
      this.incoming = null;
      return f.more ? false : 'gap';
    }
    const snap = this.incoming;
    snap.page = page;
    for (const t of f.tasks || []) snap.tasks.push(t);
    if (f.more) return true;
    this.incoming = null;
    this.server = new Map(snap.tasks.map((t) => [t.id, t]));
    for (const id of this.deleted) this.server.delete(id);
    this.seq = snap.seq;
    this.loaded = true;
    this.emit();
    return true;
  }

  /** Forgets a snapshot that a closed socket will never finish. */
  dropPartial() {
    this.incoming = null;
  }

  put(task) {
    if (this.deleted.has(task.id)) return;
    const cur = this.server.get(task.id);
    if (!cur || task.version >= cur.version) this.server.set(task.id, task);
  }

  remove(id) {
    this.deleted.add(id);
    this.server.delete(id);
    this.conflicts.delete(id);
  }

  /** A created event for one of our pending creates replaces its placeholder at once. */
  linkCreate(task) {
    const op = this.ops.find((o) => o.kind === 'create' && !o.realId && o.fields.title === task.title);
    if (op) op.realId = task.id;
  }

  /** The tasks to show: the server's, with pending changes applied. */
  view() {
    const tasks = new Map();
    const pending = new Set();
    for (const [id, t] of this.server) tasks.set(id, t);
    for (const op of this.ops) {
      switch (op.kind) {
        case 'create':
          if (op.realId && tasks.has(op.realId)) break;
          tasks.set(op.tmpId, op.placeholder);
          pending.add(op.tmpId);
          break;
        case 'update': {
          const t = tasks.get(op.id);
          if (t) { tasks.set(op.id, { ...t, ...op.shown }); pending.add(op.id); }
          break;
        }
        case 'complete': {
          const t = tasks.get(op.id);
          if (t) { tasks.set(op.id, { ...t, completed: op.completed }); pending.add(op.id); }
          break;
        }
        case 'delete':
          tasks.delete(op.id);
          break;
      }
    }
    return { tasks: [...tasks.values()], pending };
  }

  get(id) {
    return this.view().tasks.find((t) => t.id === id);
  }

  /** Starts an optimistic change; returns the op (its frame goes to the server). */
  begin(op) {
    op.mutationId = randomId(op.kind);
    if (op.kind === 'create') {
      op.tmpId = `tmp-${++this.tmp}`;
      const now = new Date().toISOString();
      op.placeholder = {
        id: op.tmpId, title: op.fields.title, description: op.fields.description || '', completed: false,
        priority: op.fields.priority || 'medium', tags: op.fields.tags || [],
        due_date: op.fields.due_date ? op.fields.due_date + 'T00:00:00.000000Z' : null,
        created_at: now, updated_at: now, version: 0,
      };
    }
    if (op.kind === 'update') {
      op.shown = { ...op.patch };
      if ('due_date' in op.patch && op.patch.due_date) op.shown.due_date = op.patch.due_date + 'T00:00:00.000000Z';
    }
    this.ops.push(op);
    this.emit();
    return op;
  }

  /** The server accepted op: keep its result, drop the op. */
  confirm(op, reply) {
    this.ops = this.ops.filter((o) => o !== op);
    if (reply.op === 'deleted') this.remove(reply.task_id ?? op.id);
    else if (reply.task) this.put(reply.task);
    this.emit();
  }

  /** The server refused op: drop it (the view rolls back). */
  rollback(op, err) {
    this.ops = this.ops.filter((o) => o !== op);
    if (err?.code === 'not_found' && op.id !== undefined) this.remove(op.id);
    if (err?.code === 'version_mismatch' && err.frame?.task) {
      this.put(err.frame.task);
      this.conflicts.set(op.id, { kind: op.kind, patch: op.patch, theirs: err.frame.task });
    }
    this.emit();
  }

  resolveConflict(id) {
    this.conflicts.delete(id);
    this.emit();
  }

  /** Every tag in use, sorted. */
  tags() {
    const all = new Set();
    for (const t of this.view().tasks) for (const tag of t.tags || []) all.add(tag);
    return [...all].sort((a, b) => a.localeCompare(b));
  }
}
