import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { backoffDelay, socketURL } from "../../dist/tasksync-client.js";
import { FakeServer, makeToken, newClient, startFakeServer, switchableOnline, waitFor, waitStatus } from "./fake-server.mjs";

test("backoff is full jitter under an exponential ceiling; base URLs become socket URLs", () => {
  assert.equal(backoffDelay(0, 100, 1000, () => 1), 100);
  assert.equal(backoffDelay(3, 100, 1000, () => 1), 800);
  assert.equal(backoffDelay(10, 100, 1000, () => 1), 1000);
  assert.equal(backoffDelay(10, 100, 1000, () => 0), 0);
  assert.equal(socketURL("https://api.example.com"), "wss://api.example.com/ws");
  assert.equal(socketURL("http://127.0.0.1:8080/base/"), "ws://127.0.0.1:8080/base/ws");
  assert.equal(socketURL("ws://h/ws"), "ws://h/ws");
});

test("fails over across the URL list: a dead first URL, then an instance going away (1001), resuming with since", async (t) => {
  const state = FakeServer.newState();
  const a = await startFakeServer({ name: "a", state });
  const b = await startFakeServer({ name: "b", state });
  state.servers = [a, b];
  t.after(() => b.stop());
  const deadURL = a.url;
  await a.stop(); // nothing listens on the first URL
  b.addTask({ title: "x" });
  const statuses = [];
  const client = await newClient(b, { url: [deadURL, b.url] });
  t.after(() => client.close());
  client.connection.subscribe((s) => statuses.push(s.status));
  await client.ready();
  assert.equal(client.connection.get().instance, "b");
  assert.ok(statuses.includes("reconnecting"), statuses.join(","));

  // b goes away; a comes back on its port; the client moves to a at once.
  const a2 = new FakeServer({ name: "a2", state });
  await a2.start(Number(new URL(deadURL).port));
  state.servers = [a2, b];
  t.after(() => a2.stop());
  for (const s of b.sockets) s.close(1001, "going away");
  await waitFor(() => client.connection.get().status === "live" && client.connection.get().instance === "a2", { message: "failover to a2" });
  assert.match(a2.upgrades[0].url, /since=1(&|$)/);
  a2.addTask({ title: "y" });
  await waitFor(() => client.tasks().getSnapshot().length === 2);
});

test("offline closes the socket at once and shows offline; online reconnects at once", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const online = switchableOnline(true);
  const client = await newClient(server, { online, backoff: { minMs: 60000, maxMs: 60000 } });
  t.after(() => client.close());
  await client.ready();
  online.set(false);
  assert.equal(client.connection.get().status, "offline");
  await waitFor(() => server.sockets.size === 0, { message: "the server saw the close" });
  online.set(true);
  await waitStatus(client, "live", 2000); // no 60 s backoff: at once
  assert.equal(server.upgrades.length, 2);
});

test("the token is refreshed over the socket (auth.refresh) before it expires, with the token getToken returns then", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  let n = 0;
  const tokens = [];
  const getToken = () => {
    const tok = makeToken("alice", 3, { n: n++ });
    tokens.push(tok);
    return tok;
  };
  const client = await newClient(server, { getToken, refreshBeforeMs: 1500 });
  t.after(() => client.close());
  await client.ready();
  const connectedAt = Date.now();
  const refresh = await waitFor(() => server.received.find((f) => f.type === "auth.refresh"), { timeoutMs: 4000, message: "auth.refresh" });
  const after = Date.now() - connectedAt;
  assert.ok(after >= 1000 && after < 2500, `refreshed ${after} ms after hello (token lives 3 s, refreshBeforeMs 1.5 s)`);
  assert.equal(refresh.token, tokens.at(-1));
  assert.notEqual(refresh.token, tokens[0]);
  // The socket lives on past the first token's expiry.
  await waitFor(() => server.received.filter((f) => f.type === "auth.refresh").length >= 2, { timeoutMs: 4000, message: "second refresh" });
  assert.equal(client.connection.get().status, "live");
  assert.equal(server.upgrades.length, 1);
  assert.deepEqual(server.invalid, []);
});

