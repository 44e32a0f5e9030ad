// The one socket of a client (docs/PROTOCOL.md): connecting with the token in
// the subprotocols (never in the URL), failing over across a list of URLs
// with full-jitter exponential backoff, requests matched to their replies by
// id with at most max_in_flight of them on the wire, what each close code
// asks for, in-band token refresh before token_expires_at, and going offline
// and online at once when the network says so.
//
// A refused token is not retried in a loop: the state becomes
// "unauthenticated" and stays there until getToken() hands out a different
// token that has not expired (tried once by itself, then on reconnect()).

import { Cell, type Observable } from "./observable.js";
import { DisconnectedError, RequestError } from "./errors.js";
import type { ClientFrame, ErrorFrame, HelloFrame, ServerFrame } from "./protocol.gen.js";
import { tokenExpired, tokenExpiry, tokenUser } from "./token.js";

/** The subprotocol of docs/PROTOCOL.md; the token is offered beside it as "bearer.<token>". */
export const PROTOCOL = "tasksync.v1";
const BEARER_PREFIX = "bearer.";

/** Close codes of docs/PROTOCOL.md and what they mean to a client. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  Abnormal: 1006,
  TooBig: 1009,
  Internal: 1011,
  Unauthorized: 4001,
  Forbidden: 4003,
  SlowConsumer: 4008,
  TooManySockets: 4009,
  Revoked: 4010,
  RateLimited: 4029,
} as const;

/** What the connection is doing. */
export type ConnectionStatus = "connecting" | "live" | "offline" | "reconnecting" | "unauthenticated" | "closed";

/** The connection's state, as client.connection publishes it. */
export interface ConnectionState {
  status: ConnectionStatus;
  /** The socket URL in use (or being tried). */
  url?: string;
  /** The server instance that said hello. */
  instance?: string;
  /** This socket's session id (from hello). */
  sessionId?: string;
  /** The last change seq applied locally (-1 before the first snapshot). */
  seq: number;
  /** When a reconnect is scheduled (ms since the epoch), while reconnecting. */
  retryAt?: number;
  /** Why the last socket ended or could not start. */
  error?: { code?: number; message: string };
}

/** The part of the WebSocket API the client uses (browsers' WebSocket and the `ws` package both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // Event parameters are `any` so that both the DOM's and the `ws` package's
  // event types fit; the client reads ev.data (message), ev.code and
  // ev.reason (close), and ev.message (error, `ws` only).
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

/** A WebSocket constructor: globalThis.WebSocket, or `WebSocket` from the `ws` package on Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Where the client learns whether the network is up. */
export interface OnlineSource {
  isOnline(): boolean;
  /** Calls cb(true|false) when the network comes or goes; returns the unsubscribe function. */
  subscribe(cb: (online: boolean) => void): () => void;
}

/**
 * What a TokenGetter may return: the token itself, or an object holding it as
 * `token` or `data.token` (Better Auth's `authClient.token()` resolves to
 * `{ data: { token } }`, or `{ data: null, error }` when signed out), or
 * null/undefined when signed out.
 */
export type TokenResult = string | { token?: string | null } | { data?: { token?: string | null } | null } | null | undefined;

/** Provides a token: a JWT (or any token the server accepts), or null when signed out. */
export type TokenGetter = () => Promise<TokenResult> | TokenResult;

/** The token a TokenGetter returned, or null. */
export function tokenOf(t: TokenResult): string | null {
  if (typeof t === "string") return t !== "" ? t : null;
  if (t === null || typeof t !== "object") return null;
  const inner = "data" in t ? t.data?.token : "token" in t ? t.token : undefined;
  return typeof inner === "string" && inner !== "" ? inner : null;
}

/** navigator.onLine and the window's online/offline events; always online where they do not exist (Node). */
export function browserOnline(): OnlineSource {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  const target = globalThis as unknown as Partial<Pick<Window, "addEventListener" | "removeEventListener">>;
  return {
    isOnline: () => nav?.onLine !== false,
    subscribe(cb) {
      if (typeof target.addEventListener !== "function" || typeof target.removeEventListener !== "function") {
        return () => {};
      }
      const on = () => cb(true);
      const off = () => cb(false);
      target.addEventListener("online", on);
      target.addEventListener("offline", off);
      return () => {
        target.removeEventListener!("online", on);
        target.removeEventListener!("offline", off);
      };
    },
  };
}

