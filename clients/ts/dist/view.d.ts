import type { Task, TaskFields, TaskFilter, TaskPatch } from "./protocol.gen.js";
import type { ViewTask } from "./outbox.js";
/** What a TaskView needs from the client. */
/** Options of TaskView.update. */
export interface UpdateOptions {
    /** The task version the change was made on (default: the version known now). */
    baseVersion?: number;
}
export interface TaskSource {
    /** The whole view (server state plus pending changes); the same Map until something changed. */
    all(): ReadonlyMap<number, ViewTask>;
    subscribe(cb: () => void): () => void;
    create(fields: TaskFields): Promise<Task>;
    update(id: number, patch: TaskPatch, opts?: UpdateOptions): Promise<Task>;
    complete(id: number, completed?: boolean): Promise<Task>;
    delete(id: number, opts?: DeleteOptions): Promise<void>;
}
/** Options of TaskView.delete. */
export interface DeleteOptions {
    /**
     * For an occurrence of a recurring task: "this" (the default) deletes this one (when it is not
     * completed, the server creates the next occurrence), "all" deletes every task of its series.
     */
    series?: "this" | "all";
}
/**
 * A live list of tasks. getSnapshot() returns the same array until the list
 * changes (fit for React's useSyncExternalStore); subscribe(cb) calls cb on
 * every change. Changes made through it are optimistic: they show at once
 * (pending: true) and are sent through the durable outbox; their promise
 * settles when the server acknowledges or refuses them (it stays pending
 * while offline).
 */
export declare class TaskView {
    #private;
    readonly filter: TaskFilter;
    constructor(src: TaskSource, filter?: TaskFilter);
    /** The tasks that match the filter, in its order. */
    getSnapshot: () => readonly ViewTask[];
    /** Calls cb after every change of the list; returns the unsubscribe function. */
    subscribe: (cb: () => void) => (() => void);
    /** Creates a task; it shows at once with a negative temporary id; resolves with the server's task. */
    create(fields: TaskFields): Promise<Task>;
    /**
     * Changes some fields (sent with base_version: a concurrent change elsewhere is a conflict).
     * base_version is the version shown now, unless opts.baseVersion names the one the user started
     * from (an editor opened before a change came in: saving it should be a conflict, not an overwrite).
     */
    update(id: number, patch: TaskPatch, opts?: UpdateOptions): Promise<Task>;
    /** Sets completion; toggles the shown value when completed is omitted. */
    complete(id: number, completed?: boolean): Promise<Task>;
    /** Deletes a task, or with { series: "all" } every task of its recurring series. */
    delete(id: number, opts?: DeleteOptions): Promise<void>;
}
/** The tasks that match filter, ordered as the REST list would order them. */
export declare function select(tasks: Iterable<ViewTask>, filter: TaskFilter): ViewTask[];
