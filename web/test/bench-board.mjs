// The board at 50 / 600 / 5,000 tasks, measured in Chromium (run by
// web/test/bench.sh, which provides the server and database):
//
//   first render   navigation start -> the frame after the last row is in
//                  the list (performance.mark "bench:rendered", ms since
//                  the navigation started)
//   change to row  a REST PATCH of one task's title (sent from Node) -> the
//                  frame after the row shows the new title (mark
//                  "bench:change-seen"); the clocks are one machine's
//                  (performance.timeOrigin + now() on both sides)
//   reload render  the same for a reload of the page (the browser profile
//                  and the SDK's stored state kept)
//   rows touched   how many task rows the DOM mutations of that change
//                  touched (1 is a keyed update; N is a redraw)
//
// It only reads the DOM (#tasks li.task, .task-title), so it measures any
// build of the board: BENCH_SERVER_BIN selects the build.

import { performance } from 'node:perf_hooks';
import { Instance, token, rest, sql, launchBrowser, newPage, waitFor } from './harness.mjs';

const sizes = (process.env.BENCH_SIZES || '50 600 5000').split(/\s+/).filter(Boolean).map(Number);
const changes = Number(process.env.BENCH_CHANGES || 15);

// Before any script of the page: marks the first frame with `want` rows, and
// watches #tasks for the change the benchmark waits for.
function probe(want) {
  window.__bench = { want, rendered: 0, seen: 0, touched: 0, waitFor: null };
  const rows = new Set();
  const tick = () => {
    const list = document.getElementById('tasks');
    if (list && list.childElementCount >= window.__bench.want) {
      performance.mark('bench:rendered');
      window.__bench.rendered = performance.now();
      const obs = new MutationObserver((records) => {
        for (const r of records) {
          const n = r.target.nodeType === 1 ? r.target : r.target.parentElement;
          const li = n?.closest?.('li.task');
          if (li) rows.add(li);
          for (const added of r.addedNodes) if (added.nodeType === 1 && added.matches('li.task')) rows.add(added);
        }
        const w = window.__bench.waitFor;
        if (w && !window.__bench.seen) {
          const hit = [...list.querySelectorAll('.task-title')].some((el) => el.textContent === w);
          if (hit) {
            requestAnimationFrame(() => {
              performance.mark('bench:change-seen');
              window.__bench.seen = performance.timeOrigin + performance.now();
              window.__bench.touched = rows.size;
            });
            window.__bench.seen = -1;
          }
        }
      });
      obs.observe(list, { subtree: true, childList: true, characterData: true, attributes: true });
      window.__bench.expect = (title) => {
        rows.clear();
        window.__bench.seen = 0;
        window.__bench.waitFor = title;
      };
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

const inst = new Instance('bench');
await inst.start();
const browser = await launchBrowser();
const results = [];
try {
  // A warm-up board, not reported: the browser's first page pays for its own start.
  for (const size of [0, ...sizes]) {
    const warmup = size === 0;
    const n = warmup ? 20 : size;
    const user = warmup ? 'benchwarmup' : `bench${n}`;
    sql(`INSERT INTO tasks (user_id, title, priority, tags) SELECT '${user}', 'Bench task ' || lpad(g::text, 5, '0'),
      (ARRAY['low','medium','high'])[1 + g % 3], ARRAY['t' || (g % 7)] FROM generate_series(1, ${n}) g`);
    const tok = token(user);
    const ids = (await rest(inst, tok, 'GET', `/api/${user}/tasks?limit=${Math.min(n, 500)}`)).map((t) => t.id);
    const page = await newPage(browser);
    await page.addInitScript(probe, n);
    await page.goto(`${inst.url}/#token=${tok}`);
    await page.waitForFunction(() => window.__bench?.rendered > 0, null, { timeout: 120000, polling: 100 });
    const first = await page.evaluate(() => window.__bench.rendered);
    // Let the first render's tail (tag lists, late frames) settle.
    await page.waitForTimeout(500);
    const took = [];
    const touched = [];
    for (let i = 0; i < changes; i++) {
      const id = ids[(i * 37) % ids.length];
      const title = `Changed ${n}-${i}`;
      await page.evaluate((t) => window.__bench.expect(t), title);
      const t0 = performance.timeOrigin + performance.now();
      await rest(inst, tok, 'PATCH', `/api/${user}/tasks/${id}`, { title });
      await waitFor(() => page.evaluate(() => window.__bench.seen > 0), { timeout: 30000, interval: 5, what: `change ${i} on screen` });
      const { seen, touched: t } = await page.evaluate(() => window.__bench);
      took.push(seen - t0);
      touched.push(t);
    }
    // A reload of the same page (same profile: a build that keeps state can show it before the server answers).
    await page.reload();
    await page.waitForFunction(() => window.__bench?.rendered > 0, null, { timeout: 120000, polling: 100 });
    const again = await page.evaluate(() => window.__bench.rendered);
    const r = { tasks: n, first_render_ms: Math.round(first), reload_render_ms: Math.round(again),
      change_to_row_ms_median: Math.round(median(took)),
      change_to_row_ms_max: Math.round(Math.max(...took)), rows_touched_median: median(touched) };
    if (!warmup) {
      results.push(r);
      console.log(JSON.stringify(r));
    }
    await page.close_();
  }
} finally {
  await browser.close();
  await inst.stop();
}
console.log('\n| tasks | first render | render after a reload | change to row (median / max) | rows touched per change |');
console.log('|---:|---:|---:|---:|---:|');
for (const r of results) {
  console.log(`| ${r.tasks} | ${r.first_render_ms} ms | ${r.reload_render_ms} ms | ${r.change_to_row_ms_median} / ${r.change_to_row_ms_max} ms | ${r.rows_touched_median} |`);
}
