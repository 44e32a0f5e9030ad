// What trying the board as a new user found missing (issue 11), and the
// board at 5,000 tasks: one instance with the server's built-in assistant.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Instance, token, rest, sql, launchBrowser, newPage, openBoard, live, row, titles, waitFor } from './harness.mjs';

let s;
let browser;

before(async () => {
  s = new Instance('gaps'); // no OPENAI_*: the built-in offline assistant
  await s.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await s?.stop();
});

/** Starts recording which task rows the DOM mutations touch; returns a function that reads and resets them. */
async function watchRows(p) {
  await p.evaluate(() => {
    window.touched = new Set();
    new MutationObserver((records) => {
      for (const r of records) {
        const n = r.target.nodeType === 1 ? r.target : r.target.parentElement;
        const li = n?.closest?.('li.task');
        if (li) window.touched.add(li.dataset.id);
        for (const a of r.addedNodes) if (a.nodeType === 1 && a.matches('li.task')) window.touched.add(a.dataset.id);
        for (const a of r.removedNodes) if (a.nodeType === 1 && a.matches('li.task')) window.touched.add(a.dataset.id);
      }
    }).observe(document.getElementById('tasks'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
  return async () => p.evaluate(() => {
    const ids = [...window.touched];
    window.touched.clear();
    return ids;
  });
}

test('5,000 tasks: the board renders them all, and a change touches only its own row', async () => {
  const user = 'many';
  const n = 5000;
  sql(`INSERT INTO tasks (user_id, title) SELECT '${user}', 'Many task ' || lpad(g::text, 5, '0') FROM generate_series(1, ${n}) g`);
  const tok = token(user);
  const p = await newPage(browser);
  await openBoard(p, s, tok);
  await waitFor(async () => (await p.locator('#tasks li.task').count()) === n, { timeout: 60000, what: `${n} rows` });
  assert.equal(await p.locator('#counts').textContent(), `${n} open · 0 done`);
  const touched = await watchRows(p);

  // A title changed elsewhere: one row.
  const [t] = await rest(s, tok, 'GET', `/api/${user}/tasks?q=${encodeURIComponent('Many task 02500')}`);
  await rest(s, tok, 'PATCH', `/api/${user}/tasks/${t.id}`, { title: 'Many task 02500, renamed' });
  await row(p, 'Many task 02500, renamed').waitFor();
  assert.deepEqual(await touched(), [String(t.id)]);

  // Completed here: its row moves to the done tasks at the end; no other row is touched.
  await row(p, 'Many task 00007').locator('.task-check').check();
  await row(p, 'Many task 00007').and(p.locator('[data-completed="true"]:not(.is-pending)')).waitFor();
  const [seven] = await rest(s, tok, 'GET', `/api/${user}/tasks?q=${encodeURIComponent('Many task 00007')}`);
  assert.deepEqual(await touched(), [String(seven.id)]);
  assert.equal(await p.locator('#tasks li.task').last().getAttribute('data-id'), String(seven.id));

  // Created elsewhere: one new row, at the top (newest first).
  await rest(s, tok, 'POST', `/api/${user}/tasks`, { title: 'The newest one' });
  await row(p, 'The newest one').waitFor();
  const added = await touched();
  assert.equal(added.length, 1, `touched ${added}`);
  assert.equal((await titles(p))[0], 'The newest one');
  assert.deepEqual(p.errors, []);
  await p.close_();
});

test('task numbers show on every row, as the assistant names them', async () => {
  const tok = token('numa');
  const t = await rest(s, tok, 'POST', '/api/numa/tasks', { title: 'Numbered task' });
  const p = await newPage(browser);
  await openBoard(p, s, tok);
  assert.equal(await row(p, 'Numbered task').locator('.task-num').textContent(), `#${t.id}`);
  // A create not yet named by the server shows no number (it has none yet).
  await p.context().setOffline(true);
  await p.locator('#conn[data-state="offline"]').waitFor();
  await p.locator('#new-title').fill('Not named yet');
  await p.locator('#new-title').press('Enter');
  assert.equal(await row(p, 'Not named yet').locator('.task-num').textContent(), '');
  await p.context().setOffline(false);
  await live(p);
  await row(p, 'Not named yet').and(p.locator(':not(.is-pending)')).waitFor();
  const [made] = await rest(s, tok, 'GET', '/api/numa/tasks?q=named');
  assert.equal(await row(p, 'Not named yet').locator('.task-num').textContent(), `#${made.id}`);
  await p.close_();
});

test('filters and sort survive a reload', async () => {
  const tok = token('fila');
  for (const [title, priority] of [['Banana', 'low'], ['Apple', 'high'], ['Cherry', 'medium']]) {
    await rest(s, tok, 'POST', '/api/fila/tasks', { title, priority, tags: ['fruit'] });
  }
  const done = await rest(s, tok, 'POST', '/api/fila/tasks', { title: 'Durian', tags: ['fruit'] });
  await rest(s, tok, 'PATCH', `/api/fila/tasks/${done.id}/complete`, { completed: true });
  const p = await newPage(browser);
  await openBoard(p, s, tok);
  await p.locator('label:has(input[value="pending"])').click();
  await p.locator('#sort').selectOption('title');
  await p.locator('#filter-tag').selectOption('fruit');
  await p.locator('#search').fill('an');
  assert.deepEqual(await titles(p), ['Banana']);
  await p.locator('#search').fill('');
  assert.deepEqual(await titles(p), ['Apple', 'Banana', 'Cherry']);

  await p.reload();
  await live(p);
  await waitFor(async () => (await titles(p)).length === 3, { what: 'the filtered list after the reload' });
  assert.deepEqual(await titles(p), ['Apple', 'Banana', 'Cherry']);
  assert.equal(await p.locator('input[name="status"][value="pending"]').isChecked(), true);
  assert.equal(await p.locator('#sort').inputValue(), 'title');
  assert.equal(await p.locator('#filter-tag').inputValue(), 'fruit');
  await p.locator('#clear-filters').or(p.locator('label:has(input[value="all"])')).first().click();
  assert.deepEqual(p.errors, []);
  await p.close_();
});

test('the assistant reopens the last conversation after a reload', async () => {
  const tok = token('chatty');
  const p = await newPage(browser);
  await openBoard(p, s, tok);
  await p.locator('#chat-input').fill('add a task to feed the cat');
  await p.locator('#chat-input').press('Enter');
  await p.locator('#chat-log .msg-assistant[data-status="complete"]').waitFor();
  await row(p, 'Feed the cat').waitFor();

  await p.reload();
  await live(p);
  await p.locator('#chat-log .msg-user', { hasText: 'add a task to feed the cat' }).waitFor();
  await p.locator('#chat-log .msg-assistant[data-status="complete"]').waitFor();
  await p.locator('#conversations .conv[aria-current="true"]', { hasText: 'add a task to feed the cat' }).waitFor();

  // "New chat" is remembered too: the next reload opens an empty chat.
  await p.locator('#chat-new').click();
  await p.reload();
  await live(p);
  await p.locator('#conversations .conv', { hasText: 'add a task to feed the cat' }).waitFor();
  assert.equal(await p.locator('#chat-log .msg-user').count(), 0);
  assert.deepEqual(p.errors, []);
  await p.close_();
});

for (const [width, height] of [[1280, 860], [375, 740]]) {
  test(`toasts never cover the assistant's input (${width} px)`, async () => {
    const tok = token(`toasty${width}`);
    const p = await newPage(browser, { width, height });
    await openBoard(p, s, tok);
    if (width < 960) await p.locator('.view-btn[data-view="chat"]').click();
    await p.evaluate(() => {
      // The page's own toast(): four at once, the most it shows.
      for (let i = 0; i < 4; i++) {
        window.tasksync.toast(`A long message number ${i} that wraps over more than one line at narrow widths`, { kind: i % 2 ? 'error' : 'info' });
      }
    });
    await p.locator('.toast').nth(3).waitFor();
    const input = await p.locator('#chat-input').boundingBox();
    const form = await p.locator('#chat-form').boundingBox();
    for (const box of [input, form]) {
      for (const t of await p.locator('.toast').all()) {
        const b = await t.boundingBox();
        const overlap = b.x < box.x + box.width && box.x < b.x + b.width && b.y < box.y + box.height && box.y < b.y + b.height;
        assert.ok(!overlap, `a toast at ${JSON.stringify(b)} covers ${JSON.stringify(box)}`);
      }
    }
    assert.deepEqual(p.errors, []);
    await p.close_();
  });
}
