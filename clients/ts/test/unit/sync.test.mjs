import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryStorage } from "../../dist/tasksync-client.js";
import { newClient, startFakeServer, waitFor, waitStatus } from "./fake-server.mjs";

test("first connect asks for a snapshot (since=-1), collects its pages and replaces the list on more:false", async (t) => {
  const server = await startFakeServer({ pageSize: 2 });
  t.after(() => server.stop());
  for (let i = 1; i <= 5; i++) server.addTask({ title: `task ${i}` });
  const client = await newClient(server);
  t.after(() => client.close());
  const view = client.tasks();
  let seenPartial = false;
  view.subscribe(() => {
    const n = view.getSnapshot().length;
    if (n > 0 && n < 5) seenPartial = true;
  });
  await client.ready();
  assert.deepEqual(view.getSnapshot().map((x) => x.title), ["task 1", "task 2", "task 3", "task 4", "task 5"]);
  assert.equal(client.seq, 5);
  assert.equal(seenPartial, false, "the list never shows part of a snapshot");
  const up = server.upgrades[0];
  assert.match(up.url, /[?&]since=-1/);
  assert.doesNotMatch(up.url, /token|bearer/i, "the token is never in the URL");
  assert.equal(up.protocols[0], "tasksync.v1");
  assert.match(up.protocols[1], /^bearer\./);
  assert.deepEqual(server.invalid, []);
});

test("a reconnect resumes with since=<last seq>: only the missed events, each applied once", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "a" });
  const storage = memoryStorage();
  const first = await newClient(server, { storage });
  await first.ready();
  await first.close();
  server.addTask({ title: "b" });
  server.addTask({ title: "c" });
  // Hold the upgrade: the stored list must show before the socket is up
  // (without the hold, b and c could arrive before the list is looked at).
  let openUpgrades;
  server.upgradeGate = new Promise((resolve) => (openUpgrades = resolve));
  const second = await newClient(server, { storage });
  t.after(() => second.close());
  const applied = [];
  second.onEvent((e) => applied.push(e.seq));
  await waitFor(() => second.tasks().getSnapshot().length === 1, { message: "stored list" });
  server.upgradeGate = null;
  openUpgrades();
  await second.ready();
  assert.match(server.upgrades[1].url, /[?&]since=1(&|$)/);
  assert.deepEqual(applied, [2, 3]);
  assert.deepEqual(second.tasks().getSnapshot().map((x) => x.title), ["a", "b", "c"]);
});

test("a gap (seq > last + 1) asks for sync since last; duplicates are ignored; every event applies once in order", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const applied = [];
  client.onEvent((e) => applied.push(e.seq));
  const a = server.addTask({ title: "a" }); // seq 1, sent live
  await waitFor(() => client.seq === 1);
  // seq 2 is "lost" on the way: commit it without sending, then send seq 3.
  const st = server.state;
  const b = { ...a, id: st.nextId++, title: "b" };
  st.tasks.set(b.id, b);
  st.log.push({ type: "task.created", seq: ++st.seq, task: b });
  server.addTask({ title: "c" }); // seq 3: a gap
  await waitFor(() => client.seq === 3, { message: "resync" });
  const sync = server.received.find((f) => f.type === "sync");
  assert.equal(sync.since, 1);
  // Duplicates of applied events change nothing.
  for (const s of server.sockets) for (const e of st.log) s.send(e);
  await client.request({ type: "ping" });
  assert.deepEqual(applied, [1, 2, 3]);
  assert.deepEqual(client.tasks().getSnapshot().map((x) => x.title), ["a", "b", "c"]);
  assert.deepEqual(server.invalid, []);
});

test("a snapshot without id (pruned events) replaces the list; an unfinished one is dropped at a new page 0", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "old" });
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const [sock] = server.sockets;
  const task = (id, title) => ({ ...server.state.tasks.get(1), id, title });
  const reason = "the events this socket missed are no longer retained";
  sock.send({ type: "snapshot", seq: 9, page: 0, reason, tasks: [task(5, "half")], more: true });
  sock.send({ type: "snapshot", seq: 10, page: 0, reason, tasks: [task(6, "x")], more: true });
  sock.send({ type: "snapshot", seq: 10, page: 1, tasks: [task(7, "y")], more: false });
  await waitFor(() => client.seq === 10);
  assert.deepEqual(client.tasks().getSnapshot().map((x) => x.title), ["x", "y"]);
});

test("task views filter and order like the REST list, and keep their array until something changes", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "b", priority: "high", tags: ["home"] });
  server.addTask({ title: "a", priority: "low", tags: ["home", "shop"], completed: true });
  server.addTask({ title: "c", priority: "high" });
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const titles = (f) => client.tasks(f).getSnapshot().map((x) => x.title);
  assert.deepEqual(titles({ status: "pending", sort: "title" }), ["b", "c"]);
  assert.deepEqual(titles({ tag: "home", sort: "title", order: "desc" }), ["b", "a"]);
  assert.deepEqual(titles({ priority: "low,medium" }), ["a"]);
  assert.deepEqual(titles({ q: "C" }), ["c"]);
  const view = client.tasks();
  const before = view.getSnapshot();
  assert.equal(view.getSnapshot(), before);
  server.updateTask(3, { title: "c2" });
  await waitFor(() => view.getSnapshot() !== before);
  assert.equal(view.getSnapshot()[2].title, "c2");
});
