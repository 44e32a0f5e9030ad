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
export class Cell<T> implements Observable<T> {
  #value: T;
  #listeners = new Set<(value: T) => void>();

  constructor(value: T) {
    this.#value = value;
  }

  get(): T {
    return this.#value;
  }

  set(value: T): void {
    if (Object.is(value, this.#value)) return;
    this.#value = value;
    for (const cb of [...this.#listeners]) {
      try {
        cb(value);
      } catch (err) {
        reportError(err);
      }
    }
  }

  subscribe(cb: (value: T) => void): () => void {
    this.#listeners.add(cb);
    return () => {
      this.#listeners.delete(cb);
    };
  }
}

/** Reports an exception thrown by user code without breaking the SDK's own loop. */
export function reportError(err: unknown): void {
  console.error("tasksync: a listener threw", err);
}
