// Real tasksync server instances for the Node test suites (web/test, clients/ts/test): started,
// stopped gracefully (SIGTERM), killed (SIGKILL) and restarted on the same port; dev tokens; REST
// calls; waiting on conditions with deadlines (never fixed sleeps). Node built-ins only, so that
// each suite imports it whatever its own node_modules hold. The environment it reads is set by
// scripts/test-instances.sh (sourced by each suite's run.sh).

import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, writeFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests with their run.sh (web/test/run.sh, clients/ts/test/run.sh)`);
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
  chromium: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
};

/** Polls fn until it returns a truthy value; fails with what after timeout ms. */
export async function waitFor(fn, { timeout = 15000, interval = 25, what = 'condition' } = {}) {
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

/**
 * One server process on the tests' database and Redis; start() again after
 * stop() or kill() reuses the port. extraEnv entries set to null are removed
 * (e.g. AUTH_JWT_SECRET for an instance that only trusts a JWKS).
 */
export class Instance {
  constructor(name, extraEnv = {}) {
    this.name = name;
    this.extraEnv = extraEnv;
    this.port = 0;
    this.proc = null;
    this.starts = 0;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  get wsURL() { return `ws://127.0.0.1:${this.port}`; }

  get pidFile() { return path.join(env.pids, `${this.name}.pid`); }

  async start() {
    if (!this.port) this.port = await freePort();
    this.starts++;
    const log = createWriteStream(path.join(env.logs, `${this.name}.log`), { flags: 'a' });
    const vars = {
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
    };
    for (const [k, v] of Object.entries(vars)) if (v === null || v === undefined) delete vars[k];
    const proc = spawn(env.bin, ['serve'], { env: vars, stdio: ['ignore', 'pipe', 'pipe'] });
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
    }, { timeout: 30000, interval: 50, what: `${this.name} /readyz` });
  }

  /** SIGTERM: the graceful shutdown that closes sockets with 1001. */
  async stop() {
    await this.#signal('SIGTERM');
  }

  /** SIGKILL: a crash; sockets drop without a close frame. */
  async kill() {
    await this.#signal('SIGKILL');
  }

  async #signal(sig) {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill(sig);
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

/** A REST call as the token's user; resolves to the parsed body, throws on an error status. */
export async function rest(inst, tok, method, p, body, headers = {}) {
  const res = await fetch(`${inst.url}${p}`, {
    method,
    headers: { Authorization: `Bearer ${tok}`, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
