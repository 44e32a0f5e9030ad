// An in-process tasksync server for the SDK's unit tests: it speaks the
// socket protocol of docs/PROTOCOL.md (hello first, per-user seq events,
// replies matched by id, mutation_id idempotency with replayed:true,
// base_version and version_mismatch, sync/synced, paged snapshots,
// auth.refresh, presence, chat turns, close codes), checks the token in the
// Sec-WebSocket-Protocol header like the real one, and answers the REST
// probe GET /api/{user}/tasks. Tests reach into it to make other devices'
// changes, drop replies, close sockets and refuse tokens.
//
// Every frame the SDK sends, and every frame the fake sends, is validated
// against docs/schemas (test/support/frames.mjs); stop() fails the test
// when one did not validate.
//
// With batch: true, a socket opened with batch=1 gets hello's batch: true and
// every frame sent in one turn of the event loop in one message, one frame
// per line, as the real server may do; without it (the default) the fake
// ignores batch=1 and sends one frame per message.

import { createServer } from "node:http";
import { WebSocketServer } from "ws";

import { validateClientFrame, validateServerFrame } from "../support/frames.mjs";

/** An unsigned JWT with these claims (the fake server reads, never verifies). */
export function makeToken(sub, ttlSeconds = 3600, extra = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: "none" })}.${b64({ sub, iat: now, exp: now + ttlSeconds, ...extra })}.sig`;
}

function claims(token) {
  try {
    return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  } catch {
    return null;
  }
}

let sessionCounter = 0;

/** A timestamp as the server writes it (microseconds, UTC). */
function stamp() {
  return new Date().toISOString().replace("Z", "000Z");
}

function turnId16() {
  let id = "t_";
  while (id.length < 18) id += Math.floor(Math.random() * 36).toString(36);
  return id;
}

/** Polls cond until it is truthy or the deadline passes. */
export async function waitFor(cond, { timeoutMs = 5000, message = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export class FakeServer {
  /** Shared state lets two instances serve one user (failover tests). */
  constructor({ name = "fake-1", state, pageSize = 500, maxInFlight = 8, batch = false } = {}) {
    this.name = name;
    this.batch = batch;
    this.messages = []; // the frame types of every message sent, in order: [["hello", ...], ...]
    this.state = state ?? FakeServer.newState();
    this.pageSize = pageSize;
    this.maxInFlight = maxInFlight;
    this.sockets = new Set();
    this.clients = []; // SDK clients made by newClient: closed by stop()
    this.received = []; // every client frame, in order
    this.invalid = []; // frames (both ways) that do not match docs/schemas
    this.upgrades = []; // {url, protocols, status}
    this.refused = new Set(); // tokens answered 401
    this.hooks = {}; // type -> (sock, frame) => true when handled
    this.http = createServer((req, res) => this.#rest(req, res));
    this.wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has("tasksync.v1") ? "tasksync.v1" : false) });
    this.http.on("upgrade", (req, socket, head) => this.#upgrade(req, socket, head));
  }

  static newState() {
    return { tasks: new Map(), log: [], seq: 0, nextId: 1, idem: new Map(), user: "alice", revokedBefore: 0 };
  }

  async start(port = 0) {
    await new Promise((r) => this.http.listen(port, "127.0.0.1", r));
    this.port = this.http.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async stop() {
    for (const c of this.clients.splice(0)) await c.close();
    for (const s of this.sockets) s.ws.terminate();
    this.wss.close();
    this.http.closeAllConnections?.();
    await new Promise((r) => this.http.close(r));
    if (this.invalid.length > 0) throw new Error(`frames that do not match docs/schemas:\n  ${this.invalid.join("\n  ")}`);
  }

  /** The user a token is good for, or null (refused with 401). */
  verify(token) {
    if (!token || this.refused.has(token)) return null;
    const c = claims(token);
    if (!c || typeof c.sub !== "string") return null;
    if (typeof c.exp === "number" && c.exp * 1000 <= Date.now()) return null;
    if (this.state.revokedBefore && !(c.iat * 1000 >= this.state.revokedBefore)) return null;
    return c;
  }

  #rest(req, res) {
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    const c = this.verify(token);
    res.setHeader("content-type", "application/json");
    if (!c) {
      res.statusCode = 401;
      return res.end(JSON.stringify({ error: { code: "unauthorized", message: "bad token" } }));
    }
    res.end(JSON.stringify([...this.state.tasks.values()].slice(0, 1)));
  }

  #upgrade(req, socket, head) {
    const protocols = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    const bearer = protocols.find((p) => p.startsWith("bearer."));
    const token = bearer?.slice("bearer.".length);
    const c = this.verify(token);
    const entry = { url: req.url, protocols, status: c ? 101 : 401 };
    this.upgrades.push(entry);
    if (!c) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    // A test may hold upgrades (upgradeGate: a promise) to look at the
    // client while its socket is not up yet.
    const upgrade = () => this.wss.handleUpgrade(req, socket, head, (ws) => this.#connected(ws, req, c));
    if (this.upgradeGate) this.upgradeGate.then(upgrade);
    else upgrade();
  }

  #connected(ws, req, c) {
    const url = new URL(req.url, "http://x");
    const batching = this.batch && url.searchParams.get("batch") === "1";
    let out = []; // frames of this turn, sent as one message (batching)
    const flush = () => {
      if (out.length === 0) return;
      const lines = out;
      out = [];
      this.messages.push(lines.map((l) => JSON.parse(l).type));
      if (ws.readyState === 1) ws.send(lines.join("\n"));
    };
    const sock = {
      ws,
      server: this,
      sessionId: `S${++sessionCounter}`.padEnd(16, "X"),
      device: url.searchParams.get("device") ?? "",
      connectedAt: stamp(),
      user: c.sub,
      exp: c.exp,
      received: [],
      send: (f) => {
        try {
          validateServerFrame(f);
        } catch (err) {
          this.invalid.push(`server frame: ${err.message}`);
        }
        if (batching) {
          if (out.length === 0) queueMicrotask(flush);
          out.push(JSON.stringify(f));
          return;
        }
        this.messages.push([f.type]);
        if (ws.readyState === 1) ws.send(JSON.stringify(f));
      },
      /** Sends text as one message as it is (after the frames of this turn), unvalidated. */
      sendRaw: (text) => {
        flush();
        if (ws.readyState === 1) ws.send(text);
      },
      close: (code, reason = "") => {
        flush();
        ws.close(code, reason);
      },
    };
    this.sockets.add(sock);
    const st = this.state;
    sock.send({
      type: "hello", protocol: 1, session_id: sock.sessionId, user_id: c.sub, instance: this.name,
      server_time: new Date().toISOString(), seq: st.seq,
      token_expires_at: c.exp ? new Date(c.exp * 1000).toISOString() : null,
      limits: { max_frame_bytes: 65536, frames_per_second: 20, frame_burst: 40, max_sockets_per_user: 32, send_queue_bytes: 1048576, ping_interval_ms: 25000, max_in_flight: this.maxInFlight },
      ...(batching ? { batch: true } : {}),
    });
    const since = url.searchParams.get("since");
    if (since !== null) this.#sync(sock, undefined, Number(since));
    this.#presence("join", sock.sessionId);
    ws.on("message", (data) => {
      const f = JSON.parse(String(data));
      this.received.push(f);
      sock.received.push(f);
      try {
        validateClientFrame(f);
      } catch (err) {
        this.invalid.push(`client frame: ${err.message}`);
      }
      const hook = this.hooks[f.type];
      if (hook && hook(sock, f)) return;
      this.#handle(sock, f);
    });
    ws.on("close", () => {
      this.sockets.delete(sock);
      this.#presence("leave", sock.sessionId);
    });
  }

  #presence(event, sessionId) {
    const sessions = [...this.sockets].map((s) => ({ session_id: s.sessionId, device: s.device, instance: this.name, connected_at: s.connectedAt }));
    for (const s of this.sockets) s.send({ type: "presence", event, session_id: sessionId, online: sessions.length, sessions });
  }

  presenceList() {
    const sessions = [...this.sockets].map((s) => ({ session_id: s.sessionId, device: s.device, instance: this.name, connected_at: s.connectedAt }));
    return { online: sessions.length, sessions };
  }

  /** Replays the events after since, or sends a paged snapshot when since is unknown. */
  #sync(sock, id, since) {
    const st = this.state;
    if (since >= 0 && since <= st.seq) {
      for (const e of st.log) if (e.seq > since) sock.send(e);
      const f = { type: "synced", seq: st.seq };
      if (id !== undefined) f.id = id;
      sock.send(f);
      return;
    }
    const tasks = [...st.tasks.values()].sort((a, b) => a.id - b.id);
    const pages = Math.max(1, Math.ceil(tasks.length / this.pageSize));
    for (let p = 0; p < pages; p++) {
      const f = { type: "snapshot", seq: st.seq, page: p, tasks: tasks.slice(p * this.pageSize, (p + 1) * this.pageSize), more: p < pages - 1 };
      if (id !== undefined) f.id = id;
      if (p === 0) f.reason = "requested since is unknown or no longer retained";
      sock.send(f);
    }
  }

  /** Commits a change (as another device would) and sends its event to every socket. */
  commit(type, task, actor = "socket") {
    const st = this.state;
    const e = type === "task.deleted" ? { type, seq: ++st.seq, task_id: task } : { type, seq: ++st.seq, task: { ...task } };
    st.log.push(e);
    // The change log's view of it, for task.history and task.restore.
    const id = e.task_id ?? e.task.id;
    st.history ??= new Map();
    if (!st.history.has(id)) st.history.set(id, []);
    st.history.get(id).push({ seq: e.seq, op: type.slice("task.".length), at: stamp(), actor, session: null, task: e.task ?? null });
    if (this.held) this.held.push(e); // replyFirst: sent after the reply
    else for (const srv of FakeServer.peers(this)) for (const s of srv.sockets) s.send(e);
    return e;
  }

  static peers(server) {
    return server.state.servers ?? [server];
  }

  /** Creates a task as another device would. */
  addTask(fields) {
    const now = stamp();
    const t = {
      id: this.state.nextId++, user_id: this.state.user, title: fields.title, description: fields.description ?? "",
      completed: fields.completed ?? false, priority: fields.priority ?? "medium", tags: fields.tags ?? [], due_date: fields.due_at ?? fields.due_date ?? null,
      due_at: fields.due_at ?? fields.due_date ?? null, remind_at: fields.remind_at ?? null, recurrence: fields.recurrence ?? null,
      tz: fields.tz ?? null, series_id: fields.series_id ?? null,
      created_at: now, updated_at: now, version: 1,
    };
    this.state.tasks.set(t.id, t);
    this.commit("task.created", t);
    return t;
  }

  /** Changes a task as another device would. */
  updateTask(id, patch) {
    const cur = this.state.tasks.get(id);
    const t = { ...cur, ...patch, version: cur.version + 1, updated_at: stamp() };
    this.state.tasks.set(id, t);
    this.commit("task.updated", t);
    return t;
  }

  /** Answers a frame as the server does (hooks may hold a frame and hand it here later). */
  handle(sock, f) {
    this.#handle(sock, f);
  }

  #handle(sock, f) {
    const reply = (extra) => sock.send({ type: "reply", id: f.id, re: f.type, ...extra });
    const error = (code, message, extra = {}) => sock.send({ type: "error", id: f.id, re: f.type, code, message, ...extra });
    switch (f.type) {
      case "ping":
        return sock.send({ type: "pong", id: f.id, server_time: new Date().toISOString() });
      case "sync":
        return this.#sync(sock, f.id, f.since);
      case "presence.list":
        return reply(this.presenceList());
      case "auth.refresh": {
        const c = this.verify(f.token);
        if (!c) return error("unauthorized", "the token does not verify");
        if (c.sub !== sock.user) {
          error("forbidden", "another user's token");
          return sock.close(4003, "forbidden");
        }
        sock.exp = c.exp;
        return reply({ expires_at: new Date(c.exp * 1000).toISOString() });
      }
      case "task.create":
      case "task.update":
      case "task.complete":
      case "task.delete":
      case "task.restore":
        return this.#mutation(sock, f, reply, error);
      case "task.history": {
        const versions = [...(this.state.history?.get(f.task_id) ?? [])].reverse().slice(0, f.limit ?? 100);
        if (versions.length === 0) return error("not_found", `task ${f.task_id} has no history`);
        return reply({ task_id: f.task_id, versions });
      }
      case "chat.send":
        return this.#chat(sock, f, reply);
      case "chat.cancel": {
        const turn = this.turns?.get(f.conversation_id);
        reply({ conversation_id: f.conversation_id, status: turn ? "cancelling" : "idle" });
        turn?.cancel();
        return;
      }
      default:
        return error("bad_request", `unknown type ${f.type}`);
    }
  }

  #mutation(sock, f, reply, error) {
    const st = this.state;
    const key = f.mutation_id;
    const request = JSON.stringify({ ...f, id: undefined, mutation_id: undefined });
    if (key && st.idem.has(key)) {
      const prev = st.idem.get(key);
      if (prev.request !== request) return error("conflict", "mutation_id reused for another request");
      return sock.send({ ...prev.answer, id: f.id, ...(prev.answer.type === "reply" ? { replayed: true } : {}) });
    }
    if (this.replyFirst) this.held = [];
    try {
      this.#apply(sock, f, error);
    } finally {
      const held = this.held ?? [];
      this.held = null;
      const fanOut = () => {
        for (const e of held) for (const srv of FakeServer.peers(this)) for (const s of srv.sockets) s.send(e);
      };
      // eventsLater: the events go out on a later turn, after the client
      // has handled the reply (the real server's events come through the
      // database's notification, usually after the reply).
      if (this.eventsLater && held.length > 0) setTimeout(fanOut, 20);
      else fanOut();
    }
  }

  // #apply makes the change of mutation f and answers it (the reply goes
  // before the change's event when replyFirst is set, as the real server
  // may do: replies and events travel separately).
  #apply(sock, f, error) {
    const st = this.state;
    const key = f.mutation_id;
    const request = JSON.stringify({ ...f, id: undefined, mutation_id: undefined });
    let answer;
    const now = stamp();
    const cur = f.task_id !== undefined ? st.tasks.get(f.task_id) : undefined;
    const logged = (st.history?.get(f.task_id) ?? []).filter((v) => v.task);
    const old = f.version == null ? logged.at(-1)?.task : logged.findLast((v) => v.task.version === f.version)?.task;
    if (f.type === "task.restore" && (cur ? f.version == null : !old)) {
      answer = cur
        ? { type: "error", re: f.type, code: "conflict", message: `task ${f.task_id} is not deleted` }
        : { type: "error", re: f.type, code: "not_found", message: `no version to restore task ${f.task_id} from` };
    } else if (f.type === "task.restore" && !old) {
      answer = { type: "error", re: f.type, code: "not_found", message: `version ${f.version} of task ${f.task_id} is not in its history` };
    } else if (f.type === "task.restore") {
      const last = Math.max(...logged.map((v) => v.task.version));
      const { id, user_id, series_id, created_at, updated_at, version, ...fields } = old;
      const t = cur ? { ...cur, ...fields, version: cur.version + 1, updated_at: now } : { ...old, version: last + 1, updated_at: now };
      st.tasks.set(t.id, t);
      const op = cur ? "updated" : "created";
      this.commit(`task.${op}`, t);
      answer = { type: "reply", re: f.type, op, task: t, task_id: t.id };
    } else if (f.type !== "task.create" && !cur) {
      answer = { type: "error", re: f.type, code: "not_found", message: `task ${f.task_id} not found` };
    } else if (f.base_version !== undefined && cur && cur.version !== f.base_version) {
      answer = { type: "error", re: f.type, code: "version_mismatch", message: "stale", task: cur };
    } else if (f.type === "task.create") {
      if (!f.task?.title?.trim()) {
        answer = { type: "error", re: f.type, code: "invalid", message: "invalid", fields: { title: "is required" } };
      } else {
        const t = {
          id: st.nextId++, user_id: sock.user, title: f.task.title, description: f.task.description ?? "", completed: !!f.task.completed,
          priority: f.task.priority ?? "medium", tags: f.task.tags ?? [], due_date: f.task.due_at ?? f.task.due_date ?? null,
          due_at: f.task.due_at ?? f.task.due_date ?? null, remind_at: f.task.remind_at ?? null, recurrence: f.task.recurrence ?? null,
          tz: f.task.tz ?? null, series_id: null, created_at: now, updated_at: now, version: 1,
        };
        st.tasks.set(t.id, t);
        this.commit("task.created", t);
        answer = { type: "reply", re: f.type, op: "created", task: t, task_id: t.id };
      }
    } else if (f.type === "task.delete") {
      // "series":"all": every task of the series, one event each; the
      // named one first (the real server promises no order).
      const rest = f.series === "all" && cur.series_id !== null ? [...st.tasks.values()].filter((t) => t.series_id === cur.series_id && t !== cur) : [];
      const gone = [cur, ...rest];
      for (const t of gone) {
        st.tasks.delete(t.id);
        this.commit("task.deleted", t.id);
      }
      answer = { type: "reply", re: f.type, op: "deleted", task_id: cur.id };
    } else {
      const patch = f.type === "task.complete" ? { completed: f.completed ?? !cur.completed } : f.task;
      const t = { ...cur, ...patch, version: cur.version + 1, updated_at: now };
      st.tasks.set(t.id, t);
      this.commit("task.updated", t);
      answer = { type: "reply", re: f.type, op: "updated", task: t, task_id: t.id };
    }
    if (key) st.idem.set(key, { request, answer });
    if (this.dropNextReply) {
      // The reply is lost: the change committed, the socket dies.
      this.dropNextReply = false;
      sock.ws.terminate();
      return;
    }
    sock.send({ ...answer, id: f.id });
  }

  #chat(sock, f, reply) {
    this.turns ??= new Map();
    const conversationId = f.conversation_id || 12;
    const turnId = turnId16();
    reply({ conversation_id: conversationId, turn_id: turnId, message_id: 57, created: !f.conversation_id, title: f.message.slice(0, 60) });
    this.startTurn({ conversationId, turnId, message: f.message, requestId: f.id, sessionId: sock.sessionId });
  }

  /** Runs a chat turn to every socket: deltas of chatWords, or forever (until cancelled) with chatEndless. */
  startTurn({ conversationId = 12, turnId = turnId16(), message = "hi", requestId, sessionId } = {}) {
    const all = () => FakeServer.peers(this).flatMap((s) => [...s.sockets]);
    const emit = (f) => {
      for (const s of all()) s.send({ conversation_id: conversationId, turn_id: turnId, ...f });
    };
    const started = { type: "chat.started", message_id: 57, message, created: true, title: message, model: "offline" };
    if (requestId !== undefined) started.request_id = requestId;
    if (sessionId) started.session_id = sessionId;
    emit(started);
    let text = "";
    const calls = [];
    let timer;
    const done = (status) => {
      clearInterval(timer);
      this.turns.delete(conversationId);
      emit({ type: "chat.done", message_id: 58, status, text, tool_calls: calls });
    };
    this.turns ??= new Map();
    this.turns.set(conversationId, { cancel: () => done("cancelled") });
    if (this.chatEndless) {
      timer = setInterval(() => {
        text += "la ";
        emit({ type: "chat.delta", text: "la " });
      }, 5);
      return;
    }
    emit({ type: "chat.tool_call", call_id: "call_1", name: "list_tasks", arguments: { status: "pending" } });
    emit({ type: "chat.tool_result", call_id: "call_1", name: "list_tasks", result: [], is_error: false });
    calls.push({ id: "call_1", name: "list_tasks", arguments: { status: "pending" }, result: [] });
    for (const w of ["Nothing ", "pending."]) {
      text += w;
      emit({ type: "chat.delta", text: w });
    }
    done("complete");
  }
}

/** Starts a fake server. */
export async function startFakeServer(opts) {
  return new FakeServer(opts).start();
}

/** An OnlineSource the test switches. */
export function switchableOnline(initial = true) {
  let online = initial;
  const listeners = new Set();
  return {
    isOnline: () => online,
    subscribe(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    set(v) {
      online = v;
      for (const cb of listeners) cb(v);
    },
  };
}

/** A client of the SDK under test, for server (fast backoff, memory storage unless given). */
export async function newClient(server, opts = {}) {
  const { createClient, memoryStorage } = await import("../../dist/tasksync-client.js");
  const { default: WebSocket } = await import("ws");
  const token = makeToken("alice");
  const client = createClient({
    url: server.url,
    getToken: () => token,
    WebSocket,
    storage: memoryStorage(),
    backoff: { minMs: 10, maxMs: 50 },
    ...opts,
  });
  server.clients.push(client);
  return client;
}

/** Waits until the client's connection has the status. */
export function waitStatus(client, status, timeoutMs = 5000) {
  return waitFor(() => client.connection.get().status === status, { timeoutMs, message: `status ${status} (now ${client.connection.get().status})` });
}
