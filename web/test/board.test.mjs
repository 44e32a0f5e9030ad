// The web client in a real browser against two real server instances
// (one database, one Redis), as docs/PROTOCOL.md and issue 5 describe it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  env, Instance, token, rest, launchBrowser, newPage, openBoard, live, row, titles, waitFor,
} from './harness.mjs';
import { startModel } from './model.mjs';

let model;
let a; // instance A: restarted by one test
let b; // instance B
let browser;
const alice = { id: 'alice' };
const bob = { id: 'bob' };
const pages = [];

function dayFromNow(days) {
  return new Date(Date.now() + days * 86400000).toISOString().slice(0, 10);
}

async function page(inst, user, opts) {
  const p = await newPage(browser, opts);
  pages.push(p);
  await openBoard(p, inst, user.token);
  return p;
}

async function close(...ps) {
  for (const p of ps) await p.close_();
}

/** Before a screenshot: no hover left by the last click, no highlight still fading. */
async function settle(p) {
  await p.mouse.move(2, 2);
  await p.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
  await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

function noErrors(...ps) {
  for (const p of ps) assert.deepEqual(p.errors, [], 'console errors');
}

before(async () => {
  model = await startModel();
  a = new Instance('a', { OPENAI_BASE_URL: model.url, OPENAI_MODEL: 'test-model' });
  b = new Instance('b', { OPENAI_BASE_URL: model.url, OPENAI_MODEL: 'test-model' });
  await Promise.all([a.start(), b.start()]);
  alice.token = token(alice.id);
  bob.token = token(bob.id);
  browser = await launchBrowser();
  // A board that looks lived in.
  const seed = [
    { title: 'Renew passport', priority: 'low', tags: ['personal'], due_date: dayFromNow(-2) },
    { title: 'Book flights for the offsite', description: 'Lisbon, 14-16 May. Check the team calendar first.', priority: 'medium', tags: ['travel', 'work'], due_date: dayFromNow(9) },
    { title: 'Review pull request #142', priority: 'high', tags: ['work'], due_date: dayFromNow(1) },
    { title: 'Draft Q3 roadmap', description: 'Goals, milestones and staffing for the next quarter.', priority: 'high', tags: ['work'], due_date: dayFromNow(4) },
  ];
  for (const t of seed) await rest(a, alice.token, 'POST', '/api/alice/tasks', t);
  const done = await rest(a, alice.token, 'POST', '/api/alice/tasks', { title: 'Pay the electricity bill', tags: ['home'], priority: 'medium' });
  await rest(a, alice.token, 'PATCH', `/api/alice/tasks/${done.id}/complete`, { completed: true });
});

after(async () => {
  await browser?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await model?.close();
});

test('two devices of one user: create, edit, complete and delete show up on the other', async () => {
  const pa = await page(a, alice);
  const pb = await page(b, alice);
  assert.equal((await titles(pa)).length, 5);
  assert.deepEqual((await titles(pa)).sort(), (await titles(pb)).sort());

  // Presence: each page counts both devices.
  for (const p of [pa, pb]) await p.locator('#presence[data-online="2"]').waitFor();

  // Create on A, with every field, from the keyboard.
  await pa.locator('#new-title').fill('Water the plants');
  await pa.locator('#new-more').click();
  await pa.locator('#new-description').fill('The ferns need it most.');
  await pa.locator('#new-priority').selectOption('high');
  await pa.locator('#new-tags').fill('home, garden');
  await pa.locator('#new-due').fill(dayFromNow(2));
  await pa.locator('#new-title').press('Enter');
  const onB = row(pb, 'Water the plants');
  await onB.waitFor();
  assert.equal(await onB.locator('.prio').textContent(), 'High');
  assert.deepEqual(await onB.locator('.tag').allTextContents(), ['home', 'garden']);
  assert.equal(await onB.locator('.task-desc').textContent(), 'The ferns need it most.');
  assert.match(await onB.locator('.due').textContent(), /^Due /);
  assert.equal(await pa.locator('#new-title').inputValue(), '', 'the composer is cleared');

  // Edit on B (inline editor: Enter saves); A follows.
  await onB.locator('.task-edit').click();
  const title = pb.locator('#tasks .editor input[id$="-title"]');
  assert.equal(await pb.evaluate(() => document.activeElement.id.endsWith('-title')), true, 'the editor takes focus');
  await title.fill('Water the plants and herbs');
  await title.press('Enter');
  await row(pa, 'Water the plants and herbs').waitFor();

  // Escape cancels an edit and gives focus back to the Edit button.
  await row(pa, 'Water the plants and herbs').locator('.task-edit').click();
  await pa.keyboard.type(' (discarded)');
  await pa.keyboard.press('Escape');
  assert.equal(await pa.locator('#tasks .editor').count(), 0);
  assert.equal(await pa.evaluate(() => document.activeElement.classList.contains('task-edit')), true);

  // Complete on A with the keyboard (Space on the checkbox); B shows it done.
  await row(pa, 'Water the plants and herbs').locator('.task-check').focus();
  await pa.keyboard.press('Space');
  await row(pb, 'Water the plants and herbs').and(pb.locator('[data-completed="true"]')).waitFor();

  // Filters and search run over the synced set.
  await pb.locator('label:has(input[value="completed"])').click();
  await waitFor(async () => (await titles(pb)).length === 2, { what: 'two done tasks' });
  await pb.locator('label:has(input[value="all"])').click();
  await pb.locator('#search').fill('roadmap');
  assert.deepEqual(await titles(pb), ['Draft Q3 roadmap']);
  await pb.locator('#search').fill('');
  await pb.locator('#filter-tag').selectOption('work');
  assert.equal((await titles(pb)).length, 3);
  await pb.locator('#filter-tag').selectOption('');
  await pb.locator('#sort').selectOption('priority');
  assert.equal((await titles(pb))[0], 'Review pull request #142');
  await pb.locator('#sort').selectOption('created-desc');

  await pa.locator('#new-title').focus();
  await settle(pa);
  await pa.screenshot({ path: path.join(env.screenshots, 'board.png'), fullPage: true });

  // Delete on B; A loses it.
  await row(pb, 'Water the plants and herbs').locator('.task-delete').click();
  await waitFor(async () => !(await titles(pa)).includes('Water the plants and herbs'), { what: 'the deleted task to leave A' });
  assert.equal((await titles(pa)).length, 5);

  noErrors(pa, pb);
  await close(pa, pb);
});

test('another user sees nothing of it', async () => {
  const pa = await page(a, alice);
  const pbob = await page(b, bob);
  assert.deepEqual(await titles(pbob), []);
  await pbob.locator('#empty').waitFor();

  // Alice's change reaches her page on A; Bob's page on B gets nothing of it.
  await pa.locator('#new-title').fill('Send the quarterly report');
  await pa.locator('#new-title').press('Enter');
  await row(pa, 'Send the quarterly report').and(pa.locator(':not(.is-pending)')).waitFor();
  // Bob's own change round-trips; by then nothing of Alice's has come.
  await pbob.locator('#new-title').fill('Buy a birthday present');
  await pbob.locator('#new-title').press('Enter');
  await row(pbob, 'Buy a birthday present').and(pbob.locator(':not(.is-pending)')).waitFor();
  const seen = await pbob.evaluate(() => window.tasksync.board.tasks().map((t) => t.title));
  assert.deepEqual(seen, ['Buy a birthday present']);
  assert.equal(await pbob.locator('#counts').textContent(), '1 open · 0 done');
  assert.ok(!(await titles(pa)).includes('Buy a birthday present'));
  assert.equal(await pbob.locator('#presence[data-online="1"]').count(), 1);

  noErrors(pa, pbob);
  await close(pa, pbob);
});

test('conflicts are shown, not overwritten; refused changes roll back with a message', async () => {
  const pa = await page(a, alice);
  const tasks = await rest(b, alice.token, 'GET', '/api/alice/tasks?q=roadmap');
  const roadmap = tasks[0];

  // A opens the editor; meanwhile another device changes the task.
  await row(pa, 'Draft Q3 roadmap').locator('.task-edit').click();
  const title = pa.locator('#tasks .editor input[id$="-title"]');
  await title.fill('Draft Q3 roadmap v2');
  await rest(b, alice.token, 'PATCH', `/api/alice/tasks/${roadmap.id}`, { title: 'Draft Q3 roadmap (final)' });
  await pa.locator('#tasks .editor .editor-note').waitFor();
  await title.press('Enter');

  // The server refuses (version_mismatch): their version stays, with a notice.
  const conflicted = row(pa, 'Draft Q3 roadmap (final)');
  await conflicted.locator('.conflict').waitFor();
  assert.match(await conflicted.locator('.conflict').textContent(), /Someone else changed this task first/);
  assert.equal((await rest(b, alice.token, 'GET', `/api/alice/tasks/${roadmap.id}`)).title, 'Draft Q3 roadmap (final)');

  // The user chooses to apply theirs over it: now based on the current version.
  await conflicted.locator('.conflict button', { hasText: 'Apply mine' }).click();
  await row(pa, 'Draft Q3 roadmap v2').waitFor();
  await waitFor(async () => (await rest(b, alice.token, 'GET', `/api/alice/tasks/${roadmap.id}`)).title === 'Draft Q3 roadmap v2',
    { what: 'the server to have the applied edit' });
  assert.equal(await pa.locator('.conflict:visible').count(), 0);

  // A change the server refuses is undone, with a message. (Limits are
  // checked before sending, see the limits test; a lone surrogate, which
  // a DOM string can hold, is refused by the server only.)
  const r = row(pa, 'Renew passport');
  await r.locator('.task-edit').click();
  await pa.locator('#tasks .editor input[id$="-title"]').evaluate((el) => { el.value = 'Renew passport \ud800'; });
  await pa.locator('#tasks .editor input[id$="-title"]').press('Enter');
  await pa.locator('.toast-error', { hasText: 'Could not save “Renew passport' }).waitFor();
  await row(pa, 'Renew passport').and(pa.locator(':not(.is-pending)')).waitFor();
  assert.equal((await rest(b, alice.token, 'GET', '/api/alice/tasks?q=passport'))[0].title, 'Renew passport');

  noErrors(pa);
  await close(pa);
});

test('chat: the answer streams, the tool call shows, the task lands on both boards', async () => {
  const pa = await page(a, alice);
  const pb = await page(b, alice);

  // Record every text the streaming answer shows, as the DOM changes.
  await pa.evaluate(() => {
    window.seen = [];
    new MutationObserver(() => {
      const el = document.querySelector('#chat-log .msg-assistant.is-streaming .msg-text');
      if (el && el.textContent !== window.seen.at(-1)) window.seen.push(el.textContent);
    }).observe(document.querySelector('#chat-log'), { subtree: true, childList: true, characterData: true });
  });
  await pa.locator('#chat-input').fill('add a task to buy groceries');
  await pa.locator('#chat-input').press('Enter');

  // The tool call shows while the turn runs, and its effect is on both boards.
  await pa.locator('#chat-log .tool[data-name="add_task"]').waitFor();
  await row(pa, 'buy groceries').waitFor();
  await row(pb, 'buy groceries').waitFor();
  await pa.locator('#chat-log .tool[data-name="add_task"][data-state="done"]').waitFor();

  const answer = pa.locator('#chat-log .msg-assistant').last();
  await answer.and(pa.locator('[data-status="complete"]')).waitFor();
  const final = await answer.locator('.msg-text').textContent();
  assert.match(final, /^Done! I added “buy groceries” to your board as task \d+\./);
  const seen = await pa.evaluate(() => window.seen);
  const growing = seen.filter((s, i) => i === 0 || s.length > seen[i - 1].length);
  assert.ok(growing.length >= 5, `the answer grew in ${growing.length} steps: ${JSON.stringify(seen)}`);
  assert.ok(growing.every((s) => final.startsWith(s)), 'each step is a prefix of the answer');

  // The other device lists the conversation too (chat frames go to every session).
  await pb.locator('#conversations .conv', { hasText: 'add a task to buy groceries' }).waitFor();
  await settle(pa);
  await pa.screenshot({ path: path.join(env.screenshots, 'chat.png') });

  // Stop: a long answer is cut short and marked as stopped.
  await pa.locator('#chat-input').fill('tell me a long story');
  await pa.locator('#chat-input').press('Enter');
  const story = pa.locator('#chat-log .msg-assistant.is-streaming .msg-text');
  await waitFor(async () => ((await story.textContent()) || '').length > 30, { what: 'the story to start' });
  await pa.locator('#chat-stop').click();
  const stopped = pa.locator('#chat-log .msg-assistant[data-status="cancelled"]');
  await stopped.waitFor();
  assert.equal(await stopped.locator('.msg-status').textContent(), 'Stopped.');
  await pa.locator('#chat-stop').waitFor({ state: 'hidden' });
  assert.ok((await stopped.locator('.msg-text').textContent()).length < 400 * 5, 'the story was cut short');

  // History: reopening the conversation shows the stored messages.
  await pa.locator('#chat-new').click();
  await pa.locator('#conversations .conv', { hasText: 'add a task to buy groceries' }).click();
  await pa.locator('#chat-log .msg-user', { hasText: 'tell me a long story' }).waitFor();
  await pa.locator('#chat-log .msg-assistant[data-status="complete"] .tool[data-state="done"]').waitFor();

  noErrors(pa, pb);
  await close(pa, pb);
});

test('the built-in offline assistant answers in the browser too', async () => {
  const c = new Instance('offline');
  await c.start();
  try {
    const pc = await page(c, alice);
    await pc.locator('#chat-input').fill('add a task to call the plumber');
    await pc.locator('#chat-send').click();
    await row(pc, 'Call the plumber').waitFor(); // it capitalises titles
    const answer = pc.locator('#chat-log .msg-assistant[data-status="complete"] .msg-text');
    await answer.waitFor();
    assert.match(await answer.textContent(), /Added "Call the plumber" to your tasks/);
    noErrors(pc);
    await close(pc);
  } finally {
    await c.stop();
  }
});

test('server restarted under an open page: reconnecting, then caught up', async () => {
  const pa = await page(a, alice);
  await a.stop(); // graceful: the socket closes with 1001; reconnects then fail until A is back
  await pa.locator('#conn[data-state="reconnecting"]').waitFor();
  assert.equal(await pa.locator('#conn-text').textContent(), 'Reconnecting…');
  // Who else is online is unknown while reconnecting: presence claims nothing ("This device only" was wrong).
  assert.equal(await pa.locator('#presence').isVisible(), false);

  // A change made through the other instance while A is down.
  await rest(b, alice.token, 'POST', '/api/alice/tasks', { title: 'Made while you were away', priority: 'high' });
  assert.ok(!(await titles(pa)).includes('Made while you were away'));

  // A change made on the page while it is disconnected waits, shown as pending.
  await pa.locator('#new-title').fill('Written while offline');
  await pa.locator('#new-title').press('Enter');
  await row(pa, 'Written while offline').and(pa.locator('.is-pending')).waitFor();

  await a.start(); // the same port
  await live(pa, 30000);
  await row(pa, 'Made while you were away').waitFor();
  // The pending change was sent again after the reconnect and applied once.
  await row(pa, 'Written while offline').and(pa.locator(':not(.is-pending)')).waitFor();
  const all = await rest(b, alice.token, 'GET', '/api/alice/tasks?q=offline');
  assert.equal(all.filter((t) => t.title === 'Written while offline').length, 1);

  // The browser itself logs refused socket connections and fetches while
  // the server is down; those are expected here, nothing else is.
  const unexpected = pa.errors.filter((e) => !/WebSocket connection to .* failed|Failed to load resource: net::ERR_CONNECTION_REFUSED/.test(e));
  assert.deepEqual(unexpected, []);
  await close(pa);
});

test('readable at phone width (375 px): no sideways scrolling, panels switch', async () => {
  const p = await newPage(browser, { width: 375, height: 740 });
  pages.push(p);
  await openBoard(p, b, alice.token);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, 'the page scrolls sideways');
  assert.ok(await p.locator('#board').isVisible());
  assert.ok(!(await p.locator('#chat').isVisible()));
  await p.locator('.view-btn[data-view="chat"]').click();
  assert.ok(await p.locator('#chat').isVisible());
  assert.ok(!(await p.locator('#board').isVisible()));
  await p.locator('.view-btn[data-view="board"]').click();
  await settle(p);
  await p.screenshot({ path: path.join(env.screenshots, 'board-phone.png') });
  noErrors(p);
  await close(p);
});

