// The task board: the create form, filters, search and sort over the synced
// set (the socket keeps the whole set current, so they run here), and one
// row per task, updated in place so that focus and open editors survive
// live changes.

import { $, h, toast, formatDue, dueDay, today, parseTags } from './dom.js';
import { checkTask, showProblems } from './limits.js';

const PRIORITY_RANK = { high: 0, medium: 1, low: 2 };
const PRIORITY_LABEL = { high: 'High', medium: 'Medium', low: 'Low' };

/** A short, readable message for a refused change. */
export function describeError(err) {
  const f = err?.frame;
  if (err?.code === 'invalid' && f?.fields) {
    return Object.entries(f.fields).map(([k, v]) => `${k.replace('_', ' ')} ${v}`).join('; ');
  }
  if (err?.code === 'disconnected') return 'not connected to the server';
  return err?.message || 'something went wrong';
}

export class Board {
  constructor({ store, conn }) {
    this.store = store;
    this.conn = conn;
    this.rows = new Map(); // task id → row
    this.filter = { status: 'all', priority: '', tag: '', q: '', sort: 'created-desc' };
    this.list = $('#tasks');
    this.bindComposer();
    this.bindFilters();
    store.subscribe(() => this.render());
    this.render();
  }

  // ------------------------------------------------------------ mutations

  /** Applies op optimistically, sends its frame, confirms or rolls back. */
  async mutate(op, frame, label) {
    this.store.begin(op);
    try {
      const reply = await this.conn.request({ ...frame, mutation_id: op.mutationId }, { resend: true });
      this.store.confirm(op, reply);
      return reply;
    } catch (err) {
      this.store.rollback(op, err);
      // Mutations wait through reconnects; they fail as disconnected only
      // when the session ends (sign-out), which needs no message per change.
      if (err?.code === 'disconnected') return null;
      if (err?.code === 'version_mismatch') {
        toast(`“${label}” was changed elsewhere first: your change was not applied.`, { kind: 'warn' });
      } else if (err?.code === 'not_found') {
        toast(`“${label}” no longer exists: it was deleted elsewhere.`, { kind: 'warn' });
      } else {
        toast(`Could not save “${label}”: ${describeError(err)}. The change was undone.`, { kind: 'error' });
      }
      return null;
    }
  }

  create(fields) {
    return this.mutate({ kind: 'create', fields }, { type: 'task.create', task: fields }, fields.title);
  }

  update(task, patch, baseVersion) {
    return this.mutate({ kind: 'update', id: task.id, patch },
      { type: 'task.update', task_id: task.id, base_version: baseVersion, task: patch }, patch.title || task.title);
  }

  complete(task, completed) {
    // Completion is set, not toggled, and carries no base_version: it
    // touches one field whose intent is unambiguous, so a concurrent
    // edit of the title is no reason to refuse it.
    return this.mutate({ kind: 'complete', id: task.id, completed },
      { type: 'task.complete', task_id: task.id, completed }, task.title);
  }

  remove(task, { force = false } = {}) {
    const frame = { type: 'task.delete', task_id: task.id };
    if (!force) frame.base_version = task.version;
    return this.mutate({ kind: 'delete', id: task.id }, frame, task.title);
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
    for (const r of document.querySelectorAll('input[name="status"]')) {
      r.addEventListener('change', () => { this.filter.status = r.value; this.render(); });
    }
    $('#search').addEventListener('input', (e) => { this.filter.q = e.target.value.trim().toLowerCase(); this.render(); });
    $('#filter-priority').addEventListener('change', (e) => { this.filter.priority = e.target.value; this.render(); });
    $('#filter-tag').addEventListener('change', (e) => { this.filter.tag = e.target.value; this.render(); });
    $('#sort').addEventListener('change', (e) => { this.filter.sort = e.target.value; this.render(); });
    $('#clear-filters').addEventListener('click', () => this.clearFilters());
  }

  clearFilters() {
    this.filter = { ...this.filter, status: 'all', priority: '', tag: '', q: '' };
    document.querySelector('input[name="status"][value="all"]').checked = true;
    $('#search').value = '';
    $('#filter-priority').value = '';
    $('#filter-tag').value = '';
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

  compare(a, b) {
    if (a.completed !== b.completed) return a.completed ? 1 : -1; // open tasks first
    const byCreated = () => (b.created_at.localeCompare(a.created_at)) || String(b.id).localeCompare(String(a.id));
    const byDue = () => {
      if (!a.due_date !== !b.due_date) return a.due_date ? -1 : 1;
      return (a.due_date || '').localeCompare(b.due_date || '');
    };
    const byPriority = () => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority];
    switch (this.filter.sort) {
      case 'created-asc': return -byCreated();
      case 'due': return byDue() || byPriority() || byCreated();
      case 'priority': return byPriority() || byDue() || byCreated();
      case 'title': return a.title.localeCompare(b.title, undefined, { sensitivity: 'base' }) || byCreated();
      case 'updated': return b.updated_at.localeCompare(a.updated_at) || byCreated();
      default: return byCreated();
    }
  }

