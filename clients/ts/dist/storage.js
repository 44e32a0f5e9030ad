// Where the client keeps what must survive a reload or a restart: the
// outbox (changes the server has not acknowledged), and the last seq and
// task list (so that a reload shows the list offline and resumes with
// ?since= instead of a snapshot).
/** Keeps the state in memory: survives a new client with the same storage object, not a process restart. */
export function memoryStorage() {
    let saved = null;
    return {
        async load() {
            return saved === null ? null : JSON.parse(saved);
        },
        async save(state) {
            saved = JSON.stringify(state);
        },
        async clear() {
            saved = null;
        },
    };
}
const STORE = "state";
const KEY = "client";
/**
 * Keeps the state in IndexedDB (browsers; fake-indexeddb in tests), in
 * database `name` (default "tasksync"). Use one name per signed-in user or
 * app when a page hosts several clients.
 */
export function indexedDBStorage(name = "tasksync", factory) {
    let db = null;
    const open = () => {
        db ??= new Promise((resolve, reject) => {
            const idb = factory ?? globalThis.indexedDB;
            if (!idb)
                return reject(new Error("tasksync: indexedDB is not available here; use memoryStorage()"));
            const req = idb.open(name, 1);
            req.onupgradeneeded = () => req.result.createObjectStore(STORE);
            req.onsuccess = () => resolve(req.result);
            req.onerror = () => reject(req.error);
            req.onblocked = () => reject(new Error(`tasksync: IndexedDB database "${name}" is blocked by another tab`));
        });
        return db;
    };
    const run = async (mode, fn) => {
        const d = await open();
        return new Promise((resolve, reject) => {
            const tx = d.transaction(STORE, mode);
            const req = fn(tx.objectStore(STORE));
            // Resolve on commit, not on the request's success: only then is it durable.
            tx.oncomplete = () => resolve(req.result);
            tx.onerror = () => reject(tx.error ?? req.error);
            tx.onabort = () => reject(tx.error ?? new Error("tasksync: IndexedDB transaction aborted"));
        });
    };
    return {
        async load() {
            const v = await run("readonly", (s) => s.get(KEY));
            return v ?? null;
        },
        async save(state) {
            await run("readwrite", (s) => s.put(state, KEY));
        },
        async clear() {
            await run("readwrite", (s) => s.delete(KEY));
        },
    };
}
/** IndexedDB when the runtime has it, else memory. */
export function defaultStorage() {
    return typeof globalThis.indexedDB !== "undefined" ? indexedDBStorage() : memoryStorage();
}
