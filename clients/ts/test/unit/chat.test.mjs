import { test } from "node:test";
import assert from "node:assert/strict";
import { newClient, startFakeServer, waitFor } from "./fake-server.mjs";

test("chat.send streams typed events: started, tool_call, tool_result, deltas, done", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  const stream = client.chat.send("what's pending?"); // before the socket is live: it waits
  const events = [];
  for await (const ev of stream) events.push(ev);
  assert.deepEqual(events.map((e) => e.type), ["started", "tool_call", "tool_result", "delta", "delta", "done"]);
  const text = events.filter((e) => e.type === "delta").map((e) => e.text).join("");
  assert.equal(text, "Nothing pending.");
  assert.equal(events.at(-1).status, "complete");
  assert.equal(events.at(-1).text, text);
  assert.equal(await stream.conversationId, 12);
  const send = server.received.find((f) => f.type === "chat.send");
  assert.equal(send.message, "what's pending?");
  assert.equal(send.conversation_id, undefined);
  // The runtime's zone goes with the message, so that "tomorrow at 9" is read in it.
  assert.equal(send.tz, Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.deepEqual(server.invalid, []);
});

test("chat.send takes tz, or null to send none", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  for await (const ev of client.chat.send("what's pending?", { tz: "Europe/Berlin" })) void ev;
  for await (const ev of client.chat.send("what's pending?", { tz: null })) void ev;
  const sends = server.received.filter((f) => f.type === "chat.send");
  assert.deepEqual(sends.map((f) => f.tz), ["Europe/Berlin", undefined]);
  assert.deepEqual(server.invalid, []);
});

test("cancel() sends chat.cancel and the stream ends with done, status cancelled", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.chatEndless = true;
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const stream = client.chat.send("write a long poem", { conversationId: 7 });
  const events = [];
  for await (const ev of stream) {
    events.push(ev);
    if (events.filter((e) => e.type === "delta").length === 3) void stream.cancel();
  }
  assert.equal(events.at(-1).type, "done");
  assert.equal(events.at(-1).status, "cancelled");
  const cancel = server.received.find((f) => f.type === "chat.cancel");
  assert.equal(cancel.conversation_id, 7);
});

test("a turn started on another device streams through client.chat.turns", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  const turns = [];
  client.chat.turns.subscribe((s) => turns.push(s));
  server.startTurn({ conversationId: 3, message: "from the phone", requestId: "m1", sessionId: "OTHERSESSION0000" });
  server.startTurn({ conversationId: 4, message: "from REST" }); // no session
  await waitFor(() => turns.length === 2);
  assert.equal(turns[0].local, false);
  assert.equal(turns[0].message, "from the phone");
  const events = [];
  for await (const ev of turns[0]) events.push(ev.type);
  assert.equal(events[0], "started");
  assert.equal(events.at(-1), "done");
  assert.equal(await turns[1].conversationId, 4);
});

test("a turn already running when the client connects streams through client.chat.turns from its first event seen", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.chatEndless = true;
  server.startTurn({ conversationId: 9, message: "started before this client" }); // no socket yet: its start is lost
  const client = await newClient(server);
  t.after(() => client.close());
  const turns = [];
  client.chat.turns.subscribe((s) => turns.push(s));
  await client.ready();
  await waitFor(() => turns.length === 1);
  assert.equal(turns[0].local, false);
  assert.equal(turns[0].message, "", "its message was in the start this client did not see");
  assert.equal(await turns[0].conversationId, 9);
  const events = [];
  for await (const ev of turns[0]) {
    events.push(ev.type);
    if (events.length === 2) server.turns.get(9).cancel();
  }
  assert.equal(events[0], "delta");
  assert.equal(events.at(-1), "done");
  assert.equal(turns.length, 1, "one stream for the turn; its late frames start no other");
});

test("a refused chat.send throws from the iterator", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.hooks["chat.send"] = (sock, f) => {
    sock.send({ type: "error", id: f.id, re: "chat.send", code: "conflict", message: "a turn is already running" });
    return true;
  };
  const client = await newClient(server);
  t.after(() => client.close());
  await assert.rejects(async () => {
    for await (const ev of client.chat.send("hi", { conversationId: 1 })) void ev;
  }, (err) => err.code === "conflict");
});

test("presence: the presence.list reply after hello, then presence frames", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server, { device: "laptop" });
  t.after(() => client.close());
  await waitFor(() => client.presence.get().online === 1, { message: "presence.list" });
  assert.equal(client.presence.get().sessions[0].device, "laptop");
  const seen = [];
  client.presence.subscribe((p) => seen.push(p.online));
  const other = await newClient(server, { device: "phone" });
  await waitFor(() => client.presence.get().online === 2, { message: "join" });
  await other.close();
  await waitFor(() => client.presence.get().online === 1, { message: "leave" });
  assert.deepEqual(seen.slice(-2), [2, 1]);
  assert.ok(server.received.some((f) => f.type === "presence.list"));
});
