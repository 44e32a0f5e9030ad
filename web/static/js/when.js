// Times of a task as the board shows and edits them: due_at (a moment, with
// the zone it was set in), remind_at, and the recurrence rule in words.
//
// Nothing here reads a date written in words: the server's parser does
// that (POST /api/{user_id}/parse, quick-add). This module turns stored
// values into text and the browser's date and time inputs into ISO times.

/** The browser's IANA zone ("Europe/Berlin"): sent as tz with every time the user sets. */
export function zone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

const pad = (n) => String(n).padStart(2, '0');

/** YYYY-MM-DD of a Date in the browser's zone. */
export function localDay(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** HH:MM of a Date in the browser's zone. */
export function localClock(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Whether a stored due time is a date without a time: what date-only
 * clients write (YYYY-MM-DD is stored as midnight UTC) and no zone with it.
 */
export function dateOnly(task) {
  const at = task?.due_at ?? task?.due_date;
  return !!at && !task.tz && /T00:00:00(\.0+)?Z$/.test(at);
}

/** The due time of a task (due_at, else due_date): an ISO string or ''. */
export function dueOf(task) {
  return task?.due_at ?? task?.due_date ?? '';
}

/**
 * The inputs' values for a task's due time: {day, clock}. A date-only due
 * keeps its calendar day (UTC) and no time; a moment shows in the browser's zone.
 */
export function dueInputs(task) {
  const at = dueOf(task);
  if (!at) return { day: '', clock: '' };
  if (dateOnly(task)) return { day: at.slice(0, 10), clock: '' };
  const d = new Date(at);
  return { day: localDay(d), clock: localClock(d) };
}

/**
 * The fields to send for a due day and time typed in the browser:
 * a day alone stays a date (due_date, as before); a day and a time are a
 * moment in the browser's zone (due_at and tz). {} when the day is empty.
 */
export function dueFields(day, clock) {
  if (!day) return {};
  if (!clock) return { due_date: day };
  return { due_at: new Date(`${day}T${clock}`).toISOString(), tz: zone() };
}

/** The value of a datetime-local input for an ISO time ('' for none). */
export function localInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return `${localDay(d)}T${localClock(d)}`;
}

/** An ISO time from a datetime-local input's value (local time), or null. */
export function fromLocalInput(v) {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric', year: 'numeric' });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/** "Today", "Tomorrow", "Yesterday" or "Tue, Dec 8" for a local day (YYYY-MM-DD). */
export function dayName(day, now = new Date()) {
  const today = localDay(now);
  const shift = (n) => localDay(new Date(now.getFullYear(), now.getMonth(), now.getDate() + n));
  if (day === today) return 'Today';
  if (day === shift(1)) return 'Tomorrow';
  if (day === shift(-1)) return 'Yesterday';
  const [y, m, d] = day.split('-').map(Number);
  const date = new Date(y, m - 1, d);
  return (y === now.getFullYear() ? dayFmt : dayYearFmt).format(date);
}

/** "Tomorrow 09:00" or "Tue, Dec 8 18:30" for an ISO moment, in the browser's zone. */
export function formatMoment(iso, now = new Date()) {
  const d = new Date(iso);
  return `${dayName(localDay(d), now)} ${clockFmt.format(d)}`;
}

/** The text of a task's due time ("Today", "Tomorrow 09:00"); '' when it has none. */
export function formatDueOf(task, now = new Date()) {
  const at = dueOf(task);
  if (!at) return '';
  if (dateOnly(task)) return dayName(at.slice(0, 10), now);
  // A day said without a time (quick-add's "tomorrow") is 00:00 of that day: the day alone.
  const d = new Date(at);
  return d.getHours() === 0 && d.getMinutes() === 0 ? dayName(localDay(d), now) : formatMoment(at, now);
}

/** Whether the task is past due (a date-only due: after its day has ended). */
export function overdue(task, now = new Date()) {
  const at = dueOf(task);
  if (!at || task.completed) return false;
  if (dateOnly(task)) return at.slice(0, 10) < localDay(now);
  return Date.parse(at) < now.getTime();
}

// ------------------------------------------------------------ recurrence

const WEEKDAY = { MO: 'Monday', TU: 'Tuesday', WE: 'Wednesday', TH: 'Thursday', FR: 'Friday', SA: 'Saturday', SU: 'Sunday' };
const WEEKDAY_SHORT = { MO: 'Mon', TU: 'Tue', WE: 'Wed', TH: 'Thu', FR: 'Fri', SA: 'Sat', SU: 'Sun' };
const UNIT = { DAILY: 'day', WEEKLY: 'week', MONTHLY: 'month', YEARLY: 'year' };
const ORDINAL_WORD = { 1: 'first', 2: 'second', 3: 'third', 4: 'fourth', '-1': 'last' };

function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'];
  const v = Math.abs(n) % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

function list(words) {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/** The parts of an RRULE ("FREQ=WEEKLY;BYDAY=MO"), upper-cased keys; null when it is not one. */
export function ruleParts(rule) {
  if (!rule) return null;
  const out = {};
  for (const part of String(rule).replace(/^RRULE:/i, '').split(';')) {
    if (!part) continue;
    const [k, v] = part.split('=');
    if (!k || v === undefined) return null;
    out[k.toUpperCase()] = v.toUpperCase();
  }
  return out.FREQ ? out : null;
}

/**
 * A rule in words: "every Monday", "every 2 weeks on Friday", "every month
 * on the 1st", "every weekday". A rule with parts this does not put in
 * words is shown as it is (the server ran it, so it is valid).
 */
export function describeRule(rule) {
  const p = ruleParts(rule);
  if (!p || !UNIT[p.FREQ]) return rule ? String(rule) : '';
  const known = new Set(['FREQ', 'INTERVAL', 'BYDAY', 'BYMONTHDAY', 'COUNT', 'UNTIL', 'WKST']);
  if (Object.keys(p).some((k) => !known.has(k))) return rule;
  const n = p.INTERVAL ? Number(p.INTERVAL) : 1;
  if (!Number.isInteger(n) || n < 1) return rule;
  const unit = UNIT[p.FREQ];
  const every = n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
  let text = every;
  const days = p.BYDAY ? p.BYDAY.split(',') : [];
  if (days.length) {
    const plain = days.every((d) => WEEKDAY[d]);
    if (p.FREQ === 'WEEKLY' && plain) {
      const set = [...new Set(days)].sort((a, b) => Object.keys(WEEKDAY).indexOf(a) - Object.keys(WEEKDAY).indexOf(b));
      if (set.join(',') === 'MO,TU,WE,TH,FR') text = n === 1 ? 'every weekday' : `${every} on weekdays`;
      else if (n === 1 && set.length === 1) text = `every ${WEEKDAY[set[0]]}`;
      else if (n === 1) text = `every ${list(set.map((d) => WEEKDAY_SHORT[d]))}`;
      else text = `${every} on ${list(set.map((d) => (set.length === 1 ? WEEKDAY[d] : WEEKDAY_SHORT[d])))}`;
    } else if (p.FREQ === 'DAILY' && plain && n === 1) {
      const set = [...new Set(days)].sort((a, b) => Object.keys(WEEKDAY).indexOf(a) - Object.keys(WEEKDAY).indexOf(b));
      text = set.join(',') === 'MO,TU,WE,TH,FR' ? 'every weekday' : `every ${list(set.map((d) => WEEKDAY_SHORT[d]))}`;
    } else if (p.FREQ === 'MONTHLY' && days.length === 1) {
      const m = days[0].match(/^([+-]?\d)(MO|TU|WE|TH|FR|SA|SU)$/);
      if (!m || !ORDINAL_WORD[String(Number(m[1]))]) return rule;
      text = `${every} on the ${ORDINAL_WORD[String(Number(m[1]))]} ${WEEKDAY[m[2]]}`;
    } else {
      return rule;
    }
  }
  if (p.BYMONTHDAY) {
    if (p.FREQ !== 'MONTHLY' || days.length) return rule;
    const ds = p.BYMONTHDAY.split(',').map(Number);
    if (ds.some((d) => !Number.isInteger(d) || d === 0)) return rule;
    text = `${every} on the ${list(ds.map((d) => (d === -1 ? 'last day' : ordinal(d))))}`;
  }
  if (p.COUNT) text += `, ${p.COUNT} times`;
  if (p.UNTIL) {
    const m = p.UNTIL.match(/^(\d{4})(\d{2})(\d{2})/);
    if (!m) return rule;
    text += `, until ${dayName(`${m[1]}-${m[2]}-${m[3]}`)}`;
  }
  return text;
}

/** The repeat picker's choices: a value, its label and its rule (null: no repeat; 'custom': typed). */
export const REPEATS = [
  ['', 'Does not repeat', null],
  ['daily', 'Every day', 'FREQ=DAILY'],
  ['weekdays', 'Every weekday', 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR'],
  ['weekly', 'Every week', 'FREQ=WEEKLY'],
  ['monthly', 'Every month', 'FREQ=MONTHLY'],
  ['yearly', 'Every year', 'FREQ=YEARLY'],
  ['custom', 'Custom rule…', 'custom'],
];

/** The picker value that stands for a stored rule ('custom' when none of the presets is it). */
export function repeatChoice(rule) {
  if (!rule) return '';
  const hit = REPEATS.find(([, , r]) => r === String(rule).toUpperCase());
  return hit ? hit[0] : 'custom';
}

/** The rule for a picker value and the custom field's text; null for no repeat. */
export function repeatRule(choice, custom) {
  if (choice === 'custom') return String(custom || '').trim().replace(/^RRULE:/i, '') || null;
  return REPEATS.find(([v]) => v === choice)?.[2] ?? null;
}
