/**
 * React bindings (`@tasksync/client/react`), on useSyncExternalStore.
 * `react` (>= 18) is an optional peer dependency: only this module imports it.
 * @module
 */
import type { TasksyncClient } from "./client.js";
import type { ConnectionState } from "./connection.js";
import type { ViewTask } from "./outbox.js";
import type { TaskFilter } from "./protocol.gen.js";
/**
 * The tasks that match filter, live: re-renders on every change. The filter
 * is compared by value, so an inline object literal is fine.
 */
export declare function useTasks(client: TasksyncClient, filter?: TaskFilter): readonly ViewTask[];
/** The connection state (status, url, instance, seq, error), live. */
export declare function useConnection(client: TasksyncClient): ConnectionState;
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
    error?: {
        code: string;
        message: string;
    };
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
/**
 * A conversation with the assistant: send() streams a turn into turns; turns
 * of the same conversation started on another device show up too (and, with
 * no conversationId, the first turn seen starts the conversation).
 */
export declare function useChat(client: TasksyncClient, conversationId?: number): ChatState;
