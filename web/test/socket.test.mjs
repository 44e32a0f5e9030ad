// The board's socket as docs/PROTOCOL.md "Connecting" and "sync" describe
// it, watched from outside the page: every URL the page opens and every
// console line it prints, and every frame it receives.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Instance, token, rest, sql, launchBrowser, newPage, openBoard, live, row, titles, waitFor,
} from './harness.mjs';

let s; // one instance, stopped and restarted by the first test
let browser;

before(async () => {
  s = new Instance('sock');
  await s.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await s?.stop();
});

/** A page that records the URL of every WebSocket it opens, and every frame it receives. */
async function watchedPage() {
  const p = await newPage(browser);
  p.sockets = [];
  p.frames = [];
  p.on('websocket', (ws) => {
    p.sockets.push(ws.url());
    ws.on('framereceived', ({ payload }) => {
      // batch=1: one message may hold several frames, one per line.
      for (const line of String(payload).split('\n')) {
        if (line === '') continue;
        try {
          p.frames.push(JSON.parse(line));
        } catch { /* not JSON: the board would ignore it too */ }
      }
    });
  });
  return p;
}

/** Fails when the token, a recognisable part of it, or the old query parameter shows in what the page exposed. */
function assertNoToken(p, ...tokens) {
  const seen = [...p.sockets.map((u) => `socket URL: ${u}`), ...p.console.map((l) => `console ${l}`)];
  for (const line of seen) {
    assert.ok(!line.includes('access_token'), `access_token in ${line}`);
    for (const tok of tokens) {
      assert.ok(!line.includes(tok), `the token in ${line}`);
      assert.ok(!line.includes(tok.split('.')[2]), `the token's signature in ${line}`);
    }
  }
}

test('the token is never in a socket URL or the console, through failed reconnects and refused tokens', async () => {
  const tok = token('tina');
  const p = await watchedPage();
  await openBoard(p, s, tok);
  // The server took the token from the subprotocols and answered tasksync.v1 alone: the
  // SDK drops a socket answered with any other subprotocol (1002), so live means tasksync.v1.
  assert.equal(await p.evaluate(() => window.tasksync.client.connection.get().status), 'live');
  assert.equal(p.frames[0]?.type, 'hello');
  assert.equal(p.sockets.length, 1);
  assert.match(p.sockets[0], /\/ws\?since=-1&device=/);

  // The server goes away: every reconnect fails, and Chromium prints each
  // failed socket's URL in the console.
  await s.stop();
  await p.locator('#conn[data-state="reconnecting"]').waitFor();
  await waitFor(() => p.console.filter((l) => /WebSocket connection to .* failed/.test(l)).length >= 3,
    { timeout: 30000, what: 'three failed reconnects logged by the browser' });
  await s.start();
  await live(p, 30000);
  assert.ok(p.sockets.length >= 5, `${p.sockets.length} sockets opened`);
  assert.ok(p.sockets.every((u) => /\/ws\?since=-?\d+&device=/.test(u)), p.sockets.join('\n'));

  // A token the server refuses: the refused upgrades are logged too.
  const bad = token('tina', '1h', 'another-secret-another-secret-0123456789');
  const q = await watchedPage();
  await q.goto(`${s.url}/#token=${bad}`);
  await q.locator('#signin-reason', { hasText: 'did not accept this token' }).waitFor();
  assert.ok(q.console.some((l) => /WebSocket connection to .* failed/.test(l)), 'the refused upgrade is logged');

  assertNoToken(p, tok);
  assertNoToken(q, bad);
  await p.close_();
  await q.close_();
});

test('a snapshot in pages: the board shows every task once, then live events apply', async () => {
  // More than two pages of 500, written by another program before the page opens.
  const user = 'paula';
  const n = 1234;
  sql(`INSERT INTO tasks (user_id, title) SELECT '${user}', 'Paged task ' || lpad(g::text, 4, '0') FROM generate_series(1, ${n}) g`);
  const tok = token(user);
  const p = await watchedPage();
  await openBoard(p, s, tok);

  const snapshots = () => p.frames.filter((f) => f.type === 'snapshot');
  await waitFor(() => snapshots().some((f) => f.more === false), { what: 'the last snapshot page' });
  const pages = snapshots();
  assert.ok(pages.length >= 3, `${pages.length} snapshot pages`);
  assert.deepEqual(pages.map((f) => f.page), pages.map((_, i) => i));
  assert.equal(pages.reduce((sum, f) => sum + f.tasks.length, 0), n);

  const shown = await titles(p);
  assert.equal(shown.length, n);
  assert.equal(new Set(shown).size, n, 'every task once');
  assert.equal(await p.locator('#counts').textContent(), `${n} open · 0 done`);
  assert.equal(await p.evaluate(() => window.tasksync.client.seq), pages[0].seq);

  // Live events after the snapshot apply on top of it.
  const made = await rest(s, tok, 'POST', `/api/${user}/tasks`, { title: 'After the snapshot' });
  await row(p, 'After the snapshot').waitFor();
  const first = (await rest(s, tok, 'GET', `/api/${user}/tasks?q=${encodeURIComponent('Paged task 0001')}`))[0];
  await rest(s, tok, 'PATCH', `/api/${user}/tasks/${first.id}/complete`, { completed: true });
  await row(p, 'Paged task 0001').and(p.locator('[data-completed="true"]')).waitFor();
  await rest(s, tok, 'DELETE', `/api/${user}/tasks/${made.id}`);
  await row(p, 'After the snapshot').waitFor({ state: 'detached' });
  assert.equal(await p.locator('#counts').textContent(), `${n - 1} open · 1 done`);

  // Two syncs at once: the second stops the first snapshot (its page 0
  // arrives, maybe before the first one's last page); the board drops the
  // unfinished one and ends with exactly the second.
  const mark = p.frames.length;
  await p.evaluate(() => {
    const { client } = window.tasksync;
    client.request({ type: 'sync', id: 'again-1', since: -1 }).catch(() => {});
    client.request({ type: 'sync', id: 'again-2', since: -1 }).catch(() => {});
  });
  await waitFor(() => p.frames.slice(mark).some((f) => f.type === 'snapshot' && f.id === 'again-2' && f.more === false),
    { what: "the second sync's last page" });
  await p.waitForFunction((want) => window.tasksync.board.tasks().length === want, n);
  const again = await titles(p);
  assert.equal(again.length, n);
  assert.equal(new Set(again).size, n, 'every task once after a snapshot replaced an unfinished one');
  assert.equal(await p.locator('#counts').textContent(), `${n - 1} open · 1 done`);

  // Still live after it.
  await rest(s, tok, 'POST', `/api/${user}/tasks`, { title: 'After the second snapshot' });
  await row(p, 'After the second snapshot').waitFor();

  assert.deepEqual(p.errors, [], 'console errors');
  await p.close_();
});
