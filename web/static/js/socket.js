// The one socket of this page (docs/PROTOCOL.md): connecting, requests and
// their replies, reconnecting with exponential backoff and full jitter,
// resuming from the last applied seq, and what each close code means.
//
// The token goes in the subprotocols, never in the URL: browsers print the
// URL of every failed socket in the console (and URLs end up in history
// and proxy logs). The server answers with PROTOCOL alone.
//
// States (onState): connecting, live, reconnecting, offline (the browser
// says it has no network), auth (the token expired or is refused: a new
// one is needed), signed-out (4003, 4010: sign in again), closed (the
// server ended the session with 1000, or stop() was called).

/** The subprotocol of docs/PROTOCOL.md; the token is offered next to it as "bearer.<token>". */
export const PROTOCOL = 'tasksync.v1';
const BEARER_PREFIX = 'bearer.';

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 20000;
const HEARTBEAT_MS = 30000; // an application ping when nothing arrived for this long
const PONG_TIMEOUT_MS = 10000;

/** What the close codes of docs/PROTOCOL.md ask of a client. */
export const CloseCodes = {
  1000: 'normal', 1001: 'going away', 1002: 'not a tasksync.v1 server', 1006: 'connection lost', 1009: 'message too big',
  1011: 'server error', 4001: 'token expired', 4003: 'forbidden', 4008: 'slow consumer',
  4009: 'too many sockets', 4010: 'session revoked', 4029: 'rate limited',
};

/** An error frame answering a request. */
export class RequestError extends Error {
  constructor(frame) {
    super(frame.message || frame.code || 'request failed');
    this.code = frame.code;
    this.frame = frame;
  }
}

/** A request that could not be sent or answered because the socket is down. */
export class DisconnectedError extends Error {
  constructor() {
    super('not connected to the server');
    this.code = 'disconnected';
  }
}

