// The board's socket as docs/PROTOCOL.md "Connecting" and "sync" describe
// it, watched from outside the page: every URL the page opens and every
// console line it prints, and every frame it receives.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Instance, token, launchBrowser, newPage, openBoard, live, waitFor,
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
      try {
        p.frames.push(JSON.parse(payload));
      } catch { /* not JSON: the board would ignore it too */ }
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
  // The server took the token from the subprotocols and answered tasksync.v1 alone.
  assert.equal(await p.evaluate(() => window.tasksync.conn.ws.protocol), 'tasksync.v1');
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
