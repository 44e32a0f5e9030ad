import { test } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import { newClient, startFakeServer, waitFor } from "./fake-server.mjs";

const dom = new JSDOM("<!doctype html><div id=root></div>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.navigator ??= dom.window.navigator;

const React = await import("react");
const { createRoot } = await import("react-dom/client");
const { useTasks, useConnection, useChat } = await import("../../dist/react.js");
const h = React.createElement;

async function render(element) {
  const el = document.createElement("div");
  document.body.append(el);
  const root = createRoot(el);
  root.render(element);
  return { el, unmount: () => root.unmount() };
}

/** Polls cond while React renders on its own schedule, as in a browser. */
const until = (cond, message) => waitFor(cond, { message });

test("useTasks and useConnection re-render on changes", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  server.addTask({ title: "first" });
  const client = await newClient(server);
  t.after(() => client.close());
  let renders = 0;
  function App() {
    renders++;
    const tasks = useTasks(client, { status: "pending" });
    const conn = useConnection(client);
    return h("p", null, `${conn.status}: ${tasks.map((x) => x.title + (x.pending ? "*" : "")).join(",")}`);
  }
  const { el, unmount } = await render(h(App));
  t.after(unmount);
  await until(() => el.textContent === "live: first", `live list, got ${el.textContent}`);
  server.addTask({ title: "second" });
  await until(() => el.textContent === "live: first,second", "the event");
  server.hooks["task.complete"] = () => true; // held: stays pending
  void client.tasks().complete(1).catch(() => {});
  await until(() => el.textContent === "live: second", "the optimistic complete");
  const before = renders;
  await client.request({ type: "ping" }); // frames that change nothing
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(renders, before, "no re-render without a change");
});

test("useChat streams a turn's text and ends with its status", async (t) => {
  const server = await startFakeServer();
  t.after(() => server.stop());
  const client = await newClient(server);
  t.after(() => client.close());
  await client.ready();
  let chat;
  function App() {
    chat = useChat(client);
    return h("p", null, chat.turns.map((x) => `${x.message}>${x.text}|${x.status}`).join(";"));
  }
  const { el, unmount } = await render(h(App));
  t.after(unmount);
  await until(() => chat, "the first render");
  chat.send("what's pending?");
  await until(() => el.textContent === "what's pending?>Nothing pending.|complete", `the turn, got ${el.textContent}`);
  assert.equal(chat.conversationId, 12);
  assert.equal(chat.busy, false);
  assert.equal(chat.turns[0].toolCalls[0].name, "list_tasks");
});