test('sign-in: a pasted token works, a bad one is refused with a message, sign-out forgets it', async () => {
  const p = await newPage(browser);
  pages.push(p);
  await p.goto(b.url + '/');
  await p.locator('#signin').waitFor();
  await p.locator('#signin-token').fill('not a token');
  await p.locator('#signin-token').press('Enter');
  await p.locator('#signin-error', { hasText: 'does not look like an access token' }).waitFor();

  await p.locator('#signin-token').fill(bob.token);
  await p.locator('#signin-token').press('Enter');
  await live(p);
  assert.equal(await p.locator('#user-id').textContent(), 'bob');
  assert.match(await p.locator('#session-expiry').textContent(), /Session expires at/);
  // The stored task list (IndexedDB) is there while signed in, and gone after sign-out:
  // a signed-out user's tasks do not stay on a shared computer.
  const stored = () => p.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open('tasksync', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('state');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const get = req.result.transaction('state').objectStore('state').get('client');
      get.onsuccess = () => { resolve(get.result?.user_id ?? null); req.result.close(); };
      get.onerror = () => reject(get.error);
    };
  }));
  await waitFor(async () => (await stored()) === 'bob', { what: "bob's list stored on this device" });
  await p.locator('#account summary').click();
  await p.locator('#signout').click();
  await p.locator('#signin').waitFor();
  assert.equal(await p.evaluate(() => sessionStorage.length), 0);
  await waitFor(async () => (await stored()) === null, { what: 'the stored list deleted at sign-out' });
  noErrors(p);
  await close(p);
});

