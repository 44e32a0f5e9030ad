// Test harness: server instances (started, stopped and restarted on the same
// port), tokens, REST calls, the browser and its pages, and waiting on
// conditions with deadlines (never fixed sleeps).

import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, writeFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests with web/test/run.sh`);
  return v;
}

export const env = {
  bin: need('TASKSYNC_SERVER_BIN'),
  db: need('TASKSYNC_TEST_DATABASE_URL'),
  redis: need('TASKSYNC_TEST_REDIS_URL'),
  prefix: need('TASKSYNC_TEST_REDIS_PREFIX'),
  secret: need('TASKSYNC_TEST_SECRET'),
  pids: need('TASKSYNC_TEST_PIDS'),
  logs: need('TASKSYNC_TEST_LOGS'),
  screenshots: need('TASKSYNC_SCREENSHOTS'),
  chromium: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
};

/** Polls fn until it returns a truthy value; fails with what after ms. */
export async function waitFor(fn, { timeout = 15000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** One server process; start() again after stop() reuses the port. */
export class Instance {
  constructor(name, extraEnv = {}) {
    this.name = name;
    this.extraEnv = extraEnv;
    this.port = 0;
    this.proc = null;
    this.starts = 0;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  async start() {
    if (!this.port) this.port = await freePort();
    this.starts++;
    const log = createWriteStream(path.join(env.logs, `${this.name}.log`), { flags: 'a' });
    const proc = spawn(env.bin, ['serve'], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: env.db,
        REDIS_URL: env.redis,
        REDIS_PREFIX: env.prefix,
        LISTEN_ADDR: `127.0.0.1:${this.port}`,
        AUTH_JWT_SECRET: env.secret,
        INSTANCE_ID: `${this.name}-${this.starts}`,
        AUTO_MIGRATE: 'false',
        LOG_LEVEL: 'info',
        SHUTDOWN_TIMEOUT: '5s',
        ...this.extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    this.proc = proc;
    this.exited = once(proc, 'exit');
    writeFileSync(this.pidFile, String(proc.pid));
    let exited = false;
    this.exited.then(() => { exited = true; });
    await waitFor(async () => {
      if (exited) throw new Error(`${this.name} exited at start (see its log)`);
      const res = await fetch(`${this.url}/readyz`);
      return res.ok;
    }, { timeout: 30000, interval: 100, what: `${this.name} /readyz` });
  }

  get pidFile() { return path.join(env.pids, `${this.name}.pid`); }

  /** SIGTERM: the graceful shutdown that closes sockets with 1001. */
  async stop() {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15000);
      await this.exited;
      clearTimeout(killer);
    }
    rmSync(this.pidFile, { force: true });
  }
}

/** A signed dev token, as `server token USER --ttl 1h` prints it. */
export function token(user, ttl = '1h', secret = env.secret) {
  return execFileSync(env.bin, ['token', user, '--ttl', ttl], {
    env: { PATH: process.env.PATH, AUTH_JWT_SECRET: secret },
  }).toString().trim();
}

/** A REST call as user; resolves to the parsed body, throws on an error status. */
export async function rest(inst, tok, method, p, body) {
  const res = await fetch(`${inst.url}${p}`, {
    method,
    headers: { Authorization: `Bearer ${tok}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

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
 * exceptions (errors).
 */
export async function newPage(browser, { width = 1280, height = 860 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
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
