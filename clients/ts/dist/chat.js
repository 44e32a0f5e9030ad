// Chat turns as async iterators of typed events (docs/PROTOCOL.md, Chat).
//
// chat.send is answered by a reply and, through the broker, by the turn's
// chat.* frames, in either order: the stream is matched by the request id
// (chat.started.request_id) or the turn_id of the reply. A chat.started
// that names no request of this client is a turn started elsewhere (another
// device, REST): it becomes a stream handed to client.chat.turns listeners.
import { DisconnectedError } from "./errors.js";
function isChatFrame(f) {
    return typeof f.type === "string" && f.type.startsWith("chat.") && "turn_id" in f;
}
/** The runtime's IANA zone, or undefined when Intl has none worth sending. */
function runtimeZone() {
    try {
        const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
        // "Etc/Unknown" and odd values would be refused by the server (422): send none then.
        return typeof tz === "string" && /^[A-Za-z]+(?:\/[A-Za-z0-9_+-]+)*$/.test(tz) && tz !== "Etc/Unknown" ? tz : undefined;
    }
    catch {
        return undefined;
    }
}
function deferred() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
    });
    promise.catch(() => { }); // nobody has to look at it
    return { promise, resolve, reject };
}
/**
 * One chat turn: iterate it with for await to get its events, from started
 * to exactly one done or error (a refused chat.send throws a RequestError; a
 * socket lost during the turn throws a DisconnectedError: the turn goes on
 * on the server and is stored).
 */
