// Reminders on the board. At a task's remind_at the server sends each open
// session of the user one reminder frame (and a session that was closed
// then gets it at its next connect, marked pending); the SDK hands them
// here. Each shows as a browser notification when the user allowed them
// (asked only from a click: "Enable notifications"), and always as a card
// on the page with Snooze 10 min / 1 h / Tomorrow 09:00 and Done: an
// alert (role=alert) when no notification was shown, quietly otherwise.
// Snooze is an ordinary change of remind_at; the server schedules anew.

import { $, h, toast } from './dom.js';
import { formatMoment, formatDueOf, describeRule } from './when.js';

/** The snooze choices: label, and the new remind_at from now. */
const SNOOZES = [
  ['10 min', () => new Date(Date.now() + 10 * 60000)],
  ['1 h', () => new Date(Date.now() + 60 * 60000)],
  ['Tomorrow 09:00', () => {
    const d = new Date();
    return new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1, 9, 0, 0, 0);
  }],
];

/** How many reminder cards stay on the page at most (the oldest go first). */
const MAX_CARDS = 5;

function notifications() {
  return typeof Notification === 'function' ? Notification : null;
}

export class Reminders {
  /** @param {{board: import('./board.js').Board}} o */
  constructor({ board }) {
    this.board = board;
    this.client = null;
    this.off = null;
    this.region = $('#reminders');
    this.cards = new Map(); // reminder_id → card element
    this.enable = $('#notify-enable');
    this.enable.addEventListener('click', () => this.ask());
    this.showEnable();
    // The cards float over the bottom of the page: the page gets room
    // below its end as tall as they are, so no row stays under them.
    new ResizeObserver(() => {
      document.documentElement.style.setProperty('--reminders-height', `${this.region.hidden ? 0 : this.region.offsetHeight}px`);
    }).observe(this.region);
  }

  /** Follows client's reminder frames (a new session). */
  attach(client) {
    this.detach();
    this.client = client;
    const cb = (r) => this.fired(r);
    if (client.reminders && typeof client.reminders.subscribe === 'function') this.off = client.reminders.subscribe(cb);
    else if (typeof client.onReminder === 'function') this.off = client.onReminder(cb);
  }

  detach() {
    this.off?.();
    this.off = null;
    this.client = null;
    for (const card of this.cards.values()) card.remove();
    this.cards.clear();
    this.region.hidden = true;
  }

  /** Asks for permission to notify: from a click only (browsers ignore or punish asking unprompted). */
  async ask() {
    const N = notifications();
    if (!N) return;
    try {
      await N.requestPermission();
    } catch { /* an old browser's callback form: the state below says what happened */ }
    this.showEnable();
    if (N.permission === 'granted') toast('Reminders will show as notifications.');
    else if (N.permission === 'denied') toast('Notifications are blocked for this site; reminders show on the page.', { kind: 'warn' });
  }

  showEnable() {
    const N = notifications();
    this.enable.hidden = !N || N.permission !== 'default';
  }

  /** A reminder frame: {reminder_id, task, remind_at, pending}. */
  fired(r) {
    const task = r?.task;
    if (!task || this.cards.has(r.reminder_id)) return;
    const N = notifications();
    let notified = false;
    if (N?.permission === 'granted') {
      try {
        const n = new N(`Reminder: ${task.title}`, { body: this.details(task, r), tag: `tasksync-reminder-${r.reminder_id}` });
        n.onclick = () => {
          window.focus();
          this.cards.get(r.reminder_id)?.querySelector('button')?.focus();
          n.close();
        };
        notified = true;
      } catch { /* a browser that only notifies from a service worker: the card says it */ }
    }
    this.card(r, notified);
  }

  details(task, r) {
    const bits = [];
    const due = formatDueOf(task);
    if (due) bits.push(`Due ${due}`);
    if (task.recurrence) bits.push(describeRule(task.recurrence));
    if (r.pending) bits.push(`reminder was set for ${formatMoment(r.remind_at)}, while you were away`);
    return bits.join(' · ');
  }

  /** The reminder's card: an alert, unless a notification said it already. */
  card(r, notified) {
    const task = r.task;
    const id = r.reminder_id;
    const close = () => {
      el.remove();
      this.cards.delete(id);
      this.region.hidden = this.cards.size === 0;
    };
    const snooze = ([label, at]) => h('button.btn.btn-small', {
      type: 'button',
      // The visible text starts the name (WCAG 2.5.3): "Snooze 10 min: “Call Bob”".
      'aria-label': `${label === 'Tomorrow 09:00' ? 'Snooze until tomorrow 09:00' : `Snooze ${label}`}: “${task.title}”`,
      onclick: () => {
        const when = at();
        this.board.snooze(task.id, when.toISOString());
        toast(`Snoozed “${task.title}” until ${formatMoment(when.toISOString())}.`);
        close();
      },
    }, label === 'Tomorrow 09:00' ? label : `Snooze ${label}`);
    const N = notifications();
    const details = this.details(task, r);
    const el = h('div.reminder', { role: notified ? 'status' : 'alert', dataset: { taskId: String(task.id), reminderId: String(id) } },
      h('p.reminder-text', {}, h('span.icon.icon-remind', { role: 'img', 'aria-label': 'Reminder' }), ' ', h('strong', {}, task.title)),
      details && h('p.reminder-details', {}, details),
      h('div.reminder-actions', {},
        ...SNOOZES.map(snooze),
        h('button.btn.btn-small.btn-primary', {
          type: 'button',
          'aria-label': `Done: “${task.title}”`,
          onclick: () => { this.board.complete(task, true); close(); },
        }, 'Done'),
        h('button.btn.btn-small.btn-ghost', { type: 'button', 'aria-label': `Dismiss: “${task.title}”`, onclick: close }, 'Dismiss'),
        N?.permission === 'default' && h('button.btn.btn-small.btn-ghost', {
          type: 'button',
          onclick: async (e) => { e.currentTarget.remove(); await this.ask(); },
        }, 'Enable notifications')));
    this.cards.set(id, el);
    this.region.append(el);
    while (this.cards.size > MAX_CARDS) {
      const [oldest, card] = this.cards.entries().next().value;
      card.remove();
      this.cards.delete(oldest);
    }
    this.region.hidden = false;
  }
}
