// Test harness of the board's browser tests: server instances, tokens, REST
// calls and waiting with deadlines come from scripts/testkit/instances.mjs
// (shared with the SDK's tests); here: SQL as another program, the browser
// and its pages.

import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { env as base } from '../../scripts/testkit/instances.mjs';

export { waitFor, freePort, Instance, token, rest } from '../../scripts/testkit/instances.mjs';

export const env = {
  ...base,
  screenshots: process.env.TASKSYNC_SCREENSHOTS || (() => { throw new Error('TASKSYNC_SCREENSHOTS is not set: run the browser tests with web/test/run.sh'); })(),
};

/** Runs SQL on the tests' database as another program would (psql), outside the server. */
export function sql(statement) {
  return execFileSync('psql', ['-X', '-w', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', env.db, '-c', statement],
    { env: { PATH: process.env.PATH } }).toString().trim();
}

// Flags from shared/FIELD-NOTES.md: no sandbox (root), no GPU, nothing that
// phones home; the dead proxy sends Chromium's own outside requests nowhere
// while loopback pages and sockets bypass it (Chromium never proxies
// loopback by default; --proxy-bypass-list=<-loopback> would undo that).
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--proxy-server=http://127.0.0.1:9',
];

export async function launchBrowser() {
  return chromium.launch({ executablePath: env.chromium, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A page in its own context (its own sessionStorage: another device),
 * recording every console line (console), console errors and uncaught
 * exceptions (errors). timezoneId: the browser's zone (default the machine's).
 */
export async function newPage(browser, { width = 1280, height = 860, timezoneId } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1, timezoneId });
  const page = await context.newPage();
  page.errors = [];
  page.console = [];
  page.on('console', (m) => {
    page.console.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.errors.push(`exception: ${e.message}`));
  page.close_ = () => context.close();
  return page;
}

/** Opens the board of inst signed in with tok (through the URL fragment) and waits until it is live and loaded. */
export async function openBoard(page, inst, tok) {
  await page.goto(`${inst.url}/#token=${tok}`);
  await live(page);
  await page.waitForFunction(() => window.tasksync?.board.loaded === true);
  return page;
}

export async function live(page, timeout = 15000) {
  await page.locator('#conn[data-state="live"]').waitFor({ timeout });
}

/** The row of the task titled title. */
export function row(page, title) {
  return page.locator('#tasks li.task').filter({ has: page.locator('.task-title', { hasText: new RegExp(`^${escape(title)}$`) }) });
}

export function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Titles on the board, in order. */
export async function titles(page) {
  return page.locator('#tasks .task-title').allTextContents();
}
