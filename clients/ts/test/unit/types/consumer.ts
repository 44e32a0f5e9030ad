// How an app's TypeScript uses the package: through its exports (the
// package's own name), with the `ws` package on Node and the DOM's
// WebSocket in browsers. Type-checked by types.test.mjs, never run.
import WebSocket from "ws";
import { createClient, memoryStorage, type ChatEvent, type ConnectionState, type Conflict } from "@tasksync/client";
import { useChat, useConnection, useTasks } from "@tasksync/client/react";

const client = createClient({
  url: ["https://a.example.com", "wss://b.example.com/ws"],
  getToken: async () => "token",
  WebSocket,
  storage: memoryStorage(),
  onConflict: (c: Conflict) => (c.server.version > 3 ? "server" : { title: c.server.title + " (mine)" }),
  backoff: { minMs: 100 },
});
createClient({ url: "https://a.example.com", getToken: () => null, WebSocket: globalThis.WebSocket });

const view = client.tasks({ status: "pending", sort: "due_date" });
const first = view.getSnapshot()[0];
const pending: boolean = first?.pending ?? false;
const state: ConnectionState = client.connection.get();
async function chat(): Promise<string> {
  let text = "";
  for await (const ev of client.chat.send("what's pending?")) {
    const e: ChatEvent = ev;
    if (e.type === "delta") text += e.text;
    if (e.type === "done") return e.status;
  }
  return text;
}
void [pending, state, chat, useTasks, useConnection, useChat];
