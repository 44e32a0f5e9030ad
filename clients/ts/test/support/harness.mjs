// Harness of the SDK's integration and browser tests: tasksync server
// instances (started, stopped gracefully, killed with SIGKILL, restarted on
// the same port), tokens, REST calls, a WebSocket constructor that records
// and validates every frame, and waiting on conditions with deadlines
// (never fixed sleeps). Run through clients/ts/test/run.sh, which builds the
// server, makes the database and sets the environment read here.

import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, writeFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { WebSocket as WS } from 'ws';
import { validateClientFrame, validateServerFrame } from './frames.mjs';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests with clients/ts/test/run.sh`);
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

/** A unique user id (tests share one database). */
export function uniqueUser(name) {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

let instanceCount = 0;

/**
 * One server process on the tests' database and Redis; start() again after
 * stop() or kill() reuses the port. env entries set to null are removed
 * (e.g. AUTH_JWT_SECRET for an instance that only trusts a JWKS).
 */
export class Instance {
  constructor(name, extraEnv = {}) {
    this.name = `${name}-${process.pid}-${++instanceCount}`;
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
      PRESENCE_TTL: '3s',
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

/** A REST call; resolves to the parsed body, throws on an error status. */
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

/** Every task of user on the server (REST, all pages). */
export async function serverTasks(inst, tok, user) {
  const out = [];
  let cursor = '';
  for (;;) {
    const res = await fetch(`${inst.url}/api/${user}/tasks?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { headers: { Authorization: `Bearer ${tok}` } });
    if (!res.ok) throw new Error(`GET tasks: ${res.status} ${await res.text()}`);
    const body = await res.json();
    const page = Array.isArray(body) ? body : (body.tasks ?? body.items ?? []);
    out.push(...page);
    cursor = res.headers.get('X-Next-Cursor') || (Array.isArray(body) ? '' : body.next_cursor || '');
    if (!cursor || page.length === 0) return out;
  }
}

/**
 * A WebSocket constructor for createClient (the `ws` package, which Node 20
 * needs) that records every socket it opens and every frame sent and
 * received, and checks each against the frame schemas (test/support/frames.mjs):
 * anything that does not validate lands in rec.invalid (assert it is empty at the end).
 * rec.mute = true keeps every incoming frame from the client (still
 * recorded): the server applies what it is sent, but no reply arrives, as
 * when it dies between the commit and the reply.
 */
export function recordingWebSocket() {
  const rec = { opened: [], sockets: [], sent: [], received: [], invalid: [], mute: false };
  class RecordingWebSocket extends WS {
    #onmessage = null;

    get onmessage() { return this.#onmessage; }

    set onmessage(fn) {
      this.#onmessage = fn;
      super.onmessage = fn ? (ev) => { if (!rec.mute) fn.call(this, ev); } : null;
    }

    addEventListener(type, fn, opts) {
      if (type !== 'message') return super.addEventListener(type, fn, opts);
      return super.addEventListener(type, (ev) => { if (!rec.mute) fn.call(this, ev); }, opts);
    }

    constructor(url, protocols, options) {
      super(url, protocols, options);
      rec.opened.push(String(url));
      rec.sockets.push(this);
      super.addEventListener('message', (ev) => {
        let f;
        try {
          f = JSON.parse(String(ev.data));
        } catch {
          rec.invalid.push(`received non-JSON: ${String(ev.data).slice(0, 200)}`);
          return;
        }
        rec.received.push(f);
        try { validateServerFrame(f); } catch (e) { rec.invalid.push(`received: ${e.message}`); }
      });
    }

    send(data) {
      try {
        const f = JSON.parse(String(data));
        rec.sent.push(f);
        try { validateClientFrame(f); } catch (e) { rec.invalid.push(`sent: ${e.message}`); }
      } catch {
        rec.invalid.push(`sent non-JSON: ${String(data).slice(0, 200)}`);
      }
      super.send(data);
    }
  }
  return { WebSocket: RecordingWebSocket, rec };
}

/** Resolves with the first state of client.connection that satisfies pred. */
export function connectionState(client, pred, { timeout = 20000, what = 'connection state' } = {}) {
  return new Promise((resolve, reject) => {
    let unsub = () => {};
    const timer = setTimeout(() => {
      unsub();
      reject(new Error(`timed out after ${timeout} ms waiting for ${what}; state ${JSON.stringify(client.connection.get())}`));
    }, timeout);
    const check = (s) => {
      if (pred(s)) {
        clearTimeout(timer);
        queueMicrotask(() => unsub());
        resolve(s);
        return true;
      }
      return false;
    };
    if (check(client.connection.get())) return;
    unsub = client.connection.subscribe((s) => check(s ?? client.connection.get()));
  });
}

/** Records every state the client goes through. */
export function recordStates(client) {
  const states = [client.connection.get()];
  client.connection.subscribe((s) => states.push(s ?? client.connection.get()));
  return states;
}

/** Tasks of a view once pred holds on its snapshot. */
export function viewSatisfies(view, pred, opts = {}) {
  return waitFor(() => {
    const snap = view.getSnapshot();
    return pred(snap) ? snap : null;
  }, { what: 'the task view', ...opts });
}
