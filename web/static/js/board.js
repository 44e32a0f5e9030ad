// The task board: the create form, filters, search and sort over the synced
// set (the SDK keeps the whole set current, so they run here), and one row
// per task, keyed by id.
//
// Keyed updates: a change of the list touches the rows it changed only. The
// SDK hands out the same task object until the task changes, so a row whose
// task object, pending mark and conflict are the ones it shows is left alone;
// rows are inserted, moved and removed one by one, never redrawn as a list.
// Focus and open editors survive live changes for that reason too.

import { $, h, toast, parseTags } from './dom.js';
import {
  zone, dueOf, dueInputs, dueFields, localInput, fromLocalInput, formatDueOf, formatMoment, overdue, describeRule, REPEATS, repeatChoice,
  repeatRule, dayName, localDay,
} from './when.js';
import { checkTask, showProblems } from './limits.js';
import { HistoryPanel } from './history.js';

const PRIORITY_RANK = { high: 0, medium: 1, low: 2 };
const PRIORITY_LABEL = { high: 'High', medium: 'Medium', low: 'Low' };
const collator = new Intl.Collator(undefined, { sensitivity: 'base' });
const FILTER_KEY = 'tasksync.filters';
const DEFAULT_FILTER = { status: 'all', priority: '', tag: '', q: '', sort: 'created-desc' };
/** How long the Undo of a change made here is offered. */
const UNDO_MS = 6000;

/** A short, readable message for a refused change ({code, message, fields} or an error). */
export function describeError(err) {
  const fields = err?.fields ?? err?.frame?.fields;
  if (err?.code === 'invalid' && fields) {
    return Object.entries(fields).map(([k, v]) => `${k.replace('_', ' ')} ${v}`).join('; ');
  }
  if (err?.code === 'disconnected' || err?.name === 'DisconnectedError') return 'not connected to the server';
  return err?.message || 'something went wrong';
}

/** Settles nothing: a change's promise stays pending offline; outcomes arrive through client.rejected and onConflict. */
const ignore = () => {};

export class Board {
  /**
   * @param {object} o
   * @param {(path: string, init?: object) => Promise<any>} [o.api] REST under /api/{user_id} (the quick-add parser)
   */
  constructor({ api } = {}) {
    this.api = api;
    this.client = null;
    this.view = null;
    this.off = [];
    this.rows = new Map(); // task id → Row
    this.order = []; // ids of the rows on screen, in order
    this.conflicts = new Map(); // task id → {kind, patch, theirs}
    this.loaded = false;
    this.ready = false;
    this.status = 'connecting';
    this.filter = { ...DEFAULT_FILTER, ...loadFilter() };
    this.list = $('#tasks');
    this.historyPanel = new HistoryPanel(this);
    this.bindComposer();
    this.bindFilters();
    this.showFilter();
  }

  /** Shows client's tasks (a new session). */
  attach(client) {
    this.detach();
    this.client = client;
    this.view = client.tasks();
    let seen = client.rejected.get().length;
    this.off.push(this.view.subscribe(() => this.schedule()));
    this.off.push(client.rejected.subscribe((list) => {
      for (const r of list.slice(seen)) this.refused(r);
      seen = list.length;
    }));
    client.ready().then(() => {
      if (this.client !== client) return;
      this.loaded = true;
      this.render();
    });
    this.render();
  }

  detach() {
    for (const off of this.off.splice(0)) off();
    this.client = null;
    this.view = null;
    this.loaded = this.ready = false;
    this.conflicts.clear();
    for (const row of this.rows.values()) row.el.remove();
    this.rows.clear();
    this.order = [];
    this.render();
  }

  setConnection(status) {
    const was = this.status === 'live';
    this.status = status;
    // Offline, a title is saved as typed: the preview of what the parser read would be a promise not kept.
    if (status !== 'live') this.quick?.clear();
    else if (!was && this.quick) this.quick.typed($('#new-title').value, !checkTask({ title: $('#new-title').value.trim() }).title);
    // Pending rows say whether their change is on its way or waits for the network.
    if (was !== (status === 'live')) for (const row of this.rows.values()) if (row.pending) row.showSync();
  }

  /** Renders once per frame at most, however many changes came in it. */
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  // ------------------------------------------------------------ mutations
  //
  // Delete, complete and edit made here offer Undo for a few seconds: the
  // server's restore (POST .../restore, socket task.restore) puts a deleted
  // task back with its id, or an earlier version of a changed one back as
  // a new version; every device sees it as an ordinary change.

  create(fields) {
    this.view?.create(fields).catch(ignore);
  }

  update(task, patch, baseVersion) {
    const done = this.view?.update(task.id, patch, { baseVersion });
    done?.catch(ignore);
    if (done) this.offerUndo(`Edited “${patch.title ?? task.title}”`, task, done);
  }

