/** A settable Observable, used inside the SDK. */
export class Cell {
    #value;
    #listeners = new Set();
    constructor(value) {
        this.#value = value;
    }
    get() {
        return this.#value;
    }
    set(value) {
        if (Object.is(value, this.#value))
            return;
        this.#value = value;
        for (const cb of [...this.#listeners]) {
            try {
                cb(value);
            }
            catch (err) {
                reportError(err);
            }
        }
    }
    subscribe(cb) {
        this.#listeners.add(cb);
        return () => {
            this.#listeners.delete(cb);
        };
    }
}
/** Reports an exception thrown by user code without breaking the SDK's own loop. */
export function reportError(err) {
    console.error("tasksync: a listener threw", err);
}
