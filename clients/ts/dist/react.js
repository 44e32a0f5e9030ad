/**
 * React bindings (`@tasksync/client/react`), on useSyncExternalStore.
 * `react` (>= 18) is an optional peer dependency: only this module imports it.
 * @module
 */
import { useEffect, useMemo, useState, useSyncExternalStore } from "react";
/**
 * The tasks that match filter, live: re-renders on every change. The filter
 * is compared by value, so an inline object literal is fine.
 */
export function useTasks(client, filter) {
    const key = JSON.stringify(filter ?? {});
    const view = useMemo(() => client.tasks(JSON.parse(key)), [client, key]);
    return useSyncExternalStore(view.subscribe, view.getSnapshot, view.getSnapshot);
}
/** The connection state (status, url, instance, seq, error), live. */
export function useConnection(client) {
    const get = () => client.connection.get();
    return useSyncExternalStore((cb) => client.connection.subscribe(cb), get, get);
}
/** A conversation's turns as an external store: the streams sent here and those started elsewhere. */
class Transcript {
    conversationId;
    turns = [];
    #listeners = new Set();
    #streams = [];
    snapshot;
    constructor(conversationId) {
        this.conversationId = conversationId;
        this.snapshot = { conversationId, turns: [], busy: false };
    }
    subscribe = (cb) => {
        this.#listeners.add(cb);
        return () => {
            this.#listeners.delete(cb);
        };
    };
    get = () => this.snapshot;
    follow(stream) {
        this.#streams.push(stream);
        const index = this.turns.length;
        this.#set(index, { message: stream.message, text: "", toolCalls: [], status: "streaming", local: stream.local });
        void (async () => {
            try {
                for await (const ev of stream)
                    this.#apply(index, ev);
            }
            catch (err) {
                this.#set(index, { status: "error", error: { code: err.code ?? "error", message: String(err.message) } });
            }
            this.#streams = this.#streams.filter((s) => s !== stream);
            this.#emit();
        })();
    }
    cancel() {
        for (const s of this.#streams)
            void s.cancel();
    }
    #apply(index, ev) {
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
    #set(index, patch) {
        const turns = [...this.turns];
        turns[index] = { ...turns[index], ...patch };
        this.turns = turns;
        this.#emit();
    }
    #emit() {
        this.snapshot = { conversationId: this.conversationId, turns: this.turns, busy: this.#streams.length > 0 };
        for (const cb of [...this.#listeners])
            cb();
    }
}
/**
 * A conversation with the assistant: send() streams a turn into turns; turns
 * of the same conversation started on another device show up too (and, with
 * no conversationId, the first turn seen starts the conversation).
 */
export function useChat(client, conversationId) {
    const [transcript] = useState(() => new Transcript(conversationId));
    useEffect(() => client.chat.turns.subscribe((stream) => {
        void stream.conversationId.then((id) => {
            if (transcript.conversationId === undefined || transcript.conversationId === id) {
                transcript.conversationId ??= id;
                transcript.follow(stream);
            }
        });
    }), [client, transcript]);
    const snap = useSyncExternalStore(transcript.subscribe, transcript.get, transcript.get);
    return useMemo(() => ({
        ...snap,
        send: (message) => transcript.follow(client.chat.send(message, { conversationId: transcript.conversationId })),
        cancel: () => transcript.cancel(),
    }), [snap, client, transcript]);
}