  complete(task, completed) {
    // Completion is set, not toggled, and carries no base_version: it
    // touches one field whose intent is unambiguous, so a concurrent
    // edit of the title is no reason to refuse it.
    const done = this.view?.complete(task.id, completed);
    done?.catch(ignore);
    if (done) this.offerUndo(`${completed ? 'Completed' : 'Reopened'} “${task.title}”`, task, done);
  }

  /** Moves a task's reminder (snooze): an ordinary change of remind_at, no Undo offered. */
  snooze(id, remindAt) {
    this.view?.update(id, { remind_at: remindAt }).catch(ignore);
  }

  /** Deletes task; series 'all' deletes every occurrence of its repeating series (no Undo: restore brings back one task). */
  remove(task, { series } = {}) {
    const done = this.view?.delete(task.id, series === 'all' ? { series: 'all' } : undefined);
    done?.catch(ignore);
    if (done && series !== 'all') this.offerUndo(`Deleted “${task.title}”`, task, done, { deleted: true });
  }

  /**
   * The Undo toast of a change made here. Undo waits for the change to be
   * acknowledged (it may still be on its way), then restores: the deleted
   * task, or the version before the change (the acknowledged version minus
   * one: every change adds one).
   */
  offerUndo(text, task, done, { deleted = false } = {}) {
    if (task.id < 0) return; // a create not yet named: nothing on the server to restore
    const client = this.client;
    const el = toast(text, {
      timeout: UNDO_MS,
      action: ['Undo', async () => {
        try {
          const acked = await done;
          if (this.client !== client) return;
          await this.restore(task.id, deleted ? undefined : acked.version - 1);
          toast(`Undone: “${task.title}” is back as it was.`);
        } catch (err) {
          toast(`Could not undo: ${describeError(err)}`, { kind: 'error' });
        }
      }],
    });
    done.catch(() => el.remove()); // refused: there is nothing to undo (the refusal says so)
  }

  /** Restores a deleted task (no version), or a task's earlier version; resolves with the task. */
  async restore(id, version) {
    const c = this.client;
    if (!c) throw Object.assign(new Error('not connected to the server'), { code: 'disconnected' });
    if (typeof c.restore === 'function') return c.restore(id, version);
    const reply = await c.request({ type: 'task.restore', task_id: id, ...(version ? { version } : {}) });
    return reply.task;
  }

  /** Opens the history panel of task; focus returns to opener when it closes. */
  showHistory(task, opener) {
    this.historyPanel.open(task, opener);
  }

  /** A task's versions, newest first (the server's change log). */
  async history(id) {
    const c = this.client;
    if (!c) throw Object.assign(new Error('not connected to the server'), { code: 'disconnected' });
    const r = typeof c.history === 'function' ? await c.history(id) : await c.request({ type: 'task.history', task_id: id });
    return Array.isArray(r) ? r : r.versions;
  }

  /** The SDK's onConflict: the server's version is kept, the user decides on the row. */
  conflict(c) {
    const id = c.server.id;
    this.conflicts.set(id, { kind: 'update', patch: c.local, theirs: c.server });
    toast(`“${c.local.title || c.server.title}” was changed elsewhere first: your change was not applied.`, { kind: 'warn' });
    this.schedule();
    return 'server';
  }

  resolveConflict(id) {
    this.conflicts.delete(id);
    this.schedule();
  }

  /** A change the server refused for good: the view rolled back already; say so. */
  refused(r) {
    const m = r.mutation;
    const label = m.task?.title || this.rows.get(m.task_id)?.task.title || 'a task';
    if (r.code === 'not_found') {
      toast(`“${label}” no longer exists: it was deleted elsewhere.`, { kind: 'warn' });
    } else {
      toast(`Could not save “${label}”: ${describeError(r)}. The change was undone.`, { kind: 'error' });
    }
  }

  // ------------------------------------------------------------ composer

