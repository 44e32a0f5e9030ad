import type { ClientFrame, ServerFrame, Task, TaskFields, TaskPatch } from "./protocol.gen.js";
import type { TaskStore } from "./store.js";
/** The kinds of change the outbox holds. */
export type MutationType = "task.create" | "task.update" | "task.complete" | "task.delete";
/** A local change not yet acknowledged by the server, as it is stored. */
export interface PendingMutation {
    /** The idempotency key sent with every attempt. */
    mutation_id: string;
    type: MutationType;
    /** The task changed: a real id, or the negative temporary id of a create still pending. */
    task_id?: number;
    /** A create: the negative id its placeholder carries until the server names the task. */
    temp_id?: number;
    /** A create's fields, or an update's patch. */
    task?: TaskFields | TaskPatch;
    /** A complete: the completion set. */
    completed?: boolean;
    /** The task version the change was made on (sent with updates as base_version). */
    base_version?: number;
    /** A delete: "all" deletes every task of the task's recurring series (absent: this task only). */
    series?: "this" | "all";
    /** A series delete: the series_id of the task, as shown when the delete was made. */
    series_id?: number;
    /** How many times it was sent. */
    attempts: number;
    /**
     * A create: the highest task id this client knew when it was first sent.
     * Its task will have a higher id: a task.created event applied before the
     * reply is matched to it by that and by its fields, and shown once.
     */
    after_id?: number;
    /** When the change was made (ISO 8601). */
    created_at: string;
    /** The last error that made it wait (unavailable, internal...). */
    last_error?: string;
}
/** A version conflict, as onConflict sees it and client.conflicts reports it. */
export interface Conflict {
    /** The local change (an update's patch, or {completed} for a complete). */
    local: TaskPatch;
    /** The task as the server holds it now. */
    server: Task;
    /** The refused change. */
    mutation: PendingMutation;
    /** What was done: the server's version kept, the local change resent, or a merged patch resent. */
    resolution?: "server" | "local" | "merged";
    /** When it happened (ISO 8601). */
    at?: string;
}
/** What onConflict decides: keep the server's version, resend the local change over it, or resend this patch. */
export type ConflictResolution = "server" | "local" | TaskPatch;
/** A change the server refused for good (not_found, invalid, ...). */
export interface RejectedMutation {
    mutation: PendingMutation;
    code: string;
    message: string;
    fields?: {
        [field: string]: string | undefined;
    };
    at: string;
}
export interface OutboxDeps {
    store: TaskStore;
    request(frame: ClientFrame): Promise<ServerFrame>;
    live(): boolean;
    onConflict(c: Conflict): ConflictResolution | Promise<ConflictResolution>;
    onChange(): void;
    onConflictReported(c: Conflict): void;
    onRejected(r: RejectedMutation): void;
    retry: {
        minMs: number;
        maxMs: number;
    };
}
export declare class Outbox {
    #private;
    /** Bumped on every change of the list (views recompute when it moved). */
    version: number;
    constructor(deps: OutboxDeps);
    /** The pending changes, oldest first. */
    get list(): readonly PendingMutation[];
    /** Temporary ids of acknowledged creates and the real ids they became. */
    get idMap(): ReadonlyMap<number, number>;
    /** Restores a stored outbox. */
    load(list: readonly PendingMutation[], idMap: readonly (readonly [number, number])[]): void;
    /** Drops everything (another user signed in). */
    clear(): void;
    /** Stops retry timers (client.close). */
    stop(): void;
    /** The real id of a task, when id is the temporary id of an acknowledged create. */
    resolveId(id: number): number;
    /** Queues a change; resolves with the task the server returns (undefined for a delete). */
    add(m: Omit<PendingMutation, "mutation_id" | "attempts" | "created_at">): {
        mutation: PendingMutation;
        done: Promise<Task | undefined>;
    };
    /** Sends what may be sent now: in order, one change per task on the wire, creates before their dependants. */
    pump(): void;
}
/** A fresh idempotency key (crypto.randomUUID where it exists). */
export declare function newMutationId(): string;
/** A task as the view shows it: the server's, with this client's pending changes applied. */
export type ViewTask = Task & {
    pending?: true;
};
/** The server's tasks with the pending changes applied over them, in outbox order. */
export declare function overlay(tasks: ReadonlyMap<number, Task>, pending: readonly PendingMutation[], userId: string): Map<number, ViewTask>;
