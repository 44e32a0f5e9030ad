// The SDK in Chromium, imported by a plain page from the server's
// /sdk/tasksync-client.js with its defaults (the browser's WebSocket,
// IndexedDB storage, navigator.onLine): changes made offline survive a
// reload (the outbox is in IndexedDB), and once back online each one is on
// the server exactly once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Instance, token, rest, serverTasks, uniqueUser, waitFor } from '../support/harness.mjs';
import { launchBrowser, newPage, servePage } from '../support/browser.mjs';

let inst;
let browser;

before(async () => {
  inst = new Instance('browser');
  await inst.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await inst?.stop();
});

// The page a plain site would write: no bundler, the module from /sdk/.
const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>tasksync SDK test page</title><link rel="icon" href="data:,"></head>
<body>
<script type="module">
import { createClient, indexedDBStorage } from "/sdk/tasksync-client.js";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const client = createClient({ url: location.origin, getToken: () => token, backoff: { minMs: 100, maxMs: 1000 } });
const tasks = client.tasks();
window.sdk = {
  client, tasks, ready: false,
  status: () => client.connection.get().status,
  list: () => tasks.getSnapshot().map((t) => ({ id: t.id, title: t.title, completed: t.completed, pending: !!t.pending })),
  outbox: () => client.outbox.get().length,
  // What a reload would find: the state saved in IndexedDB.
  stored: async () => (await indexedDBStorage().load())?.outbox.length ?? 0,
  find: (title) => tasks.getSnapshot().find((t) => t.title === title),
};
client.ready().then(() => { window.sdk.ready = true; });
</script>
</body>
</html>`;

test('offline changes survive a reload in IndexedDB and reach the server exactly once when back online', async () => {
  const user = uniqueUser('browser');
  const tok = token(user);
  for (const title of ['edit me', 'finish me', 'delete me']) await rest(inst, tok, 'POST', `/api/${user}/tasks`, { title });

  const { context, page } = await newPage(browser);
  await servePage(page, inst.url, '/app/', PAGE);
  await page.goto(`${inst.url}/app/#token=${tok}`);
  await page.waitForFunction(() => window.sdk?.ready && window.sdk.status() === 'live' && window.sdk.list().length === 3);
  assert.equal(page.sdkFetches > 0, true, 'the SDK came from the server');

  // Offline: the SDK notices at once (navigator.onLine / offline event).
  await context.setOffline(true);
  await page.waitForFunction(() => window.sdk.status() === 'offline');
  await page.evaluate(() => {
    const { tasks, find } = window.sdk;
    const quiet = (p) => p.catch(() => {});
    quiet(tasks.create({ title: 'offline 1', priority: 'high' }));
    quiet(tasks.create({ title: 'offline 2' }));
    quiet(tasks.update(find('edit me').id, { title: 'edited offline' }));
    quiet(tasks.complete(find('finish me').id, true));
    quiet(tasks.delete(find('delete me').id));
  });
  const optimistic = await page.evaluate(() => window.sdk.list());
  assert.deepEqual(optimistic.map((t) => t.title).sort(), ['edited offline', 'finish me', 'offline 1', 'offline 2']);
  assert.ok(optimistic.filter((t) => t.title.startsWith('offline')).every((t) => t.pending));
  await page.waitForFunction(async () => (await window.sdk.stored()) === 5);

  // Reload while still offline: the outbox and the list come back from IndexedDB.
  await page.reload();
  await page.waitForFunction(() => window.sdk?.status() === 'offline' && window.sdk.outbox() === 5);
  const reloaded = await page.evaluate(() => window.sdk.list());
  assert.deepEqual(reloaded.map((t) => t.title).sort(), ['edited offline', 'finish me', 'offline 1', 'offline 2']);
  assert.equal(reloaded.find((t) => t.title === 'finish me').completed, true);
  // One more change after the reload.
  await page.evaluate(() => { window.sdk.tasks.create({ title: 'after reload' }).catch(() => {}); });
  // Nothing reached the server yet.
  assert.deepEqual((await serverTasks(inst, tok, user)).map((t) => t.title).sort(), ['delete me', 'edit me', 'finish me']);

  await context.setOffline(false);
  await page.waitForFunction(() => window.sdk.status() === 'live' && window.sdk.outbox() === 0, null, { timeout: 20000 });
  const want = ['after reload', 'edited offline', 'finish me', 'offline 1', 'offline 2'];
  const onServer = await serverTasks(inst, tok, user);
  assert.deepEqual(onServer.map((t) => t.title).sort(), want, 'each change once on the server');
  assert.equal(onServer.find((t) => t.title === 'edited offline').version, 2);
  assert.equal(onServer.find((t) => t.title === 'finish me').completed, true);
  assert.equal(onServer.find((t) => t.title === 'finish me').version, 2);
  assert.equal(onServer.find((t) => t.title === 'offline 1').priority, 'high');
  await waitFor(async () => {
    const l = await page.evaluate(() => window.sdk.list());
    return l.length === 5 && l.every((t) => !t.pending);
  }, { what: 'the page list to match the server' });

  // A last reload online: nothing is sent again, nothing doubles.
  await page.reload();
  await page.waitForFunction(() => window.sdk?.ready && window.sdk.status() === 'live' && window.sdk.list().length === 5);
  assert.equal(await page.evaluate(() => window.sdk.outbox()), 0);
  assert.deepEqual((await serverTasks(inst, tok, user)).map((t) => t.title).sort(), want);
  assert.deepEqual(page.errors, []);
  assert.ok(page.frames.sent > 0 && page.frames.received > 0, `frames checked: ${JSON.stringify(page.frames)}`);
  await context.close();
});
