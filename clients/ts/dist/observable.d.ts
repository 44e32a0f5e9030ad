/**
 * A value that changes over time: read it with get(), be told of changes
 * with subscribe(). The shape fits React's useSyncExternalStore: get() returns
 * the same object until the value changes.
 */
export interface Observable<T> {
    /** The current value. */
    get(): T;
    /** Calls cb after every change (not with the current value); returns the unsubscribe function. */
    subscribe(cb: (value: T) => void): () => void;
}
/** A settable Observable, used inside the SDK. */
export declare class Cell<T> implements Observable<T> {
    #private;
    constructor(value: T);
    get(): T;
    set(value: T): void;
    subscribe(cb: (value: T) => void): () => void;
}
/** Reports an exception thrown by user code without breaking the SDK's own loop. */
export declare function reportError(err: unknown): void;
