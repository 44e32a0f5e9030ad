// Harness of the SDK's integration and browser tests: tasksync server
// instances (started, stopped gracefully, killed with SIGKILL, restarted on
// the same port), tokens, REST calls, a WebSocket constructor that records
// and validates every frame, and waiting on conditions with deadlines
// (never fixed sleeps). Run through clients/ts/test/run.sh, which builds the
// server, makes the database and sets the environment read here.

import { randomBytes } from 'node:crypto';
import { WebSocket as WS } from 'ws';
import { Instance as BaseInstance, waitFor } from '../../../../scripts/testkit/instances.mjs';
import { validateClientFrame, validateServerFrame } from './frames.mjs';

export { env, waitFor, freePort, token, rest } from '../../../../scripts/testkit/instances.mjs';

/** A unique user id (tests share one database). */
export function uniqueUser(name) {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

let instanceCount = 0;

/**
 * A server instance (scripts/testkit/instances.mjs) with a name unique to
 * this process, and presence entries that expire after 3 s (a killed
 * instance's sessions leave the list quickly).
 */
export class Instance extends BaseInstance {
  constructor(name, extraEnv = {}) {
    super(`${name}-${process.pid}-${++instanceCount}`, { PRESENCE_TTL: '3s', ...extraEnv });
  }
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
 * received (a received message may hold several frames, one per line: batch=1),
 * and checks each against the frame schemas (test/support/frames.mjs):
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
        for (const line of String(ev.data).split('\n')) {
          if (line === '') continue;
          let f;
          try {
            f = JSON.parse(line);
          } catch {
            rec.invalid.push(`received non-JSON: ${line.slice(0, 200)}`);
            continue;
          }
          rec.received.push(f);
          try { validateServerFrame(f); } catch (e) { rec.invalid.push(`received: ${e.message}`); }
        }
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
