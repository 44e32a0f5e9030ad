// Time-aware tasks on the board (issue 13), in a real browser against two
// real server instances: a reminder fired by the server shows as an alert
// and snoozes; Undo after delete, complete and edit restores on both
// devices; quick-add reads "Pay rent every month on the 1st !high #home"
// through the server's parser and creates that task; the history panel
// lists a task's versions with who made them and restores one. Every
// wait has a deadline; nothing sleeps a fixed time.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  env, Instance, token, rest, sql, launchBrowser, newPage, openBoard, row, titles, waitFor,
} from './harness.mjs';

let a;
let b;
let browser;
const ZONE = 'Europe/Berlin'; // the browsers' zone: the parser and the rules run in it

before(async () => {
  a = new Instance('time-a');
  b = new Instance('time-b');
  await Promise.all([a.start(), b.start()]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

function user(id) {
  return { id, token: token(id) };
}

async function board(inst, u, opts = {}) {
  const p = await newPage(browser, { timezoneId: ZONE, ...opts });
  await openBoard(p, inst, u.token);
  return p;
}

/** Before a screenshot: no hover left by the last click, no highlight or transition half-way. */
async function settle(p) {
  await p.mouse.move(2, 2);
  await p.waitForFunction(() => document.getAnimations().every((an) => an.playState !== 'running' || an.effect?.getTiming().iterations === Infinity));
}

function noErrors(...ps) {
  for (const p of ps) assert.deepEqual(p.errors, [], 'console errors');
}

/** The wall-clock parts of an ISO time in ZONE. */
function inZone(iso) {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(iso));
  return Object.fromEntries(parts.filter((x) => x.type !== 'literal').map((x) => [x.type, Number(x.value)]));
}

test('a reminder fired by the server shows as an alert on the board; snooze moves remind_at', async () => {
  const u = user('rhea');
  await rest(a, u.token, 'POST', `/api/${u.id}/tasks`, {
    title: 'Team standup', due_at: '2030-01-07T08:30:00Z', tz: ZONE, recurrence: 'FREQ=WEEKLY;BYDAY=MO,WE,FR', remind_at: '2030-01-07T08:20:00Z',
  });
  await rest(a, u.token, 'POST', `/api/${u.id}/tasks`, { title: 'Pay rent', due_at: '2029-12-31T23:00:00Z', tz: ZONE, recurrence: 'FREQ=MONTHLY;BYMONTHDAY=1', priority: 'high', tags: ['home'] });
  const p = await board(a, u);
  const remindAt = new Date(Date.now() + 2500).toISOString();
  const t = await rest(b, u.token, 'POST', `/api/${u.id}/tasks`, { title: 'Take the cake out', remind_at: remindAt });

  // The row shows that it has a reminder, with a label for screen readers.
  const r = row(p, 'Take the cake out');
  await r.locator('.remind:visible [role="img"][aria-label="Reminder"]').waitFor();

  // Within the deadline, the reminder arrives: an in-page alert (no notification permission here).
  const alert = p.locator('#reminders .reminder[role="alert"]', { hasText: 'Take the cake out' });
  await alert.waitFor({ timeout: 20000 });
  assert.equal(await p.evaluate(() => Notification.permission), 'default');
  assert.ok(Date.now() >= Date.parse(remindAt) - 1000, 'the reminder came before its time');
  assert.equal(await p.locator('#reminders .reminder').count(), 1, 'one card per reminder');
  await settle(p);
  await p.screenshot({ path: path.join(env.screenshots, 'reminder.png') });

  // Snooze 10 min: an ordinary change of remind_at, seen by the server.
  const before = Date.now();
  await alert.getByRole('button', { name: /^Snooze 10 min/ }).click();
  await alert.waitFor({ state: 'detached' });
  const moved = await waitFor(async () => {
    const got = await rest(b, u.token, 'GET', `/api/${u.id}/tasks/${t.id}`);
    return got.remind_at && Date.parse(got.remind_at) > before ? got : null;
  }, { what: 'remind_at moved by the snooze' });
  const ahead = Date.parse(moved.remind_at) - before;
  assert.ok(ahead > 9 * 60000 && ahead < 11 * 60000, `snoozed ${ahead} ms ahead`);
  noErrors(p);
  await p.close_();

  // Notifications allowed: the reminder is a browser notification, and the
  // card stays on the page (for snooze) without a second alert.
  const q = await newPage(browser, { timezoneId: ZONE });
  await q.context().grantPermissions(['notifications']);
  await q.context().addInitScript(() => {
    const Native = window.Notification;
    window.shown = [];
    window.Notification = class extends Native {
      constructor(title, options) {
        window.shown.push(title);
        super(title, options);
      }
    };
  });
  await openBoard(q, a, u.token);
  assert.equal(await q.evaluate(() => Notification.permission), 'granted');
  assert.equal(await q.locator('#notify-enable').isVisible(), false);
  await rest(b, u.token, 'POST', `/api/${u.id}/tasks`, { title: 'Call grandma', remind_at: new Date(Date.now() + 2000).toISOString() });
  await q.locator('#reminders .reminder[role="status"]', { hasText: 'Call grandma' }).waitFor({ timeout: 20000 });
  assert.deepEqual(await q.evaluate(() => window.shown), ['Reminder: Call grandma']);
  assert.equal(await q.locator('#reminders .reminder[role="alert"]').count(), 0);
  noErrors(q);
  await q.close_();
});

test('a reminder that fired while no tab was open shows at the next connect, once', async () => {
  const u = user('pia');
  const t = await rest(a, u.token, 'POST', `/api/${u.id}/tasks`, { title: 'Move the car', remind_at: new Date(Date.now() + 1000).toISOString() });
  // Fired by the server with nobody to tell (the reminders table records it).
  await waitFor(() => sql(`SELECT count(*) FROM reminders WHERE task_id = ${t.id}`) === '1', { timeout: 20000, what: 'the reminder to fire' });
  const p = await board(b, u);
  const alert = p.locator('#reminders .reminder[role="alert"]', { hasText: 'Move the car' });
  await alert.waitFor();
  assert.match(await alert.textContent(), /while you were away/);
  // Delivered once: a reload does not show it again.
  await p.reload();
  await p.locator('#conn[data-state="live"]').waitFor();
  await p.waitForFunction(() => window.tasksync?.board.loaded === true);
  await row(p, 'Move the car').waitFor();
  assert.equal(await p.locator('#reminders .reminder').count(), 0);
  noErrors(p);
  await p.close_();
});

test('undo after delete brings the task back, with its id, on both devices; undo after complete and edit too', async () => {
  const u = user('ugo');
  const t = await rest(a, u.token, 'POST', `/api/${u.id}/tasks`, { title: 'Renew the lease', priority: 'high', tags: ['home'] });
  const pa = await board(a, u);
  const pb = await board(b, u);

  // Delete on A: a toast offers Undo; the task leaves both boards.
  await row(pa, 'Renew the lease').locator('.task-delete').click();
  const toast = pa.locator('.toast', { hasText: 'Deleted “Renew the lease”' });
  await toast.waitFor();
  for (const p of [pa, pb]) await waitFor(async () => !(await titles(p)).includes('Renew the lease'), { what: 'the task to leave' });

  // Undo: restored by the server with the same id; both boards show it again.
  await toast.getByRole('button', { name: 'Undo' }).click();
  for (const p of [pa, pb]) {
    await row(p, 'Renew the lease').and(p.locator(`[data-id="${t.id}"]`)).waitFor();
  }
  const back = await rest(b, u.token, 'GET', `/api/${u.id}/tasks/${t.id}`);
  assert.equal(back.title, 'Renew the lease');
  assert.deepEqual(back.tags, ['home']);
  assert.equal(back.priority, 'high');

  // Complete, then Undo: open again everywhere.
  await row(pa, 'Renew the lease').locator('.task-check').check();
  await row(pb, 'Renew the lease').and(pb.locator('[data-completed="true"]')).waitFor();
  await pa.locator('.toast', { hasText: 'Completed “Renew the lease”' }).getByRole('button', { name: 'Undo' }).click();
  await row(pb, 'Renew the lease').and(pb.locator('[data-completed="false"]')).waitFor();
  assert.equal((await rest(a, u.token, 'GET', `/api/${u.id}/tasks/${t.id}`)).completed, false);

  // Edit the title, then Undo: the old title is back.
  await row(pa, 'Renew the lease').locator('.task-edit').click();
  const input = pa.locator('#tasks .editor input[id$="-title"]');
  await input.fill('Renew the flat lease');
  await input.press('Enter');
  await row(pb, 'Renew the flat lease').waitFor();
  await pa.locator('.toast', { hasText: 'Edited “Renew the flat lease”' }).getByRole('button', { name: 'Undo' }).click();
  await row(pb, 'Renew the lease').waitFor();
  assert.equal((await rest(a, u.token, 'GET', `/api/${u.id}/tasks/${t.id}`)).title, 'Renew the lease');

  noErrors(pa, pb);
  await pa.close_();
  await pb.close_();
});

test('quick-add: "Pay rent every month on the 1st !high #home" shows what was understood, then creates that task', async () => {
  const u = user('quinn');
  const p = await board(b, u);
  const title = p.locator('#new-title');
  await title.pressSequentially('Pay rent every month on the 1st !high #home', { delay: 15 });

  // The preview, from the server's parser, before anything is saved.
  const box = p.locator('#new-understood');
  await box.locator('[data-field="recurrence"]', { hasText: 'every month on the 1st' }).waitFor();
  assert.match(await box.locator('.understood-title').textContent(), /“Pay rent”/);
  assert.match(await box.locator('[data-field="priority"]').textContent(), /High/);
  assert.match(await box.locator('[data-field="tag"]').textContent(), /#home/);
  await box.locator('[data-field="due_at"]').waitFor();
  assert.deepEqual(await rest(b, u.token, 'GET', `/api/${u.id}/tasks`), [], 'nothing saved before Enter');
  await settle(p);
  await p.locator('#new-task').screenshot({ path: path.join(env.screenshots, 'quick-add.png') });

  await title.press('Enter');
  const r = row(p, 'Pay rent');
  await r.and(p.locator(':not(.is-pending)')).waitFor();
  assert.match(await r.locator('.repeat').textContent(), /every month on the 1st/);
  assert.equal(await box.isVisible(), false, 'the preview goes with the typed text');

  const [task] = await rest(a, u.token, 'GET', `/api/${u.id}/tasks`);
  assert.equal(task.title, 'Pay rent');
  assert.equal(task.recurrence, 'FREQ=MONTHLY;BYMONTHDAY=1');
  assert.equal(task.priority, 'high');
  assert.deepEqual(task.tags, ['home']);
  assert.equal(task.tz, ZONE);
  assert.ok(task.due_at, 'due_at set');
  assert.equal(task.due_at, task.due_date);
  assert.equal(inZone(task.due_at).day, 1, `due on the 1st in ${ZONE}: ${task.due_at}`);
  assert.ok(Date.parse(task.due_at) > Date.now() - 86400000, 'the next 1st, not a past one');

  // A plain title is saved as typed, with the details' fields.
  await title.fill('Water the plants');
  await title.press('Enter');
  await row(p, 'Water the plants').and(p.locator(':not(.is-pending)')).waitFor();
  noErrors(p);
  await p.close_();
});

test('history: the panel lists the versions with who made them, and restores one', async () => {
  const u = user('hana');
  const t = await rest(a, u.token, 'POST', `/api/${u.id}/tasks`, { title: 'Plan the trip' });
  const p = await board(a, u);

  // Two changes from this device: an edit and a completion.
  await row(p, 'Plan the trip').locator('.task-edit').click();
  await p.locator('#tasks .editor input[id$="-title"]').fill('Plan the summer trip');
  await p.locator('#tasks .editor input[id$="-title"]').press('Enter');
  await row(p, 'Plan the summer trip').and(p.locator('[data-version="2"]')).waitFor();
  await row(p, 'Plan the summer trip').locator('.task-check').check();
  await row(p, 'Plan the summer trip').and(p.locator('[data-version="3"]')).waitFor();

  await row(p, 'Plan the summer trip').locator('.task-history').click();
  const dialog = p.locator('#history');
  await dialog.waitFor();
  const items = dialog.locator('.history-item');
  await waitFor(async () => (await items.count()) === 3, { what: 'three versions listed' });
  assert.deepEqual(await items.evaluateAll((els) => els.map((e) => [e.dataset.op, e.dataset.actor, e.dataset.version])),
    [['updated', 'socket', '3'], ['updated', 'socket', '2'], ['created', 'rest', '1']]);
  assert.match(await items.nth(0).textContent(), /Completed.*by this device/);
  assert.match(await items.nth(1).textContent(), /Changed title.*by this device/);
  assert.match(await items.nth(2).textContent(), /Created.*by the REST API/);
  assert.equal(await items.nth(0).getByRole('button').count(), 0, 'the current version has nothing to restore');
  await settle(p);
  await p.screenshot({ path: path.join(env.screenshots, 'history.png') });

  // Restore version 1: an ordinary change (version 4) with version 1's fields.
  await items.nth(2).getByRole('button', { name: 'Restore version 1' }).click();
  await waitFor(async () => (await items.count()) === 4, { what: 'the restore listed' });
  await row(p, 'Plan the trip').and(p.locator('[data-version="4"]')).waitFor();
  const now = await rest(b, u.token, 'GET', `/api/${u.id}/tasks/${t.id}`);
  assert.equal(now.title, 'Plan the trip');
  assert.equal(now.completed, false);
  assert.equal(now.version, 4);

  // Escape closes it; focus goes back to the History button.
  await p.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await p.evaluate(() => document.activeElement.classList.contains('task-history')), true);
  noErrors(p);
  await p.close_();
});

test('due time, reminder and repeat set in the form show on the row', async () => {
  const u = user('dora');
  const p = await board(b, u);
  await p.locator('#new-title').fill('Team standup');
  await p.locator('#new-more').click();
  await p.locator('#new-due').fill('2030-01-07'); // a Monday
  await p.locator('#new-due-time').fill('09:30');
  await p.locator('#new-remind').fill('2030-01-07T09:20');
  await p.locator('#new-repeat').selectOption('custom');
  await p.locator('#new-rrule').fill('FREQ=WEEKLY;BYDAY=MO,WE,FR');
  await p.locator('#new-title').press('Enter');
  const r = row(p, 'Team standup');
  await r.and(p.locator(':not(.is-pending)')).waitFor();
  assert.match(await r.locator('.due').textContent(), /09:30/);
  assert.match(await r.locator('.repeat').textContent(), /every Mon, Wed and Fri/);
  assert.equal(await r.locator('.repeat [role="img"]').getAttribute('aria-label'), 'Repeats');
  assert.match(await r.locator('.remind').textContent(), /09:20/);
  const [t] = await rest(b, u.token, 'GET', `/api/${u.id}/tasks`);
  assert.equal(t.tz, ZONE);
  assert.deepEqual(inZone(t.due_at), { year: 2030, month: 1, day: 7, hour: 9, minute: 30 });
  assert.deepEqual(inZone(t.remind_at), { year: 2030, month: 1, day: 7, hour: 9, minute: 20 });
  assert.equal(t.recurrence, 'FREQ=WEEKLY;BYDAY=MO,WE,FR');
  noErrors(p);
  await p.close_();
});

test('deleting a repeating task asks: this occurrence (the series goes on) or the whole series', async () => {
  const u = user('sid');
  const first = await rest(a, u.token, 'POST', `/api/${u.id}/tasks`, {
    title: 'Water the garden', due_at: '2030-01-07T07:00:00Z', tz: ZONE, recurrence: 'FREQ=WEEKLY;BYDAY=MO',
  });
  await rest(a, u.token, 'POST', `/api/${u.id}/tasks`, { title: 'Unrelated' });
  const p = await board(b, u);
  await row(p, 'Water the garden').locator('.repeat', { hasText: 'every Monday' }).waitFor();

  // This one: the occurrence goes, the next one (a week later) comes.
  await row(p, 'Water the garden').locator('.task-delete').click();
  const ask = row(p, 'Water the garden').locator('.conflict');
  await ask.getByText('Delete this occurrence or the whole series?', { exact: false }).waitFor();
  await ask.getByRole('button', { name: 'This one' }).click();
  const next = await waitFor(async () => {
    const list = (await rest(a, u.token, 'GET', `/api/${u.id}/tasks`)).filter((t) => t.title === 'Water the garden');
    return list.length === 1 && list[0].id !== first.id ? list[0] : null;
  }, { what: 'the next occurrence instead of the deleted one' });
  assert.equal(next.series_id, first.series_id ?? first.id);
  assert.deepEqual(inZone(next.due_at), { year: 2030, month: 1, day: 14, hour: 8, minute: 0 });
  await row(p, 'Water the garden').and(p.locator(`[data-id="${next.id}"]`)).waitFor();

  // The whole series: every occurrence goes; the other task stays.
  await row(p, 'Water the garden').locator('.task-delete').click();
  await row(p, 'Water the garden').locator('.conflict').getByRole('button', { name: 'Whole series' }).click();
  await waitFor(async () => !(await titles(p)).includes('Water the garden'), { what: 'the series to leave the board' });
  // The board hides a pending series delete at once; the server has it once acknowledged.
  await waitFor(async () => (await rest(a, u.token, 'GET', `/api/${u.id}/tasks`)).map((t) => t.title).join() === 'Unrelated',
    { what: 'the series deleted on the server, the other task kept' });
  noErrors(p);
  await p.close_();
});
