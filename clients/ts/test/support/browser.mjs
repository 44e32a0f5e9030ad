// Chromium for the SDK's browser tests (flags from shared/FIELD-NOTES.md, as
// web/test/harness.mjs launches it).

import { chromium } from 'playwright-core';
import { env } from './harness.mjs';
import { validateClientFrame, validateServerFrame } from './frames.mjs';

// No sandbox (root), no GPU, nothing that phones home; the dead proxy sends
// Chromium's own outside requests nowhere while loopback bypasses it.
// LocalNetworkAccessChecks is off because the test pages are fulfilled by
// the test (page.route) on the server's origin: such a document has no
// address space, and Chromium would refuse its sockets to 127.0.0.1.
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--proxy-server=http://127.0.0.1:9', '--disable-features=LocalNetworkAccessChecks',
];

export function launchBrowser() {
  return chromium.launch({ executablePath: env.chromium, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A page in its own context, recording console errors and uncaught
 * exceptions in page.errors, and checking every socket frame the page sends
 * and receives against docs/schemas (page.frames counts them; the ones that
 * do not validate land in page.errors too). A received message may hold
 * several frames, one per line (batch=1): each is counted and checked.
 */
export async function newPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.frames = { sent: 0, received: 0 };
  const check = (validate, dir, payload) => {
    page.frames[dir]++;
    try {
      validate(JSON.parse(payload));
    } catch (e) {
      page.errors.push(`frame ${dir}: ${e.message}`);
    }
  };
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => check(validateClientFrame, 'sent', String(payload)));
    ws.on('framereceived', ({ payload }) => {
      for (const line of String(payload).split('\n')) if (line !== '') check(validateServerFrame, 'received', line);
    });
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/ERR_INTERNET_DISCONNECTED|WebSocket connection to/.test(m.text())) page.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.errors.push(`exception: ${e.message}`));
  return { context, page };
}

/**
 * Serves html at url (on the server's origin) from the test, and every
 * /sdk/ file through a cache filled from the server on first use, as an
 * offline-capable app (a service worker) would: the page reloads while the
 * browser is offline.
 */
export async function servePage(page, origin, path, html) {
  await page.route(`${origin}${path}`, (r) => r.fulfill({ contentType: 'text/html; charset=utf-8', body: html }));
  const cache = new Map();
  page.sdkFetches = 0;
  await page.route(`${origin}/sdk/**`, async (r) => {
    const url = r.request().url();
    let c = cache.get(url);
    if (!c) {
      const res = await r.fetch();
      page.sdkFetches++;
      c = { status: res.status(), headers: res.headers(), body: await res.body() };
      if (res.ok()) cache.set(url, c);
    }
    await r.fulfill(c);
  });
}
