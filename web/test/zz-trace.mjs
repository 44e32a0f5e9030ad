import { Instance, token, rest, sql, launchBrowser, newPage } from './harness.mjs';
const inst = new Instance('trace');
await inst.start();
const browser = await launchBrowser();
for (const n of [20, 50, 50]) {
  const user = `tr${n}${Math.random().toString(36).slice(2,6)}`;
  sql(`INSERT INTO tasks (user_id, title) SELECT '${user}', 'T ' || g FROM generate_series(1, ${n}) g`);
  const tok = token(user);
  const p = await newPage(browser);
  await p.addInitScript(() => {
    const OW = WebSocket;
    window.WebSocket = class extends OW { constructor(...a) { performance.mark('ws-new'); super(...a); this.addEventListener('open', () => performance.mark('ws-open')); this.addEventListener('message', (e) => { const t = JSON.parse(e.data).type; performance.mark('ws-' + t); }); } };
  });
  await p.goto(`${inst.url}/#token=${tok}`);
  await p.waitForFunction((n) => document.getElementById('tasks')?.childElementCount >= n, n);
  const r = await p.evaluate(() => ({
    nav: performance.getEntriesByType('navigation').map((e) => [e.domContentLoadedEventEnd|0, e.loadEventEnd|0]),
    res: performance.getEntriesByType('resource').map((e) => [new URL(e.name).pathname, e.startTime|0, e.responseEnd|0]),
    marks: performance.getEntriesByType('mark').map((m) => [m.name, m.startTime|0]),
    now: performance.now()|0,
  }));
  console.log(n, JSON.stringify(r));
  await p.close_();
}
await browser.close(); await inst.stop();