test('token expiry: a new token extends the live socket (auth.refresh); after 4001 it reconnects and catches up', async () => {
  // A token with under five minutes left: the page says when the session ends.
  const p = await newPage(browser);
  pages.push(p);
  await openBoard(p, b, token('carol', '4m'));
  await p.locator('#banner[data-kind="expiring"]', { hasText: 'Your session ends at' }).waitFor();
  const session = await p.evaluate(() => window.tasksync.client.connection.get().sessionId);
  await p.locator('#refresh-token').fill(token('carol'));
  await p.locator('#refresh-token').press('Enter');
  await p.locator('.toast', { hasText: 'Session extended' }).waitFor();
  await p.locator('#banner').waitFor({ state: 'hidden' });
  assert.equal(await p.evaluate(() => window.tasksync.client.connection.get().sessionId), session, 'the same socket');

  // A token that runs out: the server closes with 4001, the page asks for a new one.
  const q = await newPage(browser);
  pages.push(q);
  const short = token('dave', '8s');
  await openBoard(q, a, short);
  await q.locator('#conn[data-state="auth"]').waitFor({ timeout: 20000 });
  await q.locator('#banner[data-kind="auth"]', { hasText: 'Your session expired' }).waitFor();
  const fresh = token('dave');
  await rest(a, fresh, 'POST', '/api/dave/tasks', { title: 'Added while signed out' });
  await q.locator('#refresh-token').fill(fresh);
  await q.locator('#refresh-token').press('Enter');
  await live(q);
  await row(q, 'Added while signed out').waitFor();
  noErrors(p, q);
  await close(p, q);
});

