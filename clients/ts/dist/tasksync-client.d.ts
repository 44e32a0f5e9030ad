/**
 * @tasksync/client: a live task list over one WebSocket, a durable offline
 * outbox, in-band token refresh, presence and streaming chat
 * (docs/PROTOCOL.md). No runtime dependencies; browsers and Node >= 20.
 *
 * ```ts
 * import { createClient } from "@tasksync/client";
 * const client = createClient({ url: "https://api.example.com", getToken: () => authClient.token() });
 * const tasks = client.tasks();
 * await tasks.create({ title: "Buy milk", priority: "high" });
 * for await (const ev of client.chat.send("what's pending?")) console.log(ev);
 * ```
 * @module
 */
export { createClient } from "./client.js";
export type { ClientOptions, TasksyncClient } from "./client.js";
export { memoryStorage, indexedDBStorage } from "./storage.js";
export type { OutboxStorage, StoredState } from "./storage.js";
export { TaskView } from "./view.js";
export type { DeleteOptions, TaskSource, UpdateOptions } from "./view.js";
export { Chat, ChatStream } from "./chat.js";
export type { ChatEvent, ChatSendOptions } from "./chat.js";
export { PROTOCOL, CloseCode, backoffDelay, browserOnline, socketURL, tokenOf } from "./connection.js";
export type { ConnectionState, ConnectionStatus, OnlineSource, RequestOptions, TokenGetter, TokenResult, WebSocketConstructor, WebSocketLike, } from "./connection.js";
export type { Conflict, ConflictResolution, MutationType, PendingMutation, RejectedMutation, ViewTask } from "./outbox.js";
export type { PresenceState } from "./presence.js";
export type { Observable } from "./observable.js";
export type { TaskEvent } from "./store.js";
export { RequestError, DisconnectedError } from "./errors.js";
export { decodeToken, tokenExpiry, tokenUser } from "./token.js";
export type * from "./protocol.gen.js";