  bindComposer() {
    const form = $('#new-task');
    const more = $('#new-more');
    const details = $('#new-details');
    const openDetails = (open) => {
      details.hidden = !open;
      more.setAttribute('aria-expanded', String(open));
    };
    more.addEventListener('click', () => {
      const open = details.hidden;
      openDetails(open);
      if (open) $('#new-description').focus();
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && e.target.tagName === 'TEXTAREA') {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    const repeat = $('#new-repeat');
    const rrule = $('#new-rrule');
    fillRepeat(repeat, rrule, null);
    const inputs = { title: $('#new-title'), description: $('#new-description'), tags: $('#new-tags'), recurrence: rrule, due: $('#new-due') };
    const fields = () => ({
      title: inputs.title.value.trim(),
      description: inputs.description.value.trim(),
      tags: parseTags(inputs.tags.value),
    });
    // Over a limit is known while typing: say so at once, and stop saying
    // it once the text fits. The title is read by the server's parser as it
    // is typed (quick-add), and what it understood is shown under it.
    form.addEventListener('input', (e) => {
      const bad = checkTask(fields());
      showProblems($('#new-error'), inputs, bad);
      if (e.target === inputs.title) this.quick.typed(inputs.title.value, !bad.title);
    });
    this.quick = new QuickAdd(this);
    let busy = false;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (busy) return;
      const typed = fields();
      if (!typed.title) {
        inputs.title.focus();
        return;
      }
      const problems = (bad) => {
        if (!showProblems($('#new-error'), inputs, bad)) return false;
        const first = ['title', 'description', 'due', 'recurrence', 'tags'].map((k) => bad[k] && inputs[k]).find(Boolean);
        if (first !== inputs.title) openDetails(true);
        first.focus();
        return true;
      };
      if (problems(checkTask(typed))) return;
      // What the parser read in the title (quick-add) goes over the details.
      busy = true;
      let parsed;
      try {
        parsed = await this.quick.result(inputs.title.value);
      } finally {
        busy = false;
      }
      let task = { title: typed.title, priority: $('#new-priority').value };
      if (typed.description) task.description = typed.description;
      if (typed.tags.length) task.tags = typed.tags;
      Object.assign(task, dueFields($('#new-due').value, $('#new-due-time').value));
      const remind = fromLocalInput($('#new-remind').value);
      if (remind) task.remind_at = remind;
      const rule = repeatRule(repeat.value, rrule.value);
      if (rule) task.recurrence = rule;
      if (parsed) task = mergeParsed(task, parsed);
      if (task.recurrence) task.tz ??= zone();
      const bad = checkTask(task);
      if (!task.title) bad.title = 'What is the task? All of it was read as a date, repeat, priority or tags.';
      if (task.recurrence && !task.due_at && !task.due_date) bad.due = 'A repeating task needs a due date: the repeat counts from it.';
      if (repeat.value === 'custom' && !rule) bad.recurrence = 'Type a rule, e.g. FREQ=WEEKLY;BYDAY=MO.';
      if (problems(bad)) return;
      this.create(task);
      form.reset();
      fillRepeat(repeat, rrule, null);
      this.quick.clear();
      openDetails(false);
      inputs.title.focus();
    });
  }

  // ------------------------------------------------------------ filters

  bindFilters() {
    const set = (patch) => {
      Object.assign(this.filter, patch);
      saveFilter(this.filter);
      this.render();
    };
    for (const r of document.querySelectorAll('input[name="status"]')) {
      r.addEventListener('change', () => set({ status: r.value }));
    }
    $('#search').addEventListener('input', (e) => set({ q: e.target.value.trim().toLowerCase() }));
    $('#filter-priority').addEventListener('change', (e) => set({ priority: e.target.value }));
    $('#filter-tag').addEventListener('change', (e) => set({ tag: e.target.value }));
    $('#sort').addEventListener('change', (e) => set({ sort: e.target.value }));
    $('#clear-filters').addEventListener('click', () => this.clearFilters());
  }

  /** Puts the filter (restored from localStorage) into the controls. */
  showFilter() {
    const f = this.filter;
    const radio = document.querySelector(`input[name="status"][value="${CSS.escape(f.status)}"]`);
    if (radio) radio.checked = true;
    $('#search').value = f.q;
    $('#filter-priority').value = f.priority;
    if (f.tag && ![...$('#filter-tag').options].some((o) => o.value === f.tag)) $('#filter-tag').append(h('option', { value: f.tag }, f.tag));
    $('#filter-tag').value = f.tag;
    $('#sort').value = f.sort;
    if ($('#sort').value !== f.sort) $('#sort').value = f.sort = DEFAULT_FILTER.sort;
  }

  clearFilters() {
    this.filter = { ...this.filter, status: 'all', priority: '', tag: '', q: '' };
    saveFilter(this.filter);
    this.showFilter();
    this.render();
  }

  matches(t) {
    const f = this.filter;
    if (f.status === 'pending' && t.completed) return false;
    if (f.status === 'completed' && !t.completed) return false;
    if (f.priority && t.priority !== f.priority) return false;
    if (f.tag && !(t.tags || []).includes(f.tag)) return false;
    if (f.q) {
      const hay = `${t.title}\n${t.description}\n${(t.tags || []).join(' ')}`.toLowerCase();
      if (!hay.includes(f.q)) return false;
    }
    return true;
  }