export class ChatStream {
    /** The user message of the turn. */
    message;
    /** Whether this client started the turn (false: another device or REST did). */
    local;
    #conversation = deferred();
    #turn = deferred();
    #buffer = [];
    #wake = null;
    #ended = false;
    #error = null;
    #cancel;
    /** The conversation id, once known; the turn id. */
    conversation;
    turnId;
    constructor(message, local, cancel) {
        this.message = message;
        this.local = local;
        this.#cancel = cancel;
    }
    /** The conversation this turn belongs to (new when the send started one). */
    get conversationId() {
        return this.#conversation.promise;
    }
    /** The turn's id. */
    get turn() {
        return this.#turn.promise;
    }
    /** Whether the turn ended (done, error, or the stream failed). */
    get ended() {
        return this.#ended;
    }
    /** Asks the server to stop the turn; the stream then ends with a done event whose status is "cancelled". */
    cancel() {
        return this.#cancel(this);
    }
    /** @internal */
    identify(conversationId, turnId) {
        this.conversation = conversationId;
        this.turnId = turnId;
        this.#conversation.resolve(conversationId);
        this.#turn.resolve(turnId);
    }
    /** @internal */
    push(ev) {
        if (this.#ended)
            return;
        this.#buffer.push(ev);
        if (ev.type === "done" || ev.type === "error")
            this.#ended = true;
        this.#notify();
    }
    /** @internal */
    fail(err) {
        if (this.#ended)
            return;
        this.#ended = true;
        this.#error = err;
        this.#conversation.reject(err);
        this.#turn.reject(err);
        this.#notify();
    }
    #notify() {
        const w = this.#wake;
        this.#wake = null;
        w?.();
    }
    async *[Symbol.asyncIterator]() {
        for (;;) {
            if (this.#buffer.length > 0) {
                yield this.#buffer.shift();
                continue;
            }
            if (this.#error)
                throw this.#error;
            if (this.#ended)
                return;
            await new Promise((resolve) => (this.#wake = resolve));
        }
    }
}
/** client.chat: send messages, follow turns started elsewhere. */
export class Chat {
    #d;
    #byRequest = new Map();
    #byTurn = new Map();
    #turnListeners = new Set();
    #cancelWanted = new Set();
    #ended = new Set(); // turns that ended here (a late frame of one starts nothing)
    #next = 1;
    constructor(deps) {
        this.#d = deps;
    }
    /**
     * Turns started on another device (or over REST) stream here too: cb gets each one's stream at its
     * start, or at the first event seen of a turn that began before this client connected.
     */
    turns = {
        subscribe: (cb) => {
            this.#turnListeners.add(cb);
            return () => {
                this.#turnListeners.delete(cb);
            };
        },
    };
    /** Sends a message (waiting for the socket if it is down); iterate the result for the answer's events. */
    send(message, opts = {}) {
        const id = `chat-${Date.now().toString(36)}-${this.#next++}`;
        const stream = new ChatStream(message, true, (s) => this.#cancel(s));
        this.#byRequest.set(id, stream);
        const frame = { type: "chat.send", id, message };
        if (opts.conversationId)
            frame.conversation_id = opts.conversationId;
        const tz = opts.tz === undefined ? runtimeZone() : opts.tz;
        if (tz)
            frame.tz = tz;
        this.#d.request(frame, { wait: true }).then((reply) => {
            this.#byRequest.delete(id);
            if (reply.type !== "reply" || reply.re !== "chat.send")
                return;
            this.#link(stream, reply.conversation_id, reply.turn_id);
            if (this.#cancelWanted.delete(stream))
                void this.#cancel(stream);
        }, (err) => {
            this.#byRequest.delete(id);
            stream.fail(err);
        });
        return stream;
    }
    #link(stream, conversationId, turnId) {
        if (stream.turnId)
            return;
        stream.identify(conversationId, turnId);
        if (!stream.ended)
            this.#byTurn.set(turnId, stream);
    }
    async #cancel(stream) {
        if (stream.ended)
            return;
        if (stream.conversation === undefined) {
            this.#cancelWanted.add(stream);
            return;
        }
        try {
            const reply = await this.#d.request({ type: "chat.cancel", conversation_id: stream.conversation });
            if (reply.type === "reply" && reply.re === "chat.cancel" && reply.status === "idle")
                this.#endCancelled(stream);
        }
        catch {
            // The socket is down: the server will not tell us how the turn ended.
            this.#endCancelled(stream);
        }
    }
    #endCancelled(stream) {
        if (stream.ended)
            return;
        stream.push({
            type: "done", conversation_id: stream.conversation ?? 0, turn_id: stream.turnId ?? "", message_id: 0,
            status: "cancelled", text: "", tool_calls: [],
        });
        if (stream.turnId)
            this.#end(stream.turnId);
    }
    /** Routes a frame; returns whether it was a chat frame. */
    apply(f) {
        if (!isChatFrame(f))
            return false;
        if (this.#ended.has(f.turn_id))
            return true;
        let stream = this.#byTurn.get(f.turn_id);
        if (!stream && f.type === "chat.started") {
            const rid = f.request_id !== undefined ? String(f.request_id) : undefined;
            const mine = rid !== undefined && (!f.session_id || f.session_id === this.#d.sessionId()) ? this.#byRequest.get(rid) : undefined;
            if (mine) {
                this.#byRequest.delete(rid);
                this.#link(mine, f.conversation_id, f.turn_id);
                stream = mine;
            }
            else {
                stream = new ChatStream(f.message, false, (s) => this.#cancel(s));
                stream.identify(f.conversation_id, f.turn_id);
                this.#byTurn.set(f.turn_id, stream);
                for (const cb of [...this.#turnListeners])
                    cb(stream);
            }
        }
        if (!stream) {
            // A turn whose start this socket did not see (it began before this
            // client connected): its remaining events are handed over like a turn
            // started elsewhere, from the first one seen. The message is unknown.
            stream = new ChatStream("", false, (s) => this.#cancel(s));
            stream.identify(f.conversation_id, f.turn_id);
            this.#byTurn.set(f.turn_id, stream);
            for (const cb of [...this.#turnListeners])
                cb(stream);
        }
        stream.push({ ...f, type: f.type.slice(5) });
        if (f.type === "chat.done" || f.type === "chat.error")
            this.#end(f.turn_id);
        return true;
    }
    #end(turnId) {
        this.#byTurn.delete(turnId);
        this.#ended.add(turnId);
        if (this.#ended.size > 256)
            this.#ended.delete(this.#ended.values().next().value);
    }
    /** The socket went away: turns in progress cannot be followed any more. */
    down() {
        for (const s of this.#byTurn.values())
            s.fail(new DisconnectedError("the socket closed during the chat turn; reload the conversation"));
        this.#byTurn.clear();
        // Sends not yet answered: their request fails (or, if unsent, waits for the socket).
    }
    /** client.close: every stream ends. */
    close() {
        this.down();
        for (const s of this.#byRequest.values())
            s.fail(new DisconnectedError("the client was closed"));
        this.#byRequest.clear();
    }
}