test("a refused token (401 before the upgrade) is unauthenticated, not a reconnect loop; reconnect() with a new token goes live", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  let token = makeToken("alice");
  server.refused.add(token);
  const client = await newClient(server, { getToken: () => token });
  t.after(() => client.close());
  await waitStatus(client, "unauthenticated");
  const attempts = server.upgrades.length;
  await new Promise((r) => setTimeout(r, 200)); // time for a wrongful retry loop (backoff is 10-50 ms)
  assert.equal(server.upgrades.length, attempts);
  assert.ok(attempts <= 2, `${attempts} attempts`);
  client.reconnect(); // same token: stays unauthenticated without trying it
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(client.connection.get().status, "unauthenticated");
  assert.equal(server.upgrades.length, attempts);
  token = makeToken("alice", 3600, { fresh: true });
  client.reconnect();
  await waitStatus(client, "live");
});

test("a browser's 1006 for a 401 is confirmed with a REST call (GET /api/{user}/tasks?limit=1)", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const token = makeToken("alice");
  server.refused.add(token);
  // Like a browser: the HTTP status of a refused upgrade is not visible.
  class BrowserLikeWebSocket extends WebSocket {
    set onerror(fn) {
      super.onerror = fn && (() => fn({}));
    }
    get onerror() {
      return super.onerror;
    }
  }
  const probes = [];
  const fetchSpy = (url, init) => (probes.push(url), fetch(url, init));
  const client = await newClient(server, { getToken: () => token, WebSocket: BrowserLikeWebSocket, fetch: fetchSpy });
  t.after(() => client.close());
  await waitStatus(client, "unauthenticated");
  assert.equal(probes.length, 1);
  assert.match(probes[0], /\/api\/alice\/tasks\?limit=1$/);
  assert.match(client.connection.get().error.message, /401/);
});

test("4010 (signed out everywhere) and 4003 are unauthenticated; 4001 gets a fresh token and reconnects", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  let token = makeToken("alice", 3600, { v: 1 });
  const client = await newClient(server, { getToken: () => token });
  t.after(() => client.close());
  await client.ready();
  for (const s of server.sockets) s.close(4001, "token expired");
  token = makeToken("alice", 3600, { v: 2 });
  await waitFor(() => server.upgrades.length === 2 && client.connection.get().status === "live", { message: "reconnect after 4001" });
  for (const s of server.sockets) s.close(4010, "signed out everywhere");
  await waitStatus(client, "unauthenticated");
  assert.equal(client.connection.get().error.code, 4010);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.upgrades.length, 2, "the revoked token is not offered again");
  token = makeToken("alice", 3600, { v: 3 });
  client.reconnect();
  await waitStatus(client, "live");
  for (const s of server.sockets) s.close(4003, "forbidden");
  await waitStatus(client, "unauthenticated");
});

test("rate_limited requests are resent after retry_after_ms", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  let refused = 0;
  server.hooks.ping = (sock, f) => {
    if (refused++ > 0) return false;
    sock.send({ type: "error", id: f.id, re: "ping", code: "rate_limited", message: "slow down", retry_after_ms: 30 });
    return true;
  };
  const pong = await client.request({ type: "ping" });
  assert.equal(pong.type, "pong");
  assert.equal(server.received.filter((f) => f.type === "ping").length, 2);
});

test("no token (getToken returns null) is unauthenticated without touching the server; 4009 waits before retrying", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  let token = null;
  const client = await newClient(server, { getToken: () => token });
  await waitStatus(client, "unauthenticated");
  assert.equal(server.upgrades.length, 0);
  assert.match(client.connection.get().error.message, /no token/);
  token = makeToken("alice");
  client.reconnect();
  await waitStatus(client, "live");
  const before = Date.now();
  for (const s of server.sockets) s.close(4009, "too many sockets");
  await waitStatus(client, "reconnecting");
  const { retryAt, error } = client.connection.get();
  assert.equal(error.code, 4009);
  assert.ok(retryAt - before >= 40, `retry in ${retryAt - before} ms: at least 4 x minMs`);
  await waitStatus(client, "live");
});

test("getToken may return Better Auth's authClient.token() result as is: { data: { token } }, or { data: null, error } when signed out", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  let result = { data: { token: makeToken("alice") }, error: null };
  const client = await newClient(server, { getToken: async () => result });
  t.after(() => client.close());
  await waitStatus(client, "live");
  assert.equal(client.userId, "alice");
  result = { data: null, error: { status: 401, message: "Unauthorized" } };
  for (const s of server.sockets) s.close(4001, "token expired");
  await waitStatus(client, "unauthenticated");
  assert.equal(server.upgrades.length, 1, "no upgrade tried without a token");
});
