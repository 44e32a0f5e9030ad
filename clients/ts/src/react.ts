/**
 * React bindings (`@tasksync/client/react`), on useSyncExternalStore.
 * `react` (>= 18) is an optional peer dependency: only this module imports it.
 * @module
 */

import { useEffect, useMemo, useState, useSyncExternalStore } from "react";
import type { ChatEvent, ChatStream } from "./chat.js";
import type { TasksyncClient } from "./client.js";
import type { ConnectionState } from "./connection.js";
import type { ViewTask } from "./outbox.js";
import type { TaskFilter } from "./protocol.gen.js";
import type { TaskView } from "./view.js";

/**
 * The tasks that match filter, live: re-renders on every change. The filter
 * is compared by value, so an inline object literal is fine.
 */
export function useTasks(client: TasksyncClient, filter?: TaskFilter): readonly ViewTask[] {
  const key = JSON.stringify(filter ?? {});
  const view: TaskView = useMemo(() => client.tasks(JSON.parse(key) as TaskFilter), [client, key]);
  return useSyncExternalStore(view.subscribe, view.getSnapshot, view.getSnapshot);
}

/** The connection state (status, url, instance, seq, error), live. */
export function useConnection(client: TasksyncClient): ConnectionState {
  const get = () => client.connection.get();
  return useSyncExternalStore((cb) => client.connection.subscribe(cb), get, get);
}

/** A tool call of a turn: result (and is_error) once it ran. */
export interface ChatTurnToolCall {
  id: string;
  name: string;
  arguments: unknown;
  result?: unknown;
  is_error?: boolean;
}

/** One turn of a conversation as useChat shows it. */
export interface ChatTurn {
  turnId?: string;
  conversationId?: number;
  /** The user message. */
  message: string;
  /** The answer so far. */
  text: string;
  toolCalls: ChatTurnToolCall[];
  status: "streaming" | "complete" | "cancelled" | "error";
  error?: { code: string; message: string };
  /** Whether this client sent it (false: another device or REST). */
  local: boolean;
}

/** What useChat returns. */
export interface ChatState {
  /** The conversation (set by the first answer when none was given). */
  conversationId?: number;
  /** The turns seen by this hook, oldest first. */
  turns: readonly ChatTurn[];
  /** Whether a turn is being answered. */
  busy: boolean;
  /** Sends a message in this conversation. */
  send(message: string): void;
  /** Stops the turn being answered. */
  cancel(): void;
}

/** A conversation's turns as an external store: the streams sent here and those started elsewhere. */
class Transcript {
  conversationId: number | undefined;
  turns: readonly ChatTurn[] = [];
  #listeners = new Set<() => void>();
  #streams: ChatStream[] = [];
  snapshot: { conversationId?: number; turns: readonly ChatTurn[]; busy: boolean };

  constructor(conversationId?: number) {
    this.conversationId = conversationId;
    this.snapshot = { conversationId, turns: [], busy: false };
  }

  subscribe = (cb: () => void) => {
    this.#listeners.add(cb);
    return () => {
      this.#listeners.delete(cb);
    };
  };

  get = () => this.snapshot;

  follow(stream: ChatStream): void {
    this.#streams.push(stream);
    const index = this.turns.length;
    this.#set(index, { message: stream.message, text: "", toolCalls: [], status: "streaming", local: stream.local });
    void (async () => {
      try {
        for await (const ev of stream) this.#apply(index, ev);
      } catch (err) {
        this.#set(index, { status: "error", error: { code: (err as { code?: string }).code ?? "error", message: String((err as Error).message) } });
      }
      this.#streams = this.#streams.filter((s) => s !== stream);
      this.#emit();
    })();
  }

  cancel(): void {
    for (const s of this.#streams) void s.cancel();
  }

  #apply(index: number, ev: ChatEvent): void {
    const t = this.turns[index];
    switch (ev.type) {
      case "started":
        this.conversationId ??= ev.conversation_id;
        return this.#set(index, { turnId: ev.turn_id, conversationId: ev.conversation_id });
      case "delta":
        return this.#set(index, { text: t.text + ev.text });
      case "tool_call":
        return this.#set(index, { toolCalls: [...t.toolCalls, { id: ev.call_id, name: ev.name, arguments: ev.arguments }] });
      case "tool_result":
        return this.#set(index, {
          toolCalls: t.toolCalls.map((c) => (c.id === ev.call_id ? { ...c, result: ev.result, is_error: ev.is_error } : c)),
        });
      case "done":
        return this.#set(index, { text: ev.text || t.text, toolCalls: ev.tool_calls ?? t.toolCalls, status: ev.status });
      case "error":
        return this.#set(index, { text: ev.text || t.text, status: "error", error: { code: ev.code, message: ev.message } });
    }
  }

  #set(index: number, patch: Partial<ChatTurn>): void {
    const turns = [...this.turns];
    turns[index] = { ...(turns[index] as ChatTurn), ...patch };
    this.turns = turns;
    this.#emit();
  }

  #emit(): void {
    this.snapshot = { conversationId: this.conversationId, turns: this.turns, busy: this.#streams.length > 0 };
    for (const cb of [...this.#listeners]) cb();
  }
}

/**
 * A conversation with the assistant: send() streams a turn into turns; turns
 * of the same conversation started on another device show up too (and, with
 * no conversationId, the first turn seen starts the conversation).
 */
export function useChat(client: TasksyncClient, conversationId?: number): ChatState {
  const [transcript] = useState(() => new Transcript(conversationId));
  useEffect(
    () =>
      client.chat.turns.subscribe((stream) => {
        void stream.conversationId.then((id) => {
          if (transcript.conversationId === undefined || transcript.conversationId === id) {
            transcript.conversationId ??= id;
            transcript.follow(stream);
          }
        });
      }),
    [client, transcript],
  );
  const snap = useSyncExternalStore(transcript.subscribe, transcript.get, transcript.get);
  return useMemo(
    () => ({
      ...snap,
      send: (message: string) => transcript.follow(client.chat.send(message, { conversationId: transcript.conversationId })),
      cancel: () => transcript.cancel(),
    }),
    [snap, client, transcript],
  );
}