  /** The sort order. ISO times compare as strings; ids break ties (pending creates, negative, last). */
  compare(a, b) {
    if (a.completed !== b.completed) return a.completed ? 1 : -1; // open tasks first
    const byCreated = () => cmp(b.created_at, a.created_at) || idKey(b) - idKey(a);
    const byDue = () => {
      const da = dueOf(a);
      const db = dueOf(b);
      if (!da !== !db) return da ? -1 : 1;
      return cmp(da, db);
    };
    const byPriority = () => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority];
    switch (this.filter.sort) {
      case 'created-asc': return -byCreated();
      case 'due': return byDue() || byPriority() || byCreated();
      case 'priority': return byPriority() || byDue() || byCreated();
      case 'title': return collator.compare(a.title, b.title) || byCreated();
      case 'updated': return cmp(b.updated_at, a.updated_at) || byCreated();
      default: return byCreated();
    }
  }

  // ------------------------------------------------------------ rendering

  /** All tasks as the SDK shows them (the server's with this device's pending changes over them). */
  tasks() {
    return this.view ? this.view.getSnapshot() : [];
  }

  render() {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    const tasks = this.tasks();
    const shown = [];
    let open = 0;
    const tags = new Set();
    for (const t of tasks) {
      if (!t.completed) open++;
      for (const tag of t.tags || []) tags.add(tag);
      if (this.matches(t)) shown.push(t);
    }
    shown.sort((a, b) => this.compare(a, b));
    const loaded = this.loaded || tasks.length > 0;
    const counts = loaded ? `${open} open · ${tasks.length - open} done` : '';
    if ($('#counts').textContent !== counts) $('#counts').textContent = counts;
    this.renderTagOptions([...tags].sort((a, b) => a.localeCompare(b)));

    // Rows that left.
    const keep = new Set();
    for (const t of shown) keep.add(t.id);
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    // Rows that came or changed: only those are touched.
    for (const t of shown) {
      let row = this.rows.get(t.id);
      if (!row) {
        row = new Row(this, t);
        this.rows.set(t.id, row);
        row.update(t, t.pending === true, this.conflicts.get(t.id));
        if (this.ready) row.flash();
      } else if (row.task !== t || row.pending !== (t.pending === true) || row.conflict !== this.conflicts.get(t.id)) {
        row.update(t, t.pending === true, this.conflicts.get(t.id));
      }
    }
    // Order: when it is what is on screen minus the rows that left, nothing
    // moves. Else the rows that keep their relative order (the longest
    // increasing run of their old positions) stay, and only the others are
    // moved or inserted, one by one: a task that changed place moves alone
    // (moving a row also blurs what is focused in it).
    const order = shown.map((t) => t.id);
    const before = this.order.filter((id) => keep.has(id));
    if (before.length !== order.length || before.some((id, i) => id !== order[i])) {
      const was = new Map(before.map((id, i) => [id, i]));
      const stay = steady(order.map((id) => was.get(id) ?? -1));
      let next = null;
      for (let i = order.length - 1; i >= 0; i--) {
        const el = this.rows.get(order[i]).el;
        if (!stay.has(i) || el.parentNode !== this.list) this.list.insertBefore(el, next);
        next = el;
      }
    }
    this.order = order;

    if (this.loaded) this.ready = true; // rows made from now on are news

    const empty = $('#empty');
    const filtered = tasks.length > 0 && shown.length === 0;
    empty.hidden = shown.length > 0 || !loaded && !this.loaded;
    $('#empty-text').textContent = filtered
      ? 'No task matches these filters.'
      : 'Nothing here yet. Add a task above, or ask the assistant to add one.';
    $('#clear-filters').hidden = !filtered;
  }

  renderTagOptions(tags) {
    const select = $('#filter-tag');
    const current = [...select.options].slice(1).map((o) => o.value);
    if (current.join('\n') === tags.join('\n')) return;
    const value = select.value;
    select.replaceChildren(h('option', { value: '' }, 'Any tag'), ...tags.map((t) => h('option', { value: t }, t)));
    if (value && !tags.includes(value)) {
      select.append(h('option', { value }, value));
    }
    select.value = value;
  }

  /** Moves focus somewhere sensible after a row went away. */
  focusAfter(el) {
    const next = el.nextElementSibling || el.previousElementSibling;
    (next?.querySelector('.task-check') || $('#new-title')).focus();
  }
}

/**
 * The indexes of positions whose old position (-1: new) is part of a longest
 * increasing run: the rows that can stay where they are.
 */
function steady(pos) {
  const tails = []; // tails[k]: index in pos of the smallest tail of a run of length k+1
  const prev = new Array(pos.length);
  for (let i = 0; i < pos.length; i++) {
    if (pos[i] < 0) continue;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pos[tails[mid]] < pos[i]) lo = mid + 1;
      else hi = mid;
    }
    prev[i] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = i;
  }
  const out = new Set();
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) out.add(i);
  return out;
}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function idKey(t) {
  return t.id < 0 ? 1e15 - t.id : t.id;
}

