import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryStorage } from "../../dist/tasksync-client.js";
import { newClient, startFakeServer, switchableOnline, waitFor, waitStatus } from "./fake-server.mjs";

const mutations = (server) => server.received.filter((f) => f.type.startsWith("task."));

test("changes made offline show at once, survive a restart (same storage, new client) and are sent once, in order", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const storage = memoryStorage();
  const online = switchableOnline(false);
  const first = await newClient(server, { storage, online });
  assert.equal(first.connection.get().status, "connecting");
  await waitStatus(first, "offline");
  const tasks = first.tasks();
  void tasks.create({ title: "Buy milk", priority: "high" }).catch(() => {});
  await waitFor(() => tasks.getSnapshot().length === 1);
  const [tmp] = tasks.getSnapshot();
  assert.ok(tmp.id < 0, "a temporary negative id");
  assert.equal(tmp.pending, true);
  void tasks.update(tmp.id, { title: "Buy oat milk" }).catch(() => {});
  void tasks.complete(tmp.id).catch(() => {});
  await waitFor(() => first.outbox.get().length === 3);
  assert.equal(tasks.getSnapshot()[0].title, "Buy oat milk");
  assert.equal(tasks.getSnapshot()[0].completed, true);
  const ids = first.outbox.get().map((m) => m.mutation_id);
  await first.close(); // the "reload"
  assert.equal(server.upgrades.length, 0);

  const second = await newClient(server, { storage });
  t.after(() => second.close());
  await waitFor(() => second.tasks().getSnapshot().length === 1, { message: "the restored outbox in the view" });
  await waitFor(() => second.outbox.get().length === 0, { message: "the outbox drained" });
  const sent = mutations(server);
  assert.deepEqual(sent.map((f) => f.type), ["task.create", "task.update", "task.complete"]);
  assert.deepEqual(sent.map((f) => f.mutation_id), ids, "the same mutation_ids after the restart");
  const real = sent[0].mutation_id && server.state.tasks.get(1);
  assert.equal(sent[1].task_id, real.id, "the update waited for the create's reply and names the real id");
  assert.equal(sent[1].base_version, 1);
  assert.deepEqual({ title: real.title, completed: real.completed, version: real.version }, { title: "Buy oat milk", completed: true, version: 3 });
  await waitFor(() => second.tasks().getSnapshot()[0]?.id === 1);
  assert.equal(second.tasks().getSnapshot()[0].pending, undefined);
  assert.deepEqual(server.invalid, []);
});

test("a lost reply: the change is resent after the reconnect with the same mutation_id and applied once (replayed)", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  server.dropNextReply = true;
  const task = await client.tasks().create({ title: "once" });
  const creates = server.received.filter((f) => f.type === "task.create");
  assert.equal(creates.length, 2);
  assert.equal(creates[0].mutation_id, creates[1].mutation_id);
  assert.equal(server.state.tasks.size, 1);
  assert.equal(task.id, 1);
  await waitFor(() => client.tasks().getSnapshot().length === 1 && client.tasks().getSnapshot()[0].id === 1);
});

test("pending changes are rebased over server events: the view is the server's state plus the local patch", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "t", priority: "low" });
  const online = switchableOnline(true);
  const client = await newClient(server, { online });
  t.after(() => client.close());
  await client.ready();
  online.set(false);
  void client.tasks().update(1, { title: "mine" }).catch(() => {});
  await waitFor(() => client.tasks().getSnapshot()[0].title === "mine");
  // Another device changes another field while this one is offline; on reconnect the event comes first.
  server.updateTask(1, { priority: "high" });
  const blocked = (sock, f) => (f.type === "task.update" ? (sock.heldUpdate = f, true) : false);
  server.hooks["task.update"] = blocked;
  online.set(true);
  await waitFor(() => client.seq === 2, { message: "the other device's event" });
  const [shown] = client.tasks().getSnapshot();
  assert.deepEqual({ title: shown.title, priority: shown.priority, pending: shown.pending }, { title: "mine", priority: "high", pending: true });
});