test('a token the server refuses returns to sign-in with a message', async () => {
  const p = await newPage(browser);
  pages.push(p);
  await p.goto(`${b.url}/#token=${token('eve', '1h', 'another-secret-another-secret-0123456789')}`);
  await p.locator('#signin-reason', { hasText: 'did not accept this token' }).waitFor();
  // The browser logs the refused upgrade (401) and the REST probe (401) itself.
  const unexpected = p.errors.filter((e) => !/WebSocket connection to .* failed|status of 401/.test(e));
  assert.deepEqual(unexpected, []);
  await close(p);
});

test("the server's limits: an over-long title, too many tags, a long tag or message get a message and are not sent", async () => {
  const lena = { id: 'lena', token: token('lena') };
  const p = await page(b, lena);
  // The page carries the limits of the Go packages (web/embed_test.go checks the values).
  const limits = await p.evaluate(() => JSON.parse(document.getElementById('limits').textContent));
  assert.equal(limits.max_title, 200);
  const nothingSent = async () => {
    assert.equal(await p.evaluate(() => window.tasksync.client.outbox.get().length), 0, 'a change was sent');
    assert.deepEqual(await rest(b, lena.token, 'GET', '/api/lena/tasks'), []);
  };

  // A title one character over: the message shows while typing, and Enter sends nothing.
  const title = p.locator('#new-title');
  await title.fill('x'.repeat(limits.max_title + 1));
  const error = p.locator('#new-error');
  await error.and(p.locator(':visible')).waitFor();
  assert.equal(await error.textContent(), `The title is too long: at most ${limits.max_title} characters.`);
  assert.equal(await title.getAttribute('aria-invalid'), 'true');
  await title.press('Enter');
  await nothingSent();
  assert.equal(await p.evaluate(() => document.activeElement.id), 'new-title');
  assert.equal(await title.inputValue(), 'x'.repeat(limits.max_title + 1), 'what the user typed is kept');

  // Characters are counted as the server counts them: 200 emoji (400
  // UTF-16 units) fit. The message goes once the text fits.
  const emoji = '🌱'.repeat(limits.max_title);
  await title.fill(emoji);
  await error.waitFor({ state: 'hidden' });
  assert.equal(await title.getAttribute('aria-invalid'), null);

  // Tags: one too many, then one tag too long; the details open on the field at fault.
  await p.locator('#new-more').click();
  const tags = p.locator('#new-tags');
  await tags.fill(Array.from({ length: limits.max_tags + 1 }, (_, i) => `t${i}`).join(', '));
  await p.locator('#new-error', { hasText: `Too many tags: at most ${limits.max_tags}.` }).waitFor();
  await tags.fill(['home', 'y'.repeat(limits.max_tag + 1)].join(', '));
  await p.locator('#new-error', { hasText: `is too long: at most ${limits.max_tag} characters per tag.` }).waitFor();
  await p.locator('#new-more').click(); // hide the details: submitting opens them again
  await title.press('Enter');
  await nothingSent();
  assert.equal(await p.evaluate(() => document.activeElement.id), 'new-tags');
  assert.equal(await p.locator('#new-details').isVisible(), true);
  await p.locator('#new-description').fill('d'.repeat(limits.max_description + 1));
  await p.locator('#new-error', { hasText: `The description is too long: at most ${limits.max_description} characters.` }).waitFor();

  // Fixed: all at the limit, sent and stored as typed.
  await p.locator('#new-description').fill('d'.repeat(limits.max_description));
  await tags.fill(Array.from({ length: limits.max_tags }, (_, i) => `${i}`.padEnd(limits.max_tag, 'z')).join(', '));
  await p.locator('#new-error').waitFor({ state: 'hidden' });
  await title.press('Enter');
  await row(p, emoji).and(p.locator(':not(.is-pending)')).waitFor();
  const [stored] = await rest(b, lena.token, 'GET', '/api/lena/tasks');
  assert.equal(stored.title, emoji);
  assert.equal(stored.tags.length, limits.max_tags);

  // The editor checks the same limits.
  await row(p, emoji).locator('.task-edit').click();
  const editTags = p.locator('#tasks .editor input[id$="-tags"]');
  await editTags.fill('x'.repeat(limits.max_tag + 1));
  const editError = p.locator('#tasks .editor .field-error');
  await editError.and(p.locator(':visible')).waitFor();
  assert.ok((await editError.textContent()).endsWith(`is too long: at most ${limits.max_tag} characters per tag.`));
  await editTags.press('Enter');
  assert.equal(await p.locator('#tasks .editor').count(), 1, 'the editor stays open');
  assert.equal(await p.evaluate(() => window.tasksync.client.outbox.get().length), 0, 'a change was sent');
  await p.locator('#tasks .editor input[id$="-title"]').fill('t'.repeat(limits.max_title + 1));
  await p.locator('#tasks .editor .field-error', { hasText: 'The title is too long' }).waitFor();
  await p.keyboard.press('Escape');
  assert.deepEqual((await rest(b, lena.token, 'GET', '/api/lena/tasks')).map((t) => t.version), [1]);

  // A message to the assistant one character over.
  const input = p.locator('#chat-input');
  await input.fill('m'.repeat(limits.max_chat_message + 1));
  await p.locator('#chat-error', { hasText: `The message is too long: at most ${limits.max_chat_message} characters.` }).waitFor();
  await input.press('Enter');
  assert.equal(await p.locator('#chat-log .msg-user').count(), 0, 'the message was sent');
  await input.fill('m'.repeat(limits.max_chat_message));
  await p.locator('#chat-error').waitFor({ state: 'hidden' });

  noErrors(p);
  await close(p);
});

test('sign out everywhere closes every device (4010) and returns them to sign-in', async () => {
  const p1 = await page(a, bob);
  const p2 = await page(b, bob);
  await p1.locator('#account summary').click();
  await p1.locator('#signout-all').click();
  for (const p of [p1, p2]) {
    await p.locator('#signin-reason', { hasText: 'signed out everywhere' }).waitFor();
  }
  noErrors(p1, p2);
  await close(p1, p2);
});