function loadFilter() {
  try {
    const f = JSON.parse(localStorage.getItem(FILTER_KEY) || '{}');
    const out = {};
    for (const k of Object.keys(DEFAULT_FILTER)) if (typeof f?.[k] === 'string') out[k] = f[k];
    return out;
  } catch {
    return {};
  }
}

function saveFilter(f) {
  try {
    localStorage.setItem(FILTER_KEY, JSON.stringify(f));
  } catch { /* private mode: the filter is for this page only */ }
}

// ------------------------------------------------------------ quick-add

/** How long typing must pause before the title is sent to the parser. */
const PARSE_DEBOUNCE_MS = 250;
/** How long Enter waits for the parser before saving the title as typed. */
const PARSE_WAIT_MS = 3000;

/**
 * The quick-add box: the title is sent to the server's parser
 * (POST /api/{user_id}/parse, with the browser's zone) as it is typed,
 * debounced, and what it understood is shown under the box; Enter saves the
 * task with those fields. There is one parser, on the server: while the
 * page is not connected, the title is saved as typed.
 */
class QuickAdd {
  constructor(board) {
    this.board = board;
    this.box = $('#new-understood');
    this.timer = 0;
    this.last = null; // {text, promise}: the newest parse asked for
  }

  canAsk() {
    return !!this.board.api && this.board.status === 'live';
  }

  /** The title changed; ok: it fits the limits (a title over them is not sent anywhere). */
  typed(raw, ok) {
    clearTimeout(this.timer);
    const text = raw.trim();
    if (!text || !ok || !this.canAsk()) {
      this.show(null);
      return;
    }
    this.timer = setTimeout(async () => {
      const r = await this.ask(text);
      if ($('#new-title').value.trim() === text) this.show(r);
    }, PARSE_DEBOUNCE_MS);
  }

  ask(text) {
    if (this.last?.text === text) return this.last.promise;
    const promise = this.board.api('/parse', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ text, tz: zone() }),
    }).catch(() => null); // not understood: saved as typed
    this.last = { text, promise };
    return promise;
  }

  /** The parse of the title being saved; null when there is none to be had (saved as typed). */
  async result(raw) {
    clearTimeout(this.timer);
    const text = raw.trim();
    if (!text || !this.canAsk()) return null;
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(() => resolve(null), PARSE_WAIT_MS); });
    const r = await Promise.race([this.ask(text), late]);
    clearTimeout(timer);
    return r;
  }

  clear() {
    clearTimeout(this.timer);
    this.last = null;
    this.show(null);
  }

  /** Chips of what was understood (due, reminder, repeat, priority, tags) and of the parts that were not. */
  show(r) {
    const box = this.box;
    const chips = [];
    if (r) {
      // Each chip names the words it was read from (understood[].text, as typed).
      const from = (field) => (r.understood || []).filter((u) => u.field === field).map((u) => `from “${u.text}”`).join('; ') || undefined;
      const chip = (field, key, value) => chips.push(h('li.chip-understood', { dataset: { field }, title: from(field === 'tag' ? 'tags' : field) }, h('span.chip-key', {}, key), ' ', value));
      if (r.due_at) chip('due_at', 'Due', r.all_day ? dayName(localDay(new Date(r.due_at))) : formatMoment(r.due_at));
      if (r.remind_at) chip('remind_at', 'Reminder', formatMoment(r.remind_at));
      if (r.recurrence) chip('recurrence', 'Repeats', describeRule(r.recurrence));
      if (r.priority) chip('priority', 'Priority', PRIORITY_LABEL[r.priority] || r.priority);
      for (const t of r.tags || []) chip('tag', 'Tag', `#${t}`);
      // Date-like words the parser could not read: not in the title, so say so.
      for (const u of r.unparsed || []) {
        chips.push(h('li.chip-understood.chip-unparsed', { dataset: { field: 'unparsed' } },
          h('span.chip-key', {}, 'Not understood, left out'), ' ', `“${u}”`));
      }
    }
    if (!chips.length) {
      if (!box.hidden) {
        box.hidden = true;
        box.replaceChildren();
      }
      return;
    }
    const title = r.title?.trim()
      ? h('span.understood-title', {}, 'Saves as “', h('strong', {}, r.title.trim()), '”')
      : h('span.understood-title.understood-missing', {}, 'No title left: add what the task is.');
    box.replaceChildren(title || '', h('ul.understood-chips', { 'aria-label': 'Understood from the title' }, ...chips));
    box.hidden = false;
  }
}

/**
 * The task to create: the details' fields with what the parser understood
 * over them (docs/openapi.yaml ParseResult: priority null = none said; a
 * day without a time is 00:00 of that day in tz).
 */
