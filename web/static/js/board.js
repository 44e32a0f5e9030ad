// The task board: the create form, filters, search and sort over the synced
// set (the SDK keeps the whole set current, so they run here), and one row
// per task, keyed by id.
//
// Keyed updates: a change of the list touches the rows it changed only. The
// SDK hands out the same task object until the task changes, so a row whose
// task object, pending mark and conflict are the ones it shows is left alone;
// rows are inserted, moved and removed one by one, never redrawn as a list.
// Focus and open editors survive live changes for that reason too.

import { $, h, toast, formatDue, dueDay, today, parseTags } from './dom.js';
import { checkTask, showProblems } from './limits.js';

const PRIORITY_RANK = { high: 0, medium: 1, low: 2 };
const PRIORITY_LABEL = { high: 'High', medium: 'Medium', low: 'Low' };
const collator = new Intl.Collator(undefined, { sensitivity: 'base' });
const FILTER_KEY = 'tasksync.filters';
const DEFAULT_FILTER = { status: 'all', priority: '', tag: '', q: '', sort: 'created-desc' };

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
  constructor() {
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

  create(fields) {
    this.view?.create(fields).catch(ignore);
  }

  update(task, patch, baseVersion) {
    this.view?.update(task.id, patch, { baseVersion }).catch(ignore);
  }

  complete(task, completed) {
    // Completion is set, not toggled, and carries no base_version: it
    // touches one field whose intent is unambiguous, so a concurrent
    // edit of the title is no reason to refuse it.
    this.view?.complete(task.id, completed).catch(ignore);
  }

  remove(task) {
    this.view?.delete(task.id).catch(ignore);
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
    more.addEventListener('click', () => {
      const open = details.hidden;
      details.hidden = !open;
      more.setAttribute('aria-expanded', String(open));
      if (open) $('#new-description').focus();
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && e.target.tagName === 'TEXTAREA') {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    const inputs = { title: $('#new-title'), description: $('#new-description'), tags: $('#new-tags') };
    const fields = () => ({
      title: inputs.title.value.trim(),
      description: inputs.description.value.trim(),
      tags: parseTags(inputs.tags.value),
    });
    // Over a limit is known while typing: say so at once, and stop saying
    // it once the text fits.
    form.addEventListener('input', () => showProblems($('#new-error'), inputs, checkTask(fields())));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const typed = fields();
      if (!typed.title) {
        inputs.title.focus();
        return;
      }
      const bad = showProblems($('#new-error'), inputs, checkTask(typed));
      if (bad) {
        if (bad !== inputs.title) {
          details.hidden = false;
          more.setAttribute('aria-expanded', 'true');
        }
        bad.focus();
        return;
      }
      const task = { title: typed.title };
      if (typed.description) task.description = typed.description;
      task.priority = $('#new-priority').value;
      if (typed.tags.length) task.tags = typed.tags;
      const due = $('#new-due').value;
      if (due) task.due_date = due;
      this.create(task);
      form.reset();
      details.hidden = true;
      more.setAttribute('aria-expanded', 'false');
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
      if (!a.due_date !== !b.due_date) return a.due_date ? -1 : 1;
      return cmp(a.due_date || '', b.due_date || '');
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

let template = null;

/** The elements of a row, empty: Row clones it. */
function rowTemplate() {
  template ??= h('li.task', {},
    h('input.task-check', { type: 'checkbox' }),
    h('div.task-main', {},
      h('div.task-line', {}, h('span.task-title'), ' ', h('span.task-num')),
      h('p.task-desc'),
      h('div.task-meta', {}, h('span.badge.prio'), h('span.due'), h('ul.tags', { 'aria-label': 'Tags' }),
        h('span.sync-note', { 'aria-live': 'polite' }))),
    h('div.task-actions', {},
      h('button.btn.btn-icon.task-edit', { type: 'button' }, 'Edit'),
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
    [this.prio, this.due, this.tags, this.sync] = meta.children;
    [this.editBtn, this.deleteBtn] = this.actions.children;
    this.check.id = `check-${id}`;
    this.check.addEventListener('change', () => {
      this.board.complete(this.task, this.check.checked);
    });
    this.editBtn.addEventListener('click', () => this.edit());
    this.deleteBtn.addEventListener('click', () => {
      this.board.focusAfter(this.el);
      this.board.remove(this.task);
    });
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
    this.editBtn.disabled = this.deleteBtn.disabled = placeholder;
    this.editBtn.setAttribute('aria-label', `Edit “${task.title}”`);
    this.deleteBtn.setAttribute('aria-label', `Delete “${task.title}”`);
    this.title.textContent = task.title;
    this.num.textContent = placeholder ? '' : `#${task.id}`;
    this.num.title = placeholder ? '' : `Task ${task.id}: the number the assistant knows it by`;
    this.desc.textContent = task.description || '';
    this.desc.hidden = !task.description;
    this.prio.textContent = PRIORITY_LABEL[task.priority] || task.priority;
    this.prio.dataset.priority = task.priority;
    const due = dueDay(task.due_date);
    this.due.hidden = !due;
    this.due.textContent = due ? `Due ${formatDue(task.due_date)}` : '';
    this.due.classList.toggle('overdue', !!due && !task.completed && due < today());
    this.due.title = due;
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
    const due = h('input', { id: `${uid}-due`, type: 'date', value: dueDay(t.due_date) });
    const tags = h('input', { id: `${uid}-tags`, type: 'text', value: (t.tags || []).join(', '), placeholder: 'home, errands', ...described });
    const note = h('p.editor-note', { hidden: true }, 'This task changed elsewhere while you were editing. Saving will ask before overwriting.');
    const cancel = h('button.btn.btn-ghost', { type: 'button', onclick: () => this.closeEditor() }, 'Cancel');
    const form = h('form.editor', { 'aria-label': `Edit “${t.title}”`, autocomplete: 'off' },
      field('Title', title, '.field-wide'),
      field('Description', desc, '.field-wide'),
      field('Priority', prio),
      field('Due', due),
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
    const inputs = { title, description: desc, tags };
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
      if (due.value !== dueDay(o.due_date)) patch.due_date = due.value || null;
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