test("a version conflict keeps the server's version by default and is reported in client.conflicts", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "t" });
  const online = switchableOnline(true);
  const client = await newClient(server, { online });
  t.after(() => client.close());
  await client.ready();
  online.set(false);
  const p = client.tasks().update(1, { title: "mine" });
  server.updateTask(1, { title: "theirs" });
  online.set(true);
  await assert.rejects(p, (err) => err.code === "version_mismatch");
  const [c] = client.conflicts.get();
  assert.equal(c.resolution, "server");
  assert.deepEqual(c.local, { title: "mine" });
  assert.equal(c.server.title, "theirs");
  assert.equal(client.tasks().getSnapshot()[0].title, "theirs");
  assert.equal(client.outbox.get().length, 0);
  assert.equal(server.state.tasks.get(1).title, "theirs");
});

test('onConflict "local" resends the change over the server version (a new mutation_id, base_version = its version)', async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "t" });
  const online = switchableOnline(true);
  const seen = [];
  const client = await newClient(server, { online, onConflict: (c) => (seen.push(c), "local") });
  t.after(() => client.close());
  await client.ready();
  online.set(false);
  const p = client.tasks().update(1, { title: "mine" });
  server.updateTask(1, { priority: "high" });
  online.set(true);
  const task = await p;
  assert.equal(task.title, "mine");
  assert.equal(task.priority, "high");
  const updates = server.received.filter((f) => f.type === "task.update");
  assert.deepEqual(updates.map((f) => f.base_version), [1, 2]);
  assert.notEqual(updates[0].mutation_id, updates[1].mutation_id);
  assert.equal(seen.length, 1);
  assert.equal(client.conflicts.get()[0].resolution, "local");
});

test("refused changes (not_found, invalid) are dropped with their dependants and reported", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  await assert.rejects(client.tasks().update(99, { title: "x" }), (err) => err.code === "not_found");
  // Refusals the schemas cannot see (the server validates more): titles "refused" are invalid here.
  server.hooks["task.create"] = (sock, f) => {
    if (f.task.title !== "refused") return false;
    sock.send({ type: "error", id: f.id, re: f.type, code: "invalid", message: "the request has invalid fields", fields: { title: "is required" } });
    return true;
  };
  const online = switchableOnline(false);
  const offline = await newClient(server, { online });
  t.after(() => offline.close());
  const view = offline.tasks();
  const bad = assert.rejects(view.create({ title: "refused" }), (err) => err.code === "invalid");
  await waitFor(() => view.getSnapshot().length === 1);
  const dependant = assert.rejects(view.update(view.getSnapshot()[0].id, { title: "still refused" }), (err) => err.code === "invalid");
  online.set(true);
  await bad;
  await dependant;
  assert.deepEqual(client.rejected.get().map((r) => r.code), ["not_found"]);
  assert.deepEqual(offline.rejected.get().map((r) => [r.code, r.mutation.type]), [["invalid", "task.create"], ["invalid", "task.update"]]);
  assert.equal(offline.rejected.get()[0].fields.title, "is required");
  assert.equal(offline.outbox.get().length, 0);
  assert.equal(view.getSnapshot().length, 0);
  assert.equal(server.received.filter((f) => f.type === "task.update" && f.task.title === "still refused").length, 0);
});

test("at most max_in_flight mutations are on the wire; unavailable is retried with the same mutation_id", async (t) => {
  const server = await startFakeServer({ maxInFlight: 2 });
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const held = [];
  let maxHeld = 0;
  server.hooks["task.create"] = (sock, f) => {
    held.push([sock, f]);
    maxHeld = Math.max(maxHeld, held.length);
    return true;
  };
  const all = Promise.all([1, 2, 3, 4, 5].map((i) => client.tasks().create({ title: `t${i}` })));
  await waitFor(() => held.length === 2);
  const [sock, first] = held.shift();
  sock.send({ type: "error", id: first.id, re: "task.create", code: "unavailable", message: "try again" });
  let done = false;
  all.then(() => (done = true), () => (done = true));
  while (!done) {
    await waitFor(() => held.length > 0 || done, { message: "more creates" });
    for (const [s, f] of held.splice(0)) server.handle(s, f);
  }
  const tasks = await all;
  assert.equal(tasks.length, 5);
  assert.ok(maxHeld <= 2, `at most 2 in flight, saw ${maxHeld}`);
  const ids = server.received.filter((f) => f.type === "task.create").map((f) => f.mutation_id);
  assert.equal(new Set(ids).size, 5);
  assert.equal(ids.filter((id) => id === first.mutation_id).length, 2, "the unavailable one was resent with its mutation_id");
  assert.equal(server.state.tasks.size, 5);
  assert.deepEqual(server.invalid, []);
});

