// The offline shell (web/static/sw.js) and the SDK's durable outbox, in a
// real browser: context.setOffline cuts this device's network (and fires the
// offline event the SDK acts on) while the server and the other device stay up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Instance, token, rest, launchBrowser, newPage, openBoard, live, row, titles, waitFor } from './harness.mjs';

let a;
let b;
let browser;
const user = 'olga';
let tok;

before(async () => {
  a = new Instance('offline-a');
  b = new Instance('offline-b');
  await Promise.all([a.start(), b.start()]);
  tok = token(user);
  browser = await launchBrowser();
  for (const title of ['Water the plants', 'Call the bank']) {
    await rest(a, tok, 'POST', `/api/${user}/tasks`, { title });
  }
});

after(async () => {
  await browser?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

/** Waits until the service worker controls the page and holds every file the page loaded from /assets/ and /sdk/. */
async function shellCached(p) {
  await p.waitForFunction(async () => {
    if (!navigator.serviceWorker.controller) return false;
    const wanted = performance.getEntriesByType('resource').map((e) => new URL(e.name))
      .filter((u) => u.origin === location.origin && /^\/(assets|sdk)\//.test(u.pathname)).map((u) => u.pathname);
    if (!wanted.some((x) => x.startsWith('/sdk/'))) return false;
    for (const name of await caches.keys()) {
      const c = await caches.open(name);
      const have = new Set((await c.keys()).map((r) => new URL(r.url).pathname));
      if (have.has('/') && wanted.every((x) => have.has(x))) return true;
    }
    return false;
  }, null, { timeout: 15000, polling: 100 });
}

/** The outbox as the SDK stored it in IndexedDB (what a reload will find). */
function storedOutbox(p) {
  return p.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open('tasksync', 1);
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const get = req.result.transaction('state').objectStore('state').get('client');
      get.onsuccess = () => { resolve((get.result?.outbox || []).map((m) => m.type)); req.result.close(); };
      get.onerror = () => reject(get.error);
    };
  }));
}

const NETWORK_ERRORS = /ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|WebSocket connection to .* failed|Failed to fetch|ERR_FAILED/;

test('offline: the badge says so at once; changes made offline survive a reload and reach the other device once online, exactly once', async () => {
  const pa = await newPage(browser);
  const pb = await newPage(browser);
  await openBoard(pa, a, tok);
  await openBoard(pb, b, tok);
  await shellCached(pa);
  for (const p of [pa, pb]) await p.locator('#presence[data-online="2"]').waitFor();

  // The network drops: the badge shows it within a second (the SDK acts on
  // the offline event, it does not wait for a ping to time out).
  const t0 = Date.now();
  await pa.context().setOffline(true);
  await pa.locator('#conn[data-state="offline"]').waitFor({ timeout: 1000 });
  const took = Date.now() - t0;
  assert.ok(took < 1000, `offline shown after ${took} ms`);
  assert.equal(await pa.locator('#conn-text').textContent(), 'Offline');
  // Presence is unknown while offline: no "This device only".
  assert.equal(await pa.locator('#presence').isVisible(), false);

  // Changes made offline show at once, marked pending.
  await pa.locator('#new-title').fill('Written on the train');
  await pa.locator('#new-title').press('Enter');
  await row(pa, 'Written on the train').and(pa.locator('.is-pending')).waitFor();
  await row(pa, 'Call the bank').locator('.task-check').check();
  await row(pa, 'Call the bank').and(pa.locator('.is-pending[data-completed="true"]')).waitFor();
  assert.equal(await row(pa, 'Written on the train').locator('.sync-note').textContent(), 'Not sent yet: saved on this device');
  await waitFor(async () => (await storedOutbox(pa)).length === 2, { what: 'the outbox stored in IndexedDB' });

  // A reload without network: the shell comes from the service worker, the
  // list and the pending changes from IndexedDB.
  const res = await pa.reload();
  assert.ok(res?.fromServiceWorker(), 'the page came from the service worker');
  await row(pa, 'Written on the train').and(pa.locator('.is-pending')).waitFor();
  await row(pa, 'Call the bank').and(pa.locator('.is-pending[data-completed="true"]')).waitFor();
  await row(pa, 'Water the plants').and(pa.locator(':not(.is-pending)')).waitFor();
  assert.equal(await pa.locator('#conn[data-state="offline"]').count(), 1);
  // Nothing reached the server or the other device.
  assert.ok(!(await titles(pb)).includes('Written on the train'));
  assert.equal((await rest(b, tok, 'GET', `/api/${user}/tasks?q=bank`))[0].completed, false);

  // The network returns: the changes are sent, once.
  await pa.context().setOffline(false);
  await live(pa, 15000);
  await row(pa, 'Written on the train').and(pa.locator(':not(.is-pending)')).waitFor();
  await row(pb, 'Written on the train').waitFor();
  await row(pb, 'Call the bank').and(pb.locator('[data-completed="true"]')).waitFor();
  const all = await rest(b, tok, 'GET', `/api/${user}/tasks`);
  assert.equal(all.filter((t) => t.title === 'Written on the train').length, 1, 'created once');
  assert.equal(all.find((t) => t.title === 'Call the bank').version, 2, 'completed once');
  assert.equal(await row(pb, 'Written on the train').count(), 1);
  assert.deepEqual(await storedOutbox(pa), []);
  await pa.locator('#presence[data-online="2"]').waitFor();

  // Another reload, online: nothing is sent again.
  await pa.reload();
  await live(pa);
  await row(pa, 'Written on the train').and(pa.locator(':not(.is-pending)')).waitFor();
  assert.equal((await rest(b, tok, 'GET', `/api/${user}/tasks`)).filter((t) => t.title === 'Written on the train').length, 1);

  assert.deepEqual(pa.errors.filter((e) => !NETWORK_ERRORS.test(e)), []);
  assert.deepEqual(pb.errors, []);
  await pa.close_();
  await pb.close_();
});
