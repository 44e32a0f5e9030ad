// batch=1: the client always asks for it; a server that honours it may put
// several frames in one WebSocket message, one per line (docs/PROTOCOL.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryStorage } from "../../dist/tasksync-client.js";
import { newClient, startFakeServer, waitFor } from "./fake-server.mjs";

test("the socket URL asks for batch=1 (with since); a server that ignores it sends one frame per message and all works", async (t) => {
  const server = await startFakeServer(); // ignores batch=1
  t.after(() => server.stop());
  server.addTask({ title: "a" });
  const client = await newClient(server, { device: "laptop" });
  t.after(() => client.close());
  const applied = [];
  client.onEvent((e) => applied.push(e.seq));
  await client.ready();
  const params = new URL(server.upgrades[0].url, "http://x").searchParams;
  assert.equal(params.get("batch"), "1");
  assert.equal(params.get("since"), "-1");
  assert.equal(params.get("device"), "laptop");
  server.addTask({ title: "b" });
  server.addTask({ title: "c" });
  await waitFor(() => client.seq === 3, { message: "seq 3" });
  assert.deepEqual(applied, [2, 3]);
  assert.deepEqual(client.tasks().getSnapshot().map((x) => x.title), ["a", "b", "c"]);
  assert.ok(server.messages.length > 0);
  assert.ok(server.messages.every((m) => m.length === 1), JSON.stringify(server.messages));
});

test("several frames in one message (hello + missed events + synced, then live events) are each handled in order, exactly once", async (t) => {
  const server = await startFakeServer({ batch: true });
  t.after(() => server.stop());
  server.addTask({ title: "a" });
  const storage = memoryStorage();
  const first = await newClient(server, { storage });
  await first.ready();
  // hello, the snapshot and presence came in one message.
  assert.deepEqual(server.messages[0], ["hello", "snapshot", "presence"]);
  assert.deepEqual(first.tasks().getSnapshot().map((x) => x.title), ["a"]);
  await first.close();
  await waitFor(() => server.sockets.size === 0, { message: "the server saw the close" });

  // Three changes made while this device was away come back with hello.
  server.addTask({ title: "b" });
  server.addTask({ title: "c" });
  server.updateTask(1, { title: "a2" });
  const before = server.messages.length;
  const second = await newClient(server, { storage });
  t.after(() => second.close());
  const applied = [];
  second.onEvent((e) => applied.push(`${e.seq} ${e.type}`));
  await second.ready();
  await waitFor(() => second.seq === 4, { message: "seq 4" });
  assert.match(server.upgrades[1].url, /[?&]since=1(&|$)/);
  assert.deepEqual(server.messages[before], ["hello", "task.created", "task.created", "task.updated", "synced", "presence"]);
  assert.deepEqual(applied, ["2 task.created", "3 task.created", "4 task.updated"]);
  assert.deepEqual(second.tasks().getSnapshot().map((x) => `${x.title} v${x.version}`), ["a2 v2", "b v1", "c v1"]);

  // Live: three changes in one turn go out as one message.
  const live = server.messages.length;
  server.addTask({ title: "d" });
  server.updateTask(2, { completed: true });
  server.commit("task.deleted", 3);
  await waitFor(() => second.seq === 7, { message: "seq 7" });
  const events = server.messages.slice(live).filter((m) => m.some((type) => type.startsWith("task.")));
  assert.deepEqual(events, [["task.created", "task.updated", "task.deleted"]]);
  assert.deepEqual(applied.slice(3), ["5 task.created", "6 task.updated", "7 task.deleted"]);
  assert.deepEqual(second.tasks().getSnapshot().map((x) => `${x.title} ${x.completed}`), ["a2 false", "b true", "d false"]);
  assert.equal(server.upgrades.length, 2, "no reconnect");
});

test("a line of a message that is not JSON is skipped like a whole message that is not; empty lines are ignored; the rest apply in order", async (t) => {
  const server = await startFakeServer({ batch: true });
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  const applied = [];
  client.onEvent((e) => applied.push(e.seq));
  await client.ready();
  const [sock] = server.sockets;

  // Events made but held back, to be sent by hand.
  server.held = [];
  server.addTask({ title: "x" });
  server.addTask({ title: "y" });
  server.addTask({ title: "z" });
  const [e1, e2, e3] = server.held;
  server.held = null;
  sock.sendRaw([JSON.stringify(e1), "{not json", "", JSON.stringify(e2), "null", ""].join("\n"));
  sock.sendRaw("not json at all"); // a whole message that does not parse: skipped, as always
  sock.sendRaw(`${JSON.stringify(e3)}\n`);
  await waitFor(() => client.seq === 3, { message: "seq 3" });
  assert.deepEqual(applied, [1, 2, 3]);
  assert.deepEqual(client.tasks().getSnapshot().map((x) => x.title), ["x", "y", "z"]);
  assert.equal(client.connection.get().status, "live");
  assert.equal(server.upgrades.length, 1, "no reconnect");
});