test("a change shows in every view from the call to its event, once: no blink when the reply comes before the event, no double row", async (t) => {
  for (const replyFirst of [true, false]) {
    const server = await startFakeServer();
    server.replyFirst = replyFirst;
    const client = await newClient(server);
    await client.ready();
    const tasks = client.tasks();
    const seen = [];
    const unsubscribe = tasks.subscribe(() => seen.push(tasks.getSnapshot().map((x) => `${x.id}:${x.title}:${x.completed}`)));
    const created = await tasks.create({ title: "Buy milk" });
    await tasks.complete(created.id);
    await waitFor(() => client.seq === 2 && client.outbox.get().length === 0);
    unsubscribe();
    await client.close();
    await server.stop();
    const first = seen.findIndex((s) => s.length > 0);
    assert.ok(first >= 0, "the task showed");
    for (const [i, s] of seen.slice(first).entries()) {
      assert.equal(s.length, 1, `replyFirst=${replyFirst}: view ${first + i} is ${JSON.stringify(s)}, want the one task`);
    }
    const last = seen.at(-1)[0];
    assert.equal(last, `${created.id}:Buy milk:true`);
  }
});

test("deleting a whole series hides every occurrence at once, sends series: all, and no row comes back before the events", async (t) => {
  for (const [replyFirst, eventsLater] of [[true, true], [true, false], [false, false]]) {
    const server = await startFakeServer();
    server.addTask({ title: "Gym", due_at: "2026-12-07T18:00:00.000000Z", recurrence: "FREQ=DAILY", series_id: 1, completed: true });
    server.addTask({ title: "Gym", due_at: "2026-12-08T18:00:00.000000Z", recurrence: "FREQ=DAILY", series_id: 1 });
    server.addTask({ title: "Other" });
    server.replyFirst = replyFirst;
    server.eventsLater = eventsLater;
    const client = await newClient(server);
    await client.ready();
    const tasks = client.tasks();
    await waitFor(() => tasks.getSnapshot().length === 3);
    let held;
    server.hooks["task.delete"] = (sock, f) => ((held = { sock, f }), true);
    const seen = [];
    const unsubscribe = tasks.subscribe(() => seen.push(tasks.getSnapshot().map((x) => x.id)));
    const done = tasks.delete(2, { series: "all" });
    await waitFor(() => held !== undefined, { message: "the delete sent" });
    assert.deepEqual(tasks.getSnapshot().map((x) => x.id), [3], "the whole series hidden at once");
    assert.equal(held.f.series, "all");
    server.handle(held.sock, held.f);
    await done;
    await waitFor(() => client.seq === 5, { message: "the two delete events" });
    unsubscribe();
    await client.close();
    await server.stop();
    for (const [i, ids] of seen.entries()) {
      assert.deepEqual(ids, [3], `replyFirst=${replyFirst} eventsLater=${eventsLater}: view ${i} is ${JSON.stringify(ids)}`);
    }
    assert.deepEqual(server.invalid, []);
  }
});

test("deleting one occurrence sends no series and hides only that task", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "Gym", due_at: "2026-12-07T18:00:00.000000Z", recurrence: "FREQ=DAILY", series_id: 1 });
  server.addTask({ title: "Gym", due_at: "2026-12-08T18:00:00.000000Z", recurrence: "FREQ=DAILY", series_id: 1 });
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  await client.tasks().delete(1);
  const sent = server.received.filter((f) => f.type === "task.delete");
  assert.equal(sent.length, 1);
  assert.equal("series" in sent[0], false);
  await waitFor(() => client.seq === 3);
  assert.deepEqual(client.tasks().getSnapshot().map((x) => x.id), [2]);
  assert.deepEqual(server.invalid, []);
});