export function backoffDelay(attempt, base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS) {
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  // "Equal jitter": never less than half the step, so that a fleet of
  // clients spreads out but none hammers the server at once.
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function deviceLabel() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS'
    : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

export class Connection {
  /**
   * @param {object} o
   * @param {import('./auth.js').TokenSource} o.tokens
   * @param {() => number} o.since the last applied seq, or -1 for a full snapshot
   * @param {(hello: object) => void} o.onHello
   * @param {(frame: object) => void} o.onFrame every frame that is not only a reply
   * @param {(s: {state: string, reason?: string, retryAt?: number, code?: number}) => void} o.onState
   * @param {() => Promise<'rejected'|'accepted'|'unreachable'>} o.probe a REST call that tells a refused token from a down server
   */
  constructor(o) {
    Object.assign(this, o);
    this.ws = null;
    this.state = 'idle';
    this.attempt = 0; // failed attempts since the last hello
    this.pending = new Map(); // request id → entry, in send order
    this.nextId = 1;
    this.timer = 0;
    this.heartbeat = 0;
    this.lastFrameAt = 0;
    this.hello = null;
    this.stopped = false;
    this.onOnline = () => { if (this.state === 'offline' || this.state === 'reconnecting') this.connectNow(); };
    this.onOffline = () => { if (this.state !== 'live') this.setState({ state: 'offline' }); };
    addEventListener('online', this.onOnline);
    addEventListener('offline', this.onOffline);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  /** Closes for good (sign-out): no reconnect, pending requests fail. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    removeEventListener('online', this.onOnline);
    removeEventListener('offline', this.onOffline);
    if (this.ws) this.abandon(1000, 'signed out');
    this.failPending(() => true);
    this.setState({ state: 'closed' });
  }

  /** Reconnects now (a "retry now" button, the network coming back, a new token). */
  connectNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.ws) return;
    this.connect();
  }

  setState(s) {
    this.state = s.state;
    this.onState(s);
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped || this.ws) return;
    if (!navigator.onLine) {
      this.setState({ state: 'offline' });
      return;
    }
    if (this.tokens.expired(5000)) {
      this.needToken('expired');
      return;
    }
    this.setState({ state: this.hello ? 'reconnecting' : 'connecting', reason: this.hello ? 'connecting' : undefined });
    // since and device are no secrets; the token is.
    const params = new URLSearchParams({ since: String(this.since()), device: deviceLabel() });
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/ws?${params}`, [PROTOCOL, BEARER_PREFIX + this.tokens.token]);
    } catch {
      // A SyntaxError: the token holds characters a subprotocol cannot
      // (a JWT never does), so no server could accept it.
      this.needToken('rejected');
      return;
    }
    this.ws = ws;
    let greeted = false;
    ws.onopen = () => {
      if (ws.protocol === PROTOCOL) return;
      // Not a tasksync.v1 server (or a proxy that dropped the header):
      // nothing it says can be trusted to mean what this client thinks.
      this.abandon(1000, 'unsupported protocol');
      this.closed(1002, `the server answered subprotocol "${ws.protocol}", not ${PROTOCOL}`, false);
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return; // the server only sends JSON; nothing sensible to do with anything else
      }
      if (f.type === 'hello') {
        greeted = true;
        this.greeted(f);
        return;
      }
      this.frame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      this.closed(ev.code, ev.reason, greeted);
    };
    ws.onerror = () => {}; // onclose follows with the code
  }

  greeted(hello) {
    this.hello = hello;
    this.attempt = 0;
    this.setState({ state: 'live' });
    this.onHello(hello);
    // Requests that survive reconnects (mutations carry a mutation_id, so
    // a resend is applied once) go again, in their original order.
    for (const entry of this.pending.values()) {
      if (!entry.sent) this.transmit(entry);
    }
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS / 3);
  }

  /** Detects a socket that died without a close (sleep, a dropped network). */
  beat() {
    if (this.state !== 'live' || Date.now() - this.lastFrameAt < HEARTBEAT_MS) return;
    const ws = this.ws;
    this.request({ type: 'ping' }, { timeoutMs: PONG_TIMEOUT_MS }).catch(() => {
      if (this.ws === ws && ws) {
        this.abandon(4000, 'no pong');
        this.closed(1006, 'no answer to ping', true);
      }
    });
  }

  /** Drops the current socket without waiting for its close handshake. */
  abandon(code, reason) {
    const ws = this.ws;
    this.ws = null;
    clearInterval(this.heartbeat);
    ws.onclose = ws.onmessage = null;
    try { ws.close(code, reason); } catch { /* already closing */ }
  }

  frame(f) {
    const entry = f.id !== undefined ? this.pending.get(String(f.id)) : undefined;
    if (entry && f.type === 'error') {
      if (f.code === 'rate_limited') {
        // The frame was dropped: send it again once the bucket refilled.
        entry.sent = false;
        setTimeout(() => { if (this.pending.has(entry.id) && this.state === 'live') this.transmit(entry); },
          Math.max(50, f.retry_after_ms || 1000));
        return;
      }
      this.settle(entry);
      entry.reject(new RequestError(f));
      return;
    }
    if (entry && (f.type === 'reply' || f.type === 'pong' || f.type === 'synced')) {
      this.settle(entry);
      entry.resolve(f);
      return;
    }
    if (entry && f.type === 'snapshot') {
      this.settle(entry);
      entry.resolve(f);
    }
    this.onFrame(f);
  }

  settle(entry) {
    this.pending.delete(entry.id);
    clearTimeout(entry.timer);
  }

  /**
   * Sends a request; resolves with its reply, rejects with a RequestError
   * (an error frame) or a DisconnectedError. With resend, the request
   * waits for (and is sent again after) a reconnect instead of failing:
   * only for frames that are safe to repeat (mutations with a mutation_id).
   * A frame may bring its own string id (chat.send does, to recognise its
   * turn's chat.started before the reply).
   */
  request(frame, { resend = false, timeoutMs = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const id = frame.id !== undefined ? String(frame.id) : 'c' + this.nextId++;
      const entry = { id, frame: { ...frame, id }, resolve, reject, resend, sent: false, timer: 0 };
      if (!resend && this.state !== 'live') {
        reject(new DisconnectedError());
        return;
      }
      this.pending.set(id, entry);
      if (timeoutMs) {
        entry.timer = setTimeout(() => {
          if (this.pending.delete(id)) reject(new DisconnectedError());
        }, timeoutMs);
      }
      if (this.state === 'live') this.transmit(entry);
    });
  }

  transmit(entry) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    entry.sent = true;
    this.ws.send(JSON.stringify(entry.frame));
  }

  /** Fails the pending requests that match (those that cannot wait for a reconnect). */
  failPending(match) {
    for (const entry of [...this.pending.values()]) {
      if (match(entry)) {
        this.settle(entry);
        entry.reject(new DisconnectedError());
      } else {
        entry.sent = false;
      }
    }
  }

  /** Acts on a close code as docs/PROTOCOL.md asks. */
  async closed(code, reason, greeted) {
    this.failPending((e) => !e.resend);
    if (this.stopped) return;
    switch (code) {
      case 1000: // the server ended the session on request: do not reconnect
        this.setState({ state: 'closed', code, reason: 'The server ended this session.' });
        return;
      case 1001: // this instance is shutting down: another one answers at once
        this.retryIn(150 + Math.random() * 350, code);
        return;
      case 4001: // the token expired without auth.refresh
        this.needToken('expired');
        return;
      case 4003: // auth.refresh brought another user's token
        this.setState({ state: 'signed-out', code, reason: 'The new token belongs to another user. Sign in again.' });
        return;
      case 4010: // sign out everywhere
        this.setState({ state: 'signed-out', code, reason: 'You were signed out everywhere. Sign in again.' });
        return;
      case 4009: // too many sockets for this user on that instance
        this.attempt++;
        this.retryIn(Math.max(30000, backoffDelay(this.attempt)), code,
          'Too many open tabs or devices for this account. Close one; retrying in a while.');
        return;
      case 4029: // kept sending after rate_limited
        this.attempt++;
        this.retryIn(Math.max(5000, backoffDelay(this.attempt)), code);
        return;
      default: // 1006 (dropped, or refused before the upgrade), 1002 (not tasksync.v1), 1009, 1011, 4008
        this.attempt++;
        if (this.tokens.expired(5000)) {
          this.needToken('expired');
          return;
        }
        // A browser sees a 401 before the upgrade as 1006: confirm with a
        // REST call on the first failure of a streak and now and then.
        if (!greeted && (this.attempt === 1 || this.attempt % 4 === 0)) {
          const verdict = await this.probe();
          if (this.stopped || this.ws) return;
          if (verdict === 'rejected') {
            this.needToken('rejected');
            return;
          }
        }
        this.retryIn(backoffDelay(this.attempt), code);
    }
  }

  retryIn(ms, code, reason) {
    const retryAt = Date.now() + ms;
    this.setState({ state: navigator.onLine ? 'reconnecting' : 'offline', code, reason, retryAt });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), ms);
  }

  needToken(why) {
    this.setState({ state: 'auth', reason: why });
    if (this.tokens.canRefresh) {
      this.tokens.refresh().then(() => this.connectNow(), () => {});
    }
  }

  /** auth.refresh: hands the live socket a newer token of the same user. */
  async refreshToken(token) {
    const reply = await this.request({ type: 'auth.refresh', token });
    return reply.expires_at;
  }
}