function mergeParsed(task, p) {
  const out = { ...task, title: typeof p.title === 'string' ? p.title.trim() : task.title };
  if (p.due_at) {
    out.due_at = p.due_at;
    delete out.due_date;
    out.tz = p.tz;
  }
  if (p.remind_at) out.remind_at = p.remind_at;
  if (p.recurrence) {
    out.recurrence = p.recurrence;
    out.tz = p.tz;
  }
  if (p.priority) out.priority = p.priority;
  if (p.tags?.length) out.tags = parseTags([...(task.tags || []), ...p.tags].join(','));
  return out;
}

/** Fills a repeat picker (and its custom rule field) for rule. */
function fillRepeat(select, custom, rule) {
  if (!select.options.length) select.append(...REPEATS.map(([v, label]) => h('option', { value: v }, label)));
  select.value = repeatChoice(rule);
  custom.value = select.value === 'custom' ? rule : '';
  const field = custom.closest('.field');
  field.hidden = select.value !== 'custom';
  select.onchange = () => {
    field.hidden = select.value !== 'custom';
    if (!field.hidden) custom.focus();
  };
}

let template = null;

/** The elements of a row, empty: Row clones it. */
function rowTemplate() {
  template ??= h('li.task', {},
    h('input.task-check', { type: 'checkbox' }),
    h('div.task-main', {},
      h('div.task-line', {}, h('span.task-title'), ' ', h('span.task-num')),
      h('p.task-desc'),
      h('div.task-meta', {}, h('span.badge.prio'), h('span.due'),
        h('span.meta-icon.remind', {}, h('span.icon.icon-remind', { role: 'img', 'aria-label': 'Reminder' }), h('span.meta-text')),
        h('span.meta-icon.repeat', {}, h('span.icon.icon-repeat', { role: 'img', 'aria-label': 'Repeats' }), h('span.meta-text')),
        h('ul.tags', { 'aria-label': 'Tags' }),
        h('span.sync-note', { 'aria-live': 'polite' }))),
    h('div.task-actions', {},
      h('button.btn.btn-icon.task-edit', { type: 'button' }, 'Edit'),
      h('button.btn.btn-icon.task-history', { type: 'button' }, 'History'),
      h('button.btn.btn-icon.task-delete', { type: 'button' }, 'Delete')),
    h('div.conflict', { role: 'alert', hidden: true }));
  return template;
}

/** One task's row: built once, updated in place. */
class Row {
  constructor(board, task) {
    this.board = board;
    this.task = task;
    this.editing = null; // {form, base, original}
    const id = String(task.id);
    // A copy of one row built once: cloning is several times cheaper than
    // building each element (thousands of rows on a first render).
    const el = rowTemplate().cloneNode(true);
    el.dataset.id = id;
    this.el = el;
    [this.check, this.main, this.actions, this.notice] = el.children;
    const [line, desc, meta] = this.main.children;
    [this.title, this.num] = line.children; // the number: what the assistant and the API call it ("complete task 12")
    this.desc = desc;
    [this.prio, this.due, this.remind, this.repeat, this.tags, this.sync] = meta.children;
    [this.editBtn, this.historyBtn, this.deleteBtn] = this.actions.children;
    this.check.id = `check-${id}`;
    this.check.addEventListener('change', () => {
      this.board.complete(this.task, this.check.checked);
    });
    this.editBtn.addEventListener('click', () => this.edit());
    this.historyBtn.addEventListener('click', () => this.board.showHistory(this.task, this.historyBtn));
    this.deleteBtn.addEventListener('click', () => {
      if (this.task.recurrence || this.task.series_id) {
        this.askSeries();
        return;
      }
      this.board.focusAfter(this.el);
      this.board.remove(this.task);
    });
  }

  /** Deleting an occurrence of a repeating task: this one, or the whole series. */
  askSeries() {
    const t = this.task;
    const dismiss = () => {
      this.notice.hidden = true;
      this.notice.replaceChildren();
      this.deleteBtn.focus();
    };
    const go = (series) => {
      this.notice.hidden = true;
      this.board.focusAfter(this.el);
      this.board.remove(t, { series });
    };
    const first = h('button.btn.btn-small.btn-danger', { type: 'button', onclick: () => go() }, 'This one');
    this.notice.replaceChildren(
      h('p.conflict-text', {}, `“${t.title}” repeats (${describeRule(t.recurrence) || 'a series'}). Delete this occurrence or the whole series?`),
      h('div.conflict-actions', {},
        first,
        h('button.btn.btn-small.btn-danger', { type: 'button', onclick: () => go('all') }, 'Whole series'),
        h('button.btn.btn-small.btn-ghost', { type: 'button', onclick: dismiss }, 'Keep it')));
    this.notice.hidden = false;
    first.focus();
  }

