import type { Task } from "./protocol.gen.js";
import type { PendingMutation } from "./outbox.js";
/** Everything the client persists, saved whole after every change. */
export interface StoredState {
    /** The format of this record; 1 today. */
    v: 1;
    /** The user whose data this is: another user's outbox is never sent. */
    user_id: string | null;
    /** The last applied seq (-1: none). */
    seq: number;
    /** The server's tasks at seq. */
    tasks: Task[];
    /** Pending changes, oldest first. */
    outbox: PendingMutation[];
    /** Temporary ids of acknowledged creates and their real ids. */
    id_map: [number, number][];
}
/**
 * A durable store for the client's state. save() is called after every
 * change (never twice at once; the client waits for one to finish before it
 * starts the next, with the newest state).
 */
export interface OutboxStorage {
    load(): Promise<StoredState | null>;
    save(state: StoredState): Promise<void>;
    /** Deletes the stored state (optional). */
    clear?(): Promise<void>;
}
/** Keeps the state in memory: survives a new client with the same storage object, not a process restart. */
export declare function memoryStorage(): OutboxStorage;
/**
 * Keeps the state in IndexedDB (browsers; fake-indexeddb in tests), in
 * database `name` (default "tasksync"). Use one name per signed-in user or
 * app when a page hosts several clients.
 */
export declare function indexedDBStorage(name?: string, factory?: IDBFactory): OutboxStorage;
/** IndexedDB when the runtime has it, else memory. */
export declare function defaultStorage(): OutboxStorage;
