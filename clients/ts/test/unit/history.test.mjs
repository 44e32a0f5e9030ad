import { test } from "node:test";
import assert from "node:assert/strict";
import { RequestError } from "../../dist/tasksync-client.js";
import { newClient, startFakeServer, waitFor } from "./fake-server.mjs";

test("history() lists a task's versions newest first; restore() undoes an edit and brings a deleted task back on every device", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const phone = await newClient(server);
  const laptop = await newClient(server);
  t.after(() => phone.close());
  t.after(() => laptop.close());
  await Promise.all([phone.ready(), laptop.ready()]);

  const task = await phone.tasks().create({ title: "Buy milk" });
  await phone.tasks().update(task.id, { title: "Buy oat milk" });
  const versions = await laptop.history(task.id);
  assert.deepEqual(versions.map((v) => [v.op, v.task?.version]), [["updated", 2], ["created", 1]]);
  const sent = server.received.filter((f) => f.type === "task.history");
  assert.deepEqual(sent.map((f) => [f.task_id, f.limit]), [[task.id, undefined]]);
  assert.equal((await laptop.history(task.id, { limit: 1 })).length, 1);
  assert.equal(server.received.filter((f) => f.type === "task.history").at(-1).limit, 1);

  // Undo the edit: back to version 1, as a new version.
  const undone = await laptop.restore(task.id, 1);
  assert.deepEqual([undone.id, undone.title, undone.version], [task.id, "Buy milk", 3]);
  await waitFor(() => phone.tasks().getSnapshot()[0]?.version === 3, { message: "the undo reached the phone" });

  // Undo a delete: the same id, on both devices.
  await phone.tasks().delete(task.id);
  await waitFor(() => laptop.tasks().getSnapshot().length === 0, { message: "the delete reached the laptop" });
  const back = await laptop.restore(task.id);
  assert.deepEqual([back.id, back.title, back.version], [task.id, "Buy milk", 4]);
  for (const c of [phone, laptop]) {
    await waitFor(() => c.tasks().getSnapshot()[0]?.id === task.id && c.tasks().getSnapshot()[0]?.version === 4, { message: "the restored task on every device" });
  }
  const restores = server.received.filter((f) => f.type === "task.restore");
  assert.equal(restores.length, 2);
  assert.ok(restores.every((f) => typeof f.mutation_id === "string" && f.mutation_id.length > 0), "restores carry a mutation_id");
  assert.notEqual(restores[0].mutation_id, restores[1].mutation_id);
  assert.equal(restores[0].version, 1);
  assert.equal("version" in restores[1], false);

  // Refusals come back as RequestError with the server's code.
  await assert.rejects(laptop.restore(task.id), (err) => err instanceof RequestError && err.code === "conflict");
  await assert.rejects(laptop.restore(task.id, 99), (err) => err instanceof RequestError && err.code === "not_found");
  await assert.rejects(laptop.history(12345), (err) => err instanceof RequestError && err.code === "not_found");
  assert.deepEqual(server.invalid, []);
});

test("restore(): a reply lost with the socket is asked for again with the same mutation_id and applied once", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const task = await client.tasks().create({ title: "once" });
  await client.tasks().delete(task.id);
  server.dropNextReply = true;
  const back = await client.restore(task.id);
  const restores = server.received.filter((f) => f.type === "task.restore");
  assert.equal(restores.length, 2);
  assert.equal(restores[0].mutation_id, restores[1].mutation_id);
  assert.equal(back.id, task.id);
  assert.equal(server.state.log.filter((e) => e.type === "task.created").length, 2, "created, then restored once");
  await waitFor(() => client.tasks().getSnapshot()[0]?.id === task.id);
});