  // ------------------------------------------------------------ rendering

  render() {
    const { tasks, pending } = this.store.view();
    const open = tasks.filter((t) => !t.completed).length;
    const done = tasks.length - open;
    $('#counts').textContent = this.store.loaded || tasks.length
      ? `${open} open · ${done} done` : '';
    this.renderTagOptions();

    const shown = tasks.filter((t) => this.matches(t)).sort((a, b) => this.compare(a, b));
    const keep = new Set(shown.map((t) => t.id));
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    let prev = null;
    for (const t of shown) {
      let row = this.rows.get(t.id);
      if (!row) {
        row = new Row(this, t);
        this.rows.set(t.id, row);
        if (this.ready) row.flash();
      }
      row.update(t, pending.has(t.id), this.store.conflicts.get(t.id));
      // Move only what is out of place: moving a row blurs what is focused in it.
      const want = prev ? prev.nextSibling : this.list.firstChild;
      if (want !== row.el) this.list.insertBefore(row.el, want);
      prev = row.el;
    }

    if (this.store.loaded) this.ready = true; // rows made from now on are news

    const empty = $('#empty');
    const filtered = tasks.length > 0 && shown.length === 0;
    empty.hidden = shown.length > 0 || !this.store.loaded;
    $('#empty-text').textContent = filtered
      ? 'No task matches these filters.'
      : 'Nothing here yet. Add a task above, or ask the assistant to add one.';
    $('#clear-filters').hidden = !filtered;
  }

  renderTagOptions() {
    const select = $('#filter-tag');
    const tags = this.store.tags();
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

/** One task's row: built once, updated in place. */
class Row {
  constructor(board, task) {
    this.board = board;
    this.task = task;
    this.editing = null; // {form, base, original}
    const id = String(task.id);
    this.check = h('input.task-check', { type: 'checkbox', id: `check-${id}` });
    this.check.addEventListener('change', () => {
      this.board.complete(this.task, this.check.checked);
    });
    this.title = h('span.task-title');
    this.desc = h('p.task-desc');
    this.prio = h('span.badge.prio');
    this.due = h('span.due');
    this.tags = h('ul.tags', { 'aria-label': 'Tags' });
    this.sync = h('span.sync-note', { 'aria-live': 'polite' });
    this.editBtn = h('button.btn.btn-icon.task-edit', { type: 'button', onclick: () => this.edit() }, 'Edit');
    this.deleteBtn = h('button.btn.btn-icon.task-delete', {
      type: 'button',
      onclick: () => {
        this.board.focusAfter(this.el);
        this.board.remove(this.task);
      },
    }, 'Delete');
    this.main = h('div.task-main', {},
      h('div.task-line', {}, this.title),
      this.desc,
      h('div.task-meta', {}, this.prio, this.due, this.tags, this.sync));
    this.actions = h('div.task-actions', {}, this.editBtn, this.deleteBtn);
    this.notice = h('div.conflict', { role: 'alert', hidden: true });
    this.el = h('li.task', { dataset: { id } }, this.check, this.main, this.actions, this.notice);
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
    const el = this.el;
    const wasPending = el.classList.contains('is-pending');
    if (prev !== task && !pending && !wasPending && task.version > prev.version) this.flash();
    el.dataset.priority = task.priority;
    el.dataset.completed = String(task.completed);
    el.dataset.version = String(task.version);
    el.classList.toggle('is-pending', pending);
    el.classList.toggle('is-done', task.completed);
    const placeholder = typeof task.id === 'string';
    this.check.checked = task.completed;
    this.check.disabled = placeholder;
    this.check.setAttribute('aria-label', `${task.completed ? 'Reopen' : 'Complete'} “${task.title}”`);
    this.editBtn.disabled = this.deleteBtn.disabled = placeholder;
    this.editBtn.setAttribute('aria-label', `Edit “${task.title}”`);
    this.deleteBtn.setAttribute('aria-label', `Delete “${task.title}”`);
    this.title.textContent = task.title;
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
    this.sync.textContent = pending ? 'Saving…' : '';

    if (this.editing && prev && prev.version !== task.version && typeof task.version === 'number' && task.version > this.editing.base) {
      this.editing.note.hidden = false;
    }
    this.renderConflict(conflict);
  }

  renderConflict(c) {
    if (!c) {
      this.notice.hidden = true;
      this.notice.replaceChildren();
      return;
    }
    const theirs = this.task;
    const dismiss = () => this.board.store.resolveConflict(theirs.id);
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
