// A task's history: the versions the server's change log holds for it
// (GET /api/{user_id}/tasks/{id}/history, socket task.history, through the
// SDK), newest first, with when, what changed and who changed it, and
// "Restore this version" (the server's restore: an ordinary change that
// every device sees). How far back it goes is the log's retention.

import { $, h, toast, formatTime } from './dom.js';
import { describeError } from './board.js';
import { formatDueOf, formatMoment, describeRule, localDay, dayName } from './when.js';

/** Who made a change, as the change log records it (actor). */
const ACTOR = {
  socket: 'a device',
  rest: 'the REST API',
  assistant: 'the assistant',
  mcp: 'an MCP client',
  sql: 'SQL, outside the app',
  recurrence: 'the repeat (next occurrence)',
  reminder: 'a reminder',
};

const OP = { created: 'Created', updated: 'Changed', deleted: 'Deleted' };

/** The fields a version may change, and their names in the panel. */
const FIELDS = [
  ['title', 'title'], ['description', 'description'], ['priority', 'priority'], ['tags', 'tags'],
  ['due_at', 'due'], ['remind_at', 'reminder'], ['recurrence', 'repeat'],
];

function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** What a version changed, from the older version before it: "Completed", "Changed title, due". */
export function describeVersion(v, older) {
  if (v.op !== 'updated' || !v.task) return OP[v.op] || v.op;
  const o = older?.task;
  if (!o) return older?.op === 'deleted' ? 'Restored' : 'Changed';
  const parts = [];
  if (o.completed !== v.task.completed) parts.push(v.task.completed ? 'Completed' : 'Reopened');
  const changed = FIELDS.filter(([k]) => !same(o[k] ?? (k === 'due_at' ? o.due_date : undefined), v.task[k] ?? (k === 'due_at' ? v.task.due_date : undefined)))
    .map(([, name]) => name);
  if (changed.length) parts.push(`${parts.length ? 'changed' : 'Changed'} ${changed.join(', ')}`);
  return parts.join(', ') || 'Saved again, nothing changed';
}

/** One line about a version's task: its title and the fields worth seeing. */
function summary(t) {
  const bits = [`“${t.title}”`];
  if (t.completed) bits.push('done');
  bits.push(`${t.priority} priority`);
  const due = formatDueOf(t);
  if (due) bits.push(`due ${due}`);
  if (t.remind_at) bits.push(`reminder ${formatMoment(t.remind_at)}`);
  if (t.recurrence) bits.push(describeRule(t.recurrence));
  if (t.tags?.length) bits.push(t.tags.map((x) => `#${x}`).join(' '));
  return bits.join(' · ');
}

function when(iso) {
  const d = new Date(iso);
  return `${dayName(localDay(d))} ${formatTime(d)}`;
}

export class HistoryPanel {
  constructor(board) {
    this.board = board;
    this.dialog = $('#history');
    this.list = $('#history-list');
    this.status = $('#history-status');
    this.task = null;
    this.opener = null;
    this.loading = 0;
    $('#history-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => {
      this.task = null;
      this.list.replaceChildren();
      if (this.opener?.isConnected) this.opener.focus();
      this.opener = null;
    });
    // A click on the backdrop (outside the panel's box) closes it.
    this.dialog.addEventListener('click', (e) => {
      if (e.target !== this.dialog) return;
      const r = this.dialog.getBoundingClientRect();
      if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) this.dialog.close();
    });
  }

  open(task, opener) {
    this.task = task;
    this.opener = opener;
    $('#history-title').textContent = `History of “${task.title}”`;
    if (!this.dialog.open) this.dialog.showModal();
    $('#history-close').focus();
    void this.load();
  }

  async load() {
    const task = this.task;
    if (!task) return;
    const n = ++this.loading;
    this.status.textContent = 'Loading…';
    this.list.replaceChildren();
    let versions;
    try {
      versions = await this.board.history(task.id);
    } catch (err) {
      if (n !== this.loading || this.task !== task) return;
      this.status.textContent = err?.code === 'not_found'
        ? 'No history is kept for this task any more: the change log keeps changes for a limited time.'
        : `Could not load the history: ${describeError(err)}.`;
      return;
    }
    if (n !== this.loading || this.task !== task) return;
    this.status.textContent = `${versions.length} change${versions.length === 1 ? '' : 's'}, newest first. The change log keeps changes for a limited time (its retention); older ones are not listed.`;
    const session = this.board.client?.connection.get().sessionId;
    const newest = versions.find((v) => v.task)?.task.version;
    this.list.replaceChildren(...versions.map((v, i) => {
      const older = versions[i + 1];
      const who = v.actor === 'socket' && v.session && v.session === session ? 'this device' : (ACTOR[v.actor] || v.actor || 'unknown');
      const item = h('li.history-item', { dataset: { op: v.op, actor: v.actor || '', version: v.task ? String(v.task.version) : '' } },
        h('div.history-line', {},
          h('span.history-change', {}, describeVersion(v, older)),
          h('span.history-meta', {}, h('time', { datetime: v.at }, when(v.at)), ` · by ${who}`)),
        v.task && h('p.history-task', {}, `Version ${v.task.version}${v.task.version === newest && v.op !== 'deleted' ? ' (current)' : ''}: ${summary(v.task)}`));
      if (v.task && v.op !== 'deleted' && v.task.version !== newest) {
        const btn = h('button.btn.btn-small', {
          type: 'button',
          'aria-label': `Restore version ${v.task.version}`,
          onclick: () => this.restore(v.task, btn),
        }, 'Restore this version');
        item.append(btn);
      }
      return item;
    }));
  }

  async restore(version, btn) {
    const task = this.task;
    btn.disabled = true;
    try {
      await this.board.restore(task.id, version.version);
      toast(`Restored “${version.title}” to version ${version.version}.`);
      if (this.task === task) await this.load();
    } catch (err) {
      btn.disabled = false;
      toast(`Could not restore: ${describeError(err)}`, { kind: 'error' });
    }
  }
}