/**
 * A full-jitter exponential backoff delay: uniformly random in
 * [0, min(maxMs, minMs * 2^attempt)], so that a fleet of clients dropped at
 * once does not come back at once.
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt));
  return Math.round(random() * ceiling);
}

/** Turns a base URL (http, https, ws or wss; with or without /ws) into the socket URL. */
export function socketURL(base: string): string {
  const u = new URL(base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (!u.pathname.endsWith("/ws")) u.pathname = u.pathname.replace(/\/?$/, "/ws");
  u.search = "";
  u.hash = "";
  return u.toString();
}

/** The REST base URL beside a socket URL (for the 401 probe). */
export function restBase(socket: string): string {
  const u = new URL(socket);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  u.pathname = u.pathname.replace(/\/ws$/, "");
  u.search = "";
  return u.toString().replace(/\/$/, "");
}

export interface ConnectionOptions {
  urls: string[];
  WebSocket: WebSocketConstructor;
  getToken: TokenGetter;
  fetch?: typeof fetch;
  device?: string;
  backoff: { minMs: number; maxMs: number };
  refreshBeforeMs: number;
  online: OnlineSource;
  /** How long without a frame before an application ping checks the socket. */
  heartbeatMs: number;
  /** The seq to resume after (-1: ask for a snapshot). */
  since(): number;
  /** A socket said hello (before the state turns live and queued requests go out). */
  onHello(hello: HelloFrame): void;
  /** Every frame after hello, replies included (after their promise settled). */
  onFrame(frame: ServerFrame): void;
  /** The live socket went away (closed, dropped, offline). */
  onDown(): void;
}

interface Pending {
  id: string;
  frame: ClientFrame & { id: string };
  wait: boolean;
  resolve(frame: ServerFrame): void;
  reject(err: Error): void;
}

/** Options of Connection.request. */
export interface RequestOptions {
  /** Wait for the socket to be live instead of failing at once (the request still fails if the socket drops after sending it). */
  wait?: boolean;
  /** Fail with DisconnectedError when no answer came within this many ms. */
  timeoutMs?: number;
}

const HELLO_TIMEOUT_MS = 15000;
const PONG_TIMEOUT_MS = 10000;

export class Connection {
  readonly #o: ConnectionOptions;
  readonly #state: Cell<ConnectionState>;
  #ws: WebSocketLike | null = null;
  #greeted = false;
  #hello: HelloFrame | null = null;
  #token: string | null = null;
  #refused: string | null = null; // the token the server refused last
  #autoRetried = false;
  #urlIndex = 0;
  #attempt = 0; // failures since the last hello
  #epoch = 0; // bumped whenever a connect attempt is abandoned
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #lastFrameAt = 0;
  #nextId = 1;
  #queue: Pending[] = []; // waiting for the socket or for an in-flight slot
  #inFlight = new Map<string, Pending>();
  #unsubscribeOnline: () => void;

  constructor(o: ConnectionOptions) {
    if (o.urls.length === 0) throw new TypeError("tasksync: at least one url is needed");
    this.#o = o;
    this.#state = new Cell<ConnectionState>({ status: "connecting", seq: o.since() });
    this.#unsubscribeOnline = o.online.subscribe((up) => (up ? this.#goOnline() : this.#goOffline()));
  }

  /** The connection state. */
  get state(): Observable<ConnectionState> {
    return this.#state;
  }

  /** The last hello (null before the first one). */
  get hello(): HelloFrame | null {
    return this.#hello;
  }

  /** The user the connection is signed in as: from hello, else from the token. */
  get userId(): string | null {
    return this.#hello?.user_id ?? (this.#token ? tokenUser(this.#token) : null);
  }

  get live(): boolean {
    return this.#state.get().status === "live";
  }

  /** Starts connecting (once). */
  start(): void {
    void this.#connect();
  }

  /** Connects now: after unauthenticated (with a new token), or to skip a backoff wait. A live socket is kept. */
  reconnect(): void {
    if (this.#closed || this.#ws) return;
    this.#attempt = 0;
    this.#autoRetried = false;
    clearTimeout(this.#timer);
    this.#epoch++;
    void this.#connect();
  }

  /** Closes for good: the socket with 1000, pending requests fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#epoch++;
    clearTimeout(this.#timer);
    this.#unsubscribeOnline();
    if (this.#ws) this.#abandon(CloseCode.Normal, "client closed");
    for (const p of this.#queue.splice(0)) p.reject(new DisconnectedError("the client was closed"));
    this.#setState({ status: "closed" });
  }

  /** Publishes a new local seq in the state. */
  setSeq(seq: number): void {
    const s = this.#state.get();
    if (s.seq !== seq) this.#state.set({ ...s, seq });
  }

  /**
   * Sends a request and resolves with its answer (reply, pong, synced, or
   * the first snapshot page), or rejects with RequestError (an error frame)
   * or DisconnectedError. rate_limited refusals are resent after
   * retry_after_ms by the connection itself.
   */
  request(frame: ClientFrame, opts: RequestOptions = {}): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new DisconnectedError("the client was closed"));
      if (!opts.wait && !this.live) return reject(new DisconnectedError());
      const id = frame.id !== undefined ? String(frame.id) : `r${this.#nextId++}`;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const p: Pending = {
        id,
        frame: { ...frame, id },
        wait: !!opts.wait,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          this.#queue = this.#queue.filter((q) => q !== p);
          if (this.#inFlight.get(id) === p) {
            this.#inFlight.delete(id);
            this.#pump();
          }
          reject(new DisconnectedError(`no answer to ${frame.type} within ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
      }
      this.#queue.push(p);
      this.#pump();
    });
  }

  #maxInFlight(): number {
    return this.#hello?.limits?.max_in_flight || 8;
  }

  #pump(): void {
    const ws = this.#ws;
    if (!ws || !this.live) return;
    while (this.#queue.length > 0 && this.#inFlight.size < this.#maxInFlight()) {
      const p = this.#queue.shift()!;
      this.#inFlight.set(p.id, p);
      ws.send(JSON.stringify(p.frame));
    }
  }

  #setState(patch: Partial<ConnectionState> & { status: ConnectionStatus }): void {
    const prev = this.#state.get();
    const next: ConnectionState = { seq: this.#o.since(), url: prev.url, ...patch };
    if (next.status === "live") delete next.error;
    this.#state.set(next);
  }

  async #currentToken(): Promise<string | null> {
    return tokenOf(await this.#o.getToken());
  }

  async #connect(): Promise<void> {
    if (this.#closed || this.#ws) return;
    clearTimeout(this.#timer);
    if (!this.#o.online.isOnline()) {
      this.#setState({ status: "offline" });
      return;
    }
    const epoch = ++this.#epoch;
    const url = socketURL(this.#o.urls[this.#urlIndex % this.#o.urls.length]);
    const status = this.#hello || this.#attempt > 0 ? "reconnecting" : "connecting";
    if (this.#state.get().status !== "unauthenticated") this.#setState({ status, url });
    let token: string | null;
    try {
      token = await this.#currentToken();
    } catch (err) {
      if (epoch !== this.#epoch) return;
      this.#retryLater(undefined, `getToken failed: ${String((err as Error)?.message ?? err)}`);
      return;
    }
    if (epoch !== this.#epoch || this.#closed || this.#ws) return;
    if (!token) return this.#unauthenticated("getToken returned no token");
    if (token === this.#refused) return this.#unauthenticated("the server refused this token; getToken() must return a new one");
    if (tokenExpired(token, 1000)) return this.#unauthenticated("getToken returned an expired token");
    this.#setState({ status, url });
    this.#token = token;
    const params = new URLSearchParams({ since: String(this.#o.since()) });
    if (this.#o.device) params.set("device", this.#o.device);
    // batch=1: the server may put several frames in one message, one per line
    // (fewer message events on a resume); a server that ignores it sends one
    // frame per message, which is read the same way.
    params.set("batch", "1");
    let ws: WebSocketLike;
    try {
      ws = new this.#o.WebSocket(`${url}?${params}`, [PROTOCOL, BEARER_PREFIX + token]);
    } catch (err) {
      // A SyntaxError: the token holds characters a subprotocol cannot carry.
      this.#refused = token;
      return this.#unauthenticated(`the token cannot be offered as a subprotocol: ${String((err as Error)?.message ?? err)}`);
    }
    this.#ws = ws;
    this.#greeted = false;
    let httpStatus = 0;
    const helloTimer = setTimeout(() => {
      if (this.#ws === ws && !this.#greeted) this.#dropped(ws, CloseCode.Abnormal, "no hello from the server");
    }, HELLO_TIMEOUT_MS);
    ws.onopen = () => {
      if (ws.protocol !== PROTOCOL) {
        this.#dropped(ws, 1002, `the server answered subprotocol "${ws.protocol}", not ${PROTOCOL}`);
      }
    };
    ws.onerror = (ev: { message?: string; error?: { message?: string } }) => {
      // Node's ws reports the HTTP status of a refused upgrade; browsers do not.
      const m = /Unexpected server response: (\d+)/.exec(ev?.message ?? ev?.error?.message ?? "");
      if (m) httpStatus = Number(m[1]);
    };
    const onLine = (line: string) => {
      let f: ServerFrame;
      try {
        f = JSON.parse(line);
      } catch {
        return;
      }
      if (!f || typeof f !== "object") return;
      if (f.type === "hello") {
        clearTimeout(helloTimer);
        this.#onHello(f);
        return;
      }
      this.#onFrame(f);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      this.#lastFrameAt = Date.now();
      const data = String(ev.data);
      if (!data.includes("\n")) return onLine(data);
      // Several frames (batch=1), one per line, handled in order; a line that
      // does not parse is skipped like a whole message that does not.
      for (const line of data.split("\n")) {
        // A frame may have dropped this socket (its handlers are cleared then):
        // the rest of the message belongs to it, as later messages would.
        if (this.#ws !== ws) return;
        if (line !== "") onLine(line);
      }
    };
    ws.onclose = (ev: { code: number; reason: string }) => {
      clearTimeout(helloTimer);
      if (this.#ws !== ws) return;
      void this.#onClose(ev.code, ev.reason, httpStatus);
    };
  }

  #onHello(hello: HelloFrame): void {
    this.#greeted = true;
    this.#hello = hello;
    this.#attempt = 0;
    this.#autoRetried = false;
    this.#refused = null;
    this.#o.onHello(hello);
    this.#setState({ status: "live", instance: hello.instance, sessionId: hello.session_id });
    this.#scheduleRefresh(hello.token_expires_at ?? null);
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => this.#beat(), Math.max(1000, this.#o.heartbeatMs / 3));
    this.#pump();
  }

  #onFrame(f: ServerFrame): void {
    const id = "id" in f && f.id !== undefined && f.id !== null ? String(f.id) : undefined;
    const p = id !== undefined ? this.#inFlight.get(id) : undefined;
    if (p) {
      switch (f.type) {
        case "error":
          this.#inFlight.delete(p.id);
          if (f.code === "rate_limited") {
            // The frame was dropped: send it again once the bucket refilled.
            setTimeout(() => {
              this.#queue.unshift(p);
              this.#pump();
            }, Math.max(20, f.retry_after_ms ?? 500));
            this.#pump();
            return;
          }
          p.reject(new RequestError(f as ErrorFrame));
          this.#pump();
          break;
        case "reply":
        case "pong":
        case "synced":
        case "snapshot":
          this.#inFlight.delete(p.id);
          p.resolve(f);
          this.#pump();
          break;
      }
    }
    this.#o.onFrame(f);
  }

  /** Forgets ws (and its pending requests) and acts on its close code. */
  #dropped(ws: WebSocketLike, code: number, reason: string): void {
    if (this.#ws !== ws) return;
    this.#abandon(4000, reason);
    void this.#onClose(code, reason, 0);
  }

  /** Closes the socket without waiting for the close handshake and runs the down handling. */
  #abandon(code: number, reason: string): void {
    const ws = this.#ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
    this.#down();
  }

  #down(): void {
    const wasGreeted = this.#greeted;
    this.#ws = null;
    this.#greeted = false;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#refreshTimer);
    // Requests on the wire lost their answers; queued ones that may wait stay.
    for (const p of this.#inFlight.values()) p.reject(new DisconnectedError("the socket closed before the answer came"));
    this.#inFlight.clear();
    this.#queue = this.#queue.filter((p) => p.wait || (p.reject(new DisconnectedError()), false));
    if (wasGreeted) this.#o.onDown();
  }

  async #onClose(code: number, reason: string, httpStatus: number): Promise<void> {
    const greeted = this.#greeted;
    if (this.#ws) this.#down();
    if (this.#closed) return;
    const token = this.#token;
    const error = { code, message: reason || closeMeaning(code, httpStatus) };
    switch (code) {
      case CloseCode.Unauthorized:
        return this.#authFailed(token, error, true);
      case CloseCode.Revoked:
        return this.#authFailed(token, error, true);
      case CloseCode.Forbidden:
        return this.#authFailed(token, error, false);
      case CloseCode.GoingAway:
        // This instance is shutting down: another one answers at once.
        this.#urlIndex++;
        return this.#retryIn(Math.round(Math.random() * Math.min(250, this.#o.backoff.minMs)), error);
      case CloseCode.TooManySockets:
      case CloseCode.RateLimited:
        this.#urlIndex++;
        // Not a failure of the network: wait longer, and never come back at once (full jitter can be ~0).
        this.#attempt++;
        return this.#retryIn(
          Math.max(4 * this.#o.backoff.minMs, backoffDelay(this.#attempt + 3, this.#o.backoff.minMs, this.#o.backoff.maxMs)),
          error,
        );
    }
    if (httpStatus === 401) return this.#authFailed(token, { code, message: "the server refused the token (401)" }, true);
    if (token && tokenExpired(token, 1000)) return this.#authFailed(token, { code, message: "the token expired" }, true);
    if (!greeted && token && !httpStatus && (this.#attempt === 0 || this.#attempt % 4 === 3)) {
      // A browser sees a 401 before the upgrade as 1006: confirm with a REST call.
      const epoch = this.#epoch;
      const verdict = await this.#probe(token);
      if (epoch !== this.#epoch || this.#closed || this.#ws) return;
      if (verdict === "rejected") {
        return this.#authFailed(token, { code, message: "the server refused the token (401 on REST)" }, true);
      }
    }
    this.#urlIndex++;
    this.#retryLater(code, error.message);
  }

  #retryLater(code: number | undefined, message: string): void {
    const delay = backoffDelay(this.#attempt, this.#o.backoff.minMs, this.#o.backoff.maxMs);
    this.#attempt++;
    this.#retryIn(delay, { code, message });
  }

  #retryIn(ms: number, error: ConnectionState["error"]): void {
    clearTimeout(this.#timer);
    if (!this.#o.online.isOnline()) {
      this.#setState({ status: "offline", error });
      return;
    }
    const url = socketURL(this.#o.urls[this.#urlIndex % this.#o.urls.length]);
    this.#setState({ status: "reconnecting", url, retryAt: Date.now() + ms, error });
    const epoch = this.#epoch;
    this.#timer = setTimeout(() => {
      if (epoch === this.#epoch) void this.#connect();
    }, ms);
  }

  #unauthenticated(message: string, code?: number): void {
    this.#setState({ status: "unauthenticated", error: { code, message } });
  }

  /** The token was refused: unauthenticated, then (once) ask getToken for another one. */
  async #authFailed(token: string | null, error: { code?: number; message: string }, tryAgain: boolean): Promise<void> {
    if (token) this.#refused = token;
    this.#unauthenticated(error.message, error.code);
    if (!tryAgain || this.#autoRetried) return;
    this.#autoRetried = true;
    const epoch = ++this.#epoch;
    let fresh: string | null = null;
    try {
      fresh = await this.#currentToken();
    } catch {
      return;
    }
    if (epoch !== this.#epoch || this.#closed || this.#ws) return;
    if (fresh && fresh !== this.#refused && !tokenExpired(fresh, 1000)) void this.#connect();
  }

  async #probe(token: string): Promise<"rejected" | "accepted" | "unknown"> {
    const f = this.#o.fetch ?? (globalThis.fetch as typeof fetch | undefined);
    const user = this.#hello?.user_id ?? tokenUser(token);
    if (!f || !user) return "unknown";
    const url = socketURL(this.#o.urls[this.#urlIndex % this.#o.urls.length]);
    try {
      const res = await f(`${restBase(url)}/api/${encodeURIComponent(user)}/tasks?limit=1`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      return res.status === 401 ? "rejected" : "accepted";
    } catch {
      return "unknown";
    }
  }

  #goOffline(): void {
    if (this.#closed) return;
    this.#epoch++;
    clearTimeout(this.#timer);
    if (this.#ws) this.#abandon(CloseCode.Normal, "offline");
    if (this.#state.get().status !== "unauthenticated") this.#setState({ status: "offline" });
  }

  #goOnline(): void {
    if (this.#closed || this.#ws) return;
    const s = this.#state.get().status;
    if (s === "unauthenticated") return;
    this.#attempt = 0;
    this.#epoch++;
    void this.#connect();
  }

  #scheduleRefresh(expiresAt: string | null): void {
    clearTimeout(this.#refreshTimer);
    const exp = expiresAt ? Date.parse(expiresAt) : this.#token ? tokenExpiry(this.#token) : Infinity;
    if (!Number.isFinite(exp)) return;
    // Refresh refreshBeforeMs before the expiry, but not before half the remaining lifetime (short tokens).
    const remaining = exp - Date.now();
    const lead = Math.min(this.#o.refreshBeforeMs, Math.max(0, remaining / 2));
    this.#refreshTimer = setTimeout(() => void this.#refresh(exp), Math.max(0, remaining - lead));
  }

  async #refresh(exp: number): Promise<void> {
    if (!this.live) return;
    const ws = this.#ws;
    const retry = () => {
      if (this.#ws !== ws) return;
      const left = exp - Date.now();
      if (left <= 0) return; // the server closes with 4001; the reconnect asks getToken again
      clearTimeout(this.#refreshTimer);
      this.#refreshTimer = setTimeout(() => void this.#refresh(exp), Math.max(200, Math.min(5000, left / 4)));
    };
    let token: string | null;
    try {
      token = await this.#currentToken();
    } catch {
      return retry();
    }
    if (this.#ws !== ws || !this.live) return;
    if (!token || token === this.#token || token === this.#refused) return retry();
    try {
      const reply = await this.request({ type: "auth.refresh", token });
      if (this.#ws !== ws) return;
      this.#token = token;
      this.#scheduleRefresh(reply.type === "reply" && reply.re === "auth.refresh" ? reply.expires_at : null);
    } catch (err) {
      if (err instanceof RequestError && err.code === "unauthorized") this.#refused = token;
      if (!(err instanceof RequestError && err.code === "forbidden")) retry();
    }
  }

  /** Detects a socket that died without a close (a laptop waking up, a dropped network). */
  #beat(): void {
    const ws = this.#ws;
    if (!ws || !this.live || Date.now() - this.#lastFrameAt < this.#o.heartbeatMs) return;
    this.#lastFrameAt = Date.now();
    this.request({ type: "ping" }, { timeoutMs: PONG_TIMEOUT_MS }).catch(() => {
      if (this.#ws === ws) this.#dropped(ws, CloseCode.Abnormal, "no answer to ping");
    });
  }
}

function closeMeaning(code: number, httpStatus: number): string {
  if (httpStatus) return `the server refused the socket with HTTP ${httpStatus}`;
  switch (code) {
    case 1001: return "the server instance is going away";
    case 1006: return "the connection was lost";
    case 1009: return "a frame was too big";
    case 1011: return "the server had an internal error";
    case 4001: return "the token expired";
    case 4003: return "the new token belongs to another user";
    case 4008: return "the client read too slowly";
    case 4009: return "too many sockets for this user";
    case 4010: return "signed out everywhere";
    case 4029: return "too many frames";
    default: return `the socket closed with code ${code}`;
  }
}
