import type { SnapshotFrame, Task, TaskCreatedFrame, TaskDeletedFrame, TaskUpdatedFrame } from "./protocol.gen.js";
/** A change event of docs/PROTOCOL.md. */
export type TaskEvent = TaskCreatedFrame | TaskUpdatedFrame | TaskDeletedFrame;
/** What applying a frame did. */
export type ApplyResult = "applied" | "duplicate" | "gap" | "collecting";
export declare class TaskStore {
    #private;
    /** Tasks by id, as the server holds them. */
    readonly tasks: Map<number, Task>;
    /** The last applied seq; -1 before the first snapshot. */
    seq: number;
    /** Bumped on every change (views recompute when it moved). */
    version: number;
    /** Restores a persisted state (seq and tasks). */
    load(seq: number, tasks: readonly Task[]): void;
    /** Forgets everything (another user signed in). */
    reset(): void;
    subscribe(cb: () => void): () => void;
    /** Applies a change event in seq order. */
    applyEvent(f: TaskEvent): ApplyResult;
    /** Collects a snapshot page; the last one (more:false) replaces the whole set. */
    applySnapshot(f: SnapshotFrame): ApplyResult;
    /** Whether a snapshot is being collected. */
    get collecting(): boolean;
    /** Forgets a snapshot a closed socket will not finish. */
    dropPartial(): void;
    /** Applies a task from a reply (or a version_mismatch error): kept when newer than what is known. */
    put(task: Task): void;
    /** A delete this client made was confirmed. */
    remove(id: number): void;
    /** Removes several tasks in one change (views never see some of them gone and not the rest). */
    removeMany(ids: Iterable<number>): void;
}