  /** Draws the eye to a change that came from elsewhere. */
  flash() {
    this.el.classList.remove('flash');
    void this.el.offsetWidth; // restart the animation
    this.el.classList.add('flash');
  }

  update(task, pending, conflict) {
    const prev = this.task;
    this.task = task;
    this.pending = pending;
    this.conflict = conflict;
    const el = this.el;
    const wasPending = el.classList.contains('is-pending');
    if (prev !== task && !pending && !wasPending && task.version > prev.version) this.flash();
    el.dataset.priority = task.priority;
    el.dataset.completed = String(task.completed);
    el.dataset.version = String(task.version);
    el.classList.toggle('is-pending', pending);
    el.classList.toggle('is-done', task.completed);
    const placeholder = task.id < 0; // a create the server has not named yet
    this.check.checked = task.completed;
    this.check.disabled = placeholder;
    this.check.setAttribute('aria-label', `${task.completed ? 'Reopen' : 'Complete'} “${task.title}”`);
    this.editBtn.disabled = this.deleteBtn.disabled = this.historyBtn.disabled = placeholder;
    this.editBtn.setAttribute('aria-label', `Edit “${task.title}”`);
    this.historyBtn.setAttribute('aria-label', `History of “${task.title}”`);
    this.deleteBtn.setAttribute('aria-label', `Delete “${task.title}”`);
    this.title.textContent = task.title;
    this.num.textContent = placeholder ? '' : `#${task.id}`;
    this.num.title = placeholder ? '' : `Task ${task.id}: the number the assistant knows it by`;
    this.desc.textContent = task.description || '';
    this.desc.hidden = !task.description;
    this.prio.textContent = PRIORITY_LABEL[task.priority] || task.priority;
    this.prio.dataset.priority = task.priority;
    const due = formatDueOf(task);
    this.due.hidden = !due;
    this.due.textContent = due ? `Due ${due}` : '';
    this.due.classList.toggle('overdue', overdue(task));
    this.due.title = dueOf(task) && new Date(dueOf(task)).toString();
    // Icons with a text for screen readers (role=img, aria-label) and the
    // time or rule next to them.
    const remindAt = task.remind_at ? formatMoment(task.remind_at) : '';
    this.remind.hidden = !remindAt;
    this.remind.lastChild.textContent = remindAt;
    const rule = task.recurrence ? describeRule(task.recurrence) : '';
    this.repeat.hidden = !rule;
    this.repeat.lastChild.textContent = rule;
    this.repeat.title = task.recurrence || '';
    const tags = task.tags || [];
    if (this.tags.dataset.value !== tags.join('\n')) {
      this.tags.dataset.value = tags.join('\n');
      this.tags.replaceChildren(...tags.map((t) => h('li.tag', {}, t)));
    }
    this.tags.hidden = tags.length === 0;
    this.showSync();

    if (this.editing && prev && prev.version !== task.version && typeof task.version === 'number' && task.version > this.editing.base) {
      this.editing.note.hidden = false;
    }
    this.renderConflict(conflict);
  }

  /** The pending note: saving while connected; kept on this device (and sent later) while not. */
  showSync() {
    const text = !this.pending ? '' : this.board.status === 'live' ? 'Saving…' : 'Not sent yet: saved on this device';
    if (this.sync.textContent !== text) this.sync.textContent = text;
  }

  renderConflict(c) {
    if (!c) {
      this.notice.hidden = true;
      this.notice.replaceChildren();
      return;
    }
    const theirs = this.task;
    const dismiss = () => this.board.resolveConflict(theirs.id);
    const text = c.kind === 'delete'
      ? `This task was changed elsewhere after you opened it (now “${theirs.title}”). Delete it anyway?`
      : `Someone else changed this task first. Theirs: “${theirs.title}”${theirs.completed ? ' (done)' : ''}. Your edit was not applied.`;
    const primary = c.kind === 'delete'
      ? h('button.btn.btn-small.btn-danger', { type: 'button', onclick: () => { dismiss(); this.board.remove(theirs, { force: true }); } }, 'Delete anyway')
      : h('button.btn.btn-small', { type: 'button', onclick: () => { dismiss(); this.board.update(theirs, c.patch, theirs.version); } }, 'Apply mine over theirs');
    this.notice.replaceChildren(
      h('p.conflict-text', {}, text),
      h('div.conflict-actions', {},
        primary,
        h('button.btn.btn-small.btn-ghost', { type: 'button', onclick: dismiss }, c.kind === 'delete' ? 'Keep it' : 'Keep theirs')));
    this.notice.hidden = false;
  }

