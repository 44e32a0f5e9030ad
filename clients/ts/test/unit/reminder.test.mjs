import { test } from "node:test";
import assert from "node:assert/strict";
import { newClient, startFakeServer } from "./fake-server.mjs";

/** A remind_at as the server writes it. */
function stampIn(ms) {
  return new Date(Date.now() + ms).toISOString().replace("Z", "000Z");
}

test("onReminder hands each reminder to the app once (live and pending), in arrival order; unsubscribe stops it", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const task = server.addTask({ title: "call mum" });
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const got = [];
  const off = client.onReminder((r) => got.push(r));
  // A listener that throws (reported on the console) does not stop the others.
  const quiet = console.error;
  console.error = () => {};
  t.after(() => (console.error = quiet));
  const offThrowing = client.onReminder(() => {
    throw new Error("listener failure");
  });
  const after = [];
  client.onReminder((r) => after.push(r.reminder_id));
  const remindAt = stampIn(0);
  const live = { type: "reminder", reminder_id: "7", task, remind_at: remindAt, pending: false };
  const pending = { type: "reminder", reminder_id: "8", task, remind_at: remindAt, pending: true };
  for (const s of server.sockets) {
    s.send(live);
    s.send(live); // the same reminder again (say, after a reconnect): not handed over twice
    s.send(pending);
  }
  await client.request({ type: "ping" }); // everything sent before the pong has arrived
  assert.deepEqual(got.map((r) => [r.reminder_id, r.pending, r.task.id, r.remind_at]), [
    ["7", false, task.id, remindAt],
    ["8", true, task.id, remindAt],
  ]);
  assert.deepEqual(after, ["7", "8"], "a throwing listener does not keep the reminder from later listeners");
  off();
  offThrowing();
  for (const s of server.sockets) s.send({ ...live, reminder_id: "9" });
  await client.request({ type: "ping" });
  assert.equal(got.length, 2, "an unsubscribed listener is not called");
  assert.deepEqual(server.invalid, []);
});
