import { test } from "node:test";
import assert from "node:assert/strict";
import { IDBFactory } from "fake-indexeddb";
import { indexedDBStorage, memoryStorage } from "../../dist/tasksync-client.js";
import { makeToken, newClient, startFakeServer, switchableOnline, waitFor } from "./fake-server.mjs";

const state = (seq) => ({ v: 1, user_id: "alice", seq, tasks: [], outbox: [], id_map: [] });

test("memoryStorage and indexedDBStorage keep the last saved state", async () => {
  for (const storage of [memoryStorage(), indexedDBStorage("t1", new IDBFactory())]) {
    assert.equal(await storage.load(), null);
    await storage.save(state(1));
    await storage.save(state(2));
    assert.deepEqual(await storage.load(), state(2));
    await storage.clear();
    assert.equal(await storage.load(), null);
  }
});

test("an IndexedDB outbox survives a restart: a new client on the same database sends it once", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const idb = new IDBFactory();
  const online = switchableOnline(false);
  const first = await newClient(server, { storage: indexedDBStorage("tasksync", idb), online });
  void first.tasks().create({ title: "offline" }).catch(() => {});
  await waitFor(() => first.outbox.get().length === 1);
  await first.close();
  const second = await newClient(server, { storage: indexedDBStorage("tasksync", idb) });
  t.after(() => second.close());
  await waitFor(() => server.state.tasks.size === 1 && second.outbox.get().length === 0, { message: "the outbox sent" });
  assert.equal(server.received.filter((f) => f.type === "task.create").length, 1);
  await second.close();
  // The task list and seq are kept too: a third client shows the list before it connects.
  const stored = await indexedDBStorage("tasksync", idb).load();
  assert.equal(stored.seq, 1);
  assert.deepEqual(stored.tasks.map((x) => x.title), ["offline"]);
  assert.deepEqual(stored.outbox, []);
});

test("another user's stored state is dropped at hello, never shown or sent", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const storage = memoryStorage();
  await storage.save({
    v: 1, user_id: "mallory", seq: 5, id_map: [],
    tasks: [{ id: 9, user_id: "mallory", title: "secret", description: "", completed: false, priority: "low", tags: [], due_date: null, created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z", version: 1 }],
    outbox: [{ mutation_id: "m1", type: "task.delete", task_id: 9, attempts: 0, created_at: "2026-01-01T00:00:00Z" }],
  });
  const client = await newClient(server, { storage });
  t.after(() => client.close());
  await client.ready();
  assert.equal(client.tasks().getSnapshot().length, 0);
  assert.equal(client.userId, "alice");
  assert.equal(server.received.filter((f) => f.type.startsWith("task.")).length, 0);
});

const mallorys = () => ({
  v: 1, user_id: "mallory", seq: 5, id_map: [],
  tasks: [{ id: 9, user_id: "mallory", title: "secret", description: "", completed: false, priority: "low", tags: [], due_date: null, created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z", version: 1 }],
  outbox: [],
});

test("a shared browser: another user's stored state is not shown even before hello, offline included", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  // alice's token names her: mallory's list is never loaded, offline or not.
  const storage = memoryStorage();
  await storage.save(mallorys());
  const offline = await newClient(server, { storage, online: switchableOnline(false) });
  const seen = [];
  offline.tasks().subscribe(() => seen.push(offline.tasks().getSnapshot().length));
  await waitFor(() => offline.connection.get().status === "offline");
  assert.equal(offline.tasks().getSnapshot().length, 0);
  await offline.close();
  assert.deepEqual(seen.filter((n) => n > 0), [], "no view ever showed mallory's task");

  // A token that names nobody (opaque): the stored list waits for hello.
  const opaque = memoryStorage();
  await opaque.save(mallorys());
  const online = switchableOnline(false);
  const client = await newClient(server, { storage: opaque, online, getToken: () => "opaque-token-alice" });
  t.after(() => client.close());
  await waitFor(() => client.connection.get().status === "offline");
  assert.equal(client.tasks().getSnapshot().length, 0, "hidden until the server names the user");
});

test("the app's userId (or the token's sub) shows the user's own stored list at once, offline", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  for (const opts of [{ userId: "mallory", getToken: () => null }, { getToken: () => makeToken("mallory") }]) {
    const storage = memoryStorage();
    await storage.save(mallorys());
    const client = await newClient(server, { storage, online: switchableOnline(false), ...opts });
    await waitFor(() => client.tasks().getSnapshot().length === 1, { message: "mallory's own list, offline" });
    assert.equal(client.tasks().getSnapshot()[0].title, "secret");
    await client.close();
  }
});