  edit() {
    if (this.editing) return;
    const t = this.task;
    const uid = `edit-${t.id}`;
    const field = (label, input, cls = '') => h(`div.field${cls}`, {}, h('label', { for: input.id }, label), input);
    const problems = h('p.field-error', { id: `${uid}-error`, role: 'alert', hidden: true });
    const described = { 'aria-describedby': problems.id };
    const title = h('input', { id: `${uid}-title`, type: 'text', required: true, value: t.title, ...described });
    const desc = h('textarea', { id: `${uid}-desc`, rows: '2', ...described });
    desc.value = t.description || '';
    const prio = h('select', { id: `${uid}-prio` },
      ...['low', 'medium', 'high'].map((p) => h('option', { value: p, selected: p === t.priority }, PRIORITY_LABEL[p])));
    const was = dueInputs(t);
    const due = h('input', { id: `${uid}-due`, type: 'date', value: was.day, ...described });
    const clock = h('input', { id: `${uid}-time`, type: 'time', value: was.clock });
    const remind = h('input', { id: `${uid}-remind`, type: 'datetime-local', value: localInput(t.remind_at) });
    const repeat = h('select', { id: `${uid}-repeat` });
    const rrule = h('input', { id: `${uid}-rrule`, type: 'text', spellcheck: 'false', placeholder: 'FREQ=WEEKLY;BYDAY=MO,WE', ...described });
    const tags = h('input', { id: `${uid}-tags`, type: 'text', value: (t.tags || []).join(', '), placeholder: 'home, errands', ...described });
    const note = h('p.editor-note', { hidden: true }, 'This task changed elsewhere while you were editing. Saving will ask before overwriting.');
    const cancel = h('button.btn.btn-ghost', { type: 'button', onclick: () => this.closeEditor() }, 'Cancel');
    const form = h('form.editor', { 'aria-label': `Edit “${t.title}”`, autocomplete: 'off' },
      field('Title', title, '.field-wide'),
      field('Description', desc, '.field-wide'),
      field('Priority', prio),
      field('Due', due),
      field('Time', clock, '.field-time'),
      field('Remind me', remind),
      field('Repeat', repeat),
      field('Rule (RRULE)', rrule, '.field-grow'),
      field('Tags', tags, '.field-grow'),
      problems,
      note,
      h('div.editor-actions', {}, cancel, h('button.btn.btn-primary', { type: 'submit' }, 'Save')));
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.closeEditor();
      } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    fillRepeat(repeat, rrule, t.recurrence || null);
    const inputs = { title, description: desc, tags, due, recurrence: rrule };
    const typed = () => ({ title: title.value.trim(), description: desc.value.trim(), tags: parseTags(tags.value) });
    form.addEventListener('input', () => showProblems(problems, inputs, checkTask(typed())));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const patch = {};
      const o = this.editing.original;
      const nt = title.value.trim();
      if (!nt) { title.focus(); return; }
      const bad = showProblems(problems, inputs, checkTask(typed()));
      if (bad) { bad.focus(); return; }
      if (nt !== o.title) patch.title = nt;
      if (desc.value.trim() !== (o.description || '')) patch.description = desc.value.trim();
      if (prio.value !== o.priority) patch.priority = prio.value;
      if (due.value !== was.day || clock.value !== was.clock) {
        if (!due.value) {
          patch.due_date = null;
        } else {
          Object.assign(patch, dueFields(due.value, clock.value));
          if (patch.due_date) patch.tz = null; // a day again: no zone
        }
      }
      const nRemind = fromLocalInput(remind.value);
      if (remind.value !== localInput(o.remind_at)) patch.remind_at = nRemind;
      const rule = repeatRule(repeat.value, rrule.value);
      if ((rule || null) !== (o.recurrence || null)) patch.recurrence = rule;
      const wrong = {};
      if (rule && !due.value) wrong.due = 'A repeating task needs a due date: the repeat counts from it.';
      if (repeat.value === 'custom' && !rule) wrong.recurrence = 'Type a rule, e.g. FREQ=WEEKLY;BYDAY=MO.';
      if (showProblems(problems, inputs, wrong)) { (wrong.due ? due : rrule).focus(); return; }
      if (patch.recurrence && !patch.tz && !o.tz) patch.tz = zone();
      const nTags = parseTags(tags.value);
      if (nTags.join('\n') !== (o.tags || []).join('\n')) patch.tags = nTags;
      const base = this.editing.base;
      this.closeEditor();
      if (Object.keys(patch).length) this.board.update(this.task, patch, base);
    });
    this.editing = { form, base: t.version, original: t, note };
    this.el.classList.add('is-editing');
    this.main.hidden = this.actions.hidden = true;
    this.el.insertBefore(form, this.notice);
    title.focus();
    title.select();
  }

  closeEditor() {
    if (!this.editing) return;
    this.editing.form.remove();
    this.editing = null;
    this.el.classList.remove('is-editing');
    this.main.hidden = this.actions.hidden = false;
    this.editBtn.focus();
  }
}
