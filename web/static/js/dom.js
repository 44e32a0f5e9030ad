// Small DOM helpers. Text always goes through textContent: nothing the
// server or the user wrote is ever parsed as HTML.

/** h('li.task', {dataset: {id: 1}, onclick}, child, 'text') builds an element. */
export function h(spec, props = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * A short-lived message at the top of the screen; errors stay longer.
 * action: [label, onClick] adds a button (Undo) that also closes the toast.
 */
export function toast(message, { kind = 'info', timeout, action = null } = {}) {
  const box = $('#toasts');
  const el = h(`div.toast.toast-${kind}`, { role: kind === 'error' ? 'alert' : 'status' },
    h('span.toast-text', { text: message }),
    action && h('button.toast-action', { type: 'button', onclick: () => { el.remove(); action[1](); } }, action[0]),
    h('button.toast-close', { type: 'button', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => el.remove(), timeout ?? (kind === 'error' ? 9000 : 4000));
  return el;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const dateYearFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', year: 'numeric', timeZone: 'UTC' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** The calendar day of a due date. Due dates are days, stored as midnight UTC. */
export function dueDay(iso) {
  return iso ? iso.slice(0, 10) : '';
}

/** Today as YYYY-MM-DD in the user's time zone. */
export function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export function formatDue(iso) {
  const day = dueDay(iso);
  if (!day) return '';
  const t = today();
  if (day === t) return 'Today';
  const tomorrow = new Date(Date.parse(t + 'T00:00:00Z') + 86400000).toISOString().slice(0, 10);
  if (day === tomorrow) return 'Tomorrow';
  const d = new Date(day + 'T00:00:00Z');
  return (day.slice(0, 4) === t.slice(0, 4) ? dateFmt : dateYearFmt).format(d);
}

export function formatTime(date) {
  return timeFmt.format(date);
}

/** "in 5 min", "in 2 h": for session expiry notices. */
export function formatIn(ms) {
  const min = Math.round(ms / 60000);
  if (min < 1) return 'in less than a minute';
  if (min < 60) return `in ${min} min`;
  return `in ${Math.round(min / 60)} h`;
}

/** A random id for mutation_id: unique per change, reused on retries. */
export function randomId(prefix) {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return prefix + '-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Tags typed as "home, errands" → ["home","errands"]: trimmed, and repeats
 * dropped case-insensitively keeping the first spelling, as the server does
 * (so that the tag count checked here is the one the server checks).
 */
export function parseTags(s) {
  const out = [];
  const seen = new Set();
  for (const t of String(s || '').split(',')) {
    const v = t.trim();
    if (v && !seen.has(v.toLowerCase())) {
      seen.add(v.toLowerCase());
      out.push(v);
    }
  }
  return out;
}
