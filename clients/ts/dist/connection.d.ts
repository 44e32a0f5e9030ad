import { type Observable } from "./observable.js";
import type { ClientFrame, HelloFrame, ServerFrame } from "./protocol.gen.js";
/** The subprotocol of docs/PROTOCOL.md; the token is offered beside it as "bearer.<token>". */
export declare const PROTOCOL = "tasksync.v1";
/** Close codes of docs/PROTOCOL.md and what they mean to a client. */
export declare const CloseCode: {
    readonly Normal: 1000;
    readonly GoingAway: 1001;
    readonly Abnormal: 1006;
    readonly TooBig: 1009;
    readonly Internal: 1011;
    readonly Unauthorized: 4001;
    readonly Forbidden: 4003;
    readonly SlowConsumer: 4008;
    readonly TooManySockets: 4009;
    readonly Revoked: 4010;
    readonly RateLimited: 4029;
};
/** What the connection is doing. */
export type ConnectionStatus = "connecting" | "live" | "offline" | "reconnecting" | "unauthenticated" | "closed";
/** The connection's state, as client.connection publishes it. */
export interface ConnectionState {
    status: ConnectionStatus;
    /** The socket URL in use (or being tried). */
    url?: string;
    /** The server instance that said hello. */
    instance?: string;
    /** This socket's session id (from hello). */
    sessionId?: string;
    /** The last change seq applied locally (-1 before the first snapshot). */
    seq: number;
    /** When a reconnect is scheduled (ms since the epoch), while reconnecting. */
    retryAt?: number;
    /** Why the last socket ended or could not start. */
    error?: {
        code?: number;
        message: string;
    };
}
/** The part of the WebSocket API the client uses (browsers' WebSocket and the `ws` package both fit). */
export interface WebSocketLike {
    readonly readyState: number;
    readonly protocol: string;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: any) => void) | null;
    onmessage: ((ev: any) => void) | null;
    onclose: ((ev: any) => void) | null;
    onerror: ((ev: any) => void) | null;
}
/** A WebSocket constructor: globalThis.WebSocket, or `WebSocket` from the `ws` package on Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
/** Where the client learns whether the network is up. */
export interface OnlineSource {
    isOnline(): boolean;
    /** Calls cb(true|false) when the network comes or goes; returns the unsubscribe function. */
    subscribe(cb: (online: boolean) => void): () => void;
}
/**
 * What a TokenGetter may return: the token itself, or an object holding it as
 * `token` or `data.token` (Better Auth's `authClient.token()` resolves to
 * `{ data: { token } }`, or `{ data: null, error }` when signed out), or
 * null/undefined when signed out.
 */
export type TokenResult = string | {
    token?: string | null;
} | {
    data?: {
        token?: string | null;
    } | null;
} | null | undefined;
/** Provides a token: a JWT (or any token the server accepts), or null when signed out. */
export type TokenGetter = () => Promise<TokenResult> | TokenResult;
/** The token a TokenGetter returned, or null. */
export declare function tokenOf(t: TokenResult): string | null;
/** navigator.onLine and the window's online/offline events; always online where they do not exist (Node). */
export declare function browserOnline(): OnlineSource;
/**
 * A full-jitter exponential backoff delay: uniformly random in
 * [0, min(maxMs, minMs * 2^attempt)], so that a fleet of clients dropped at
 * once does not come back at once.
 */
export declare function backoffDelay(attempt: number, minMs: number, maxMs: number, random?: () => number): number;
/** Turns a base URL (http, https, ws or wss; with or without /ws) into the socket URL. */
export declare function socketURL(base: string): string;
/** The REST base URL beside a socket URL (for the 401 probe). */
export declare function restBase(socket: string): string;
export interface ConnectionOptions {
    urls: string[];
    WebSocket: WebSocketConstructor;
    getToken: TokenGetter;
    fetch?: typeof fetch;
    device?: string;
    backoff: {
        minMs: number;
        maxMs: number;
    };
    refreshBeforeMs: number;
    online: OnlineSource;
    /** How long without a frame before an application ping checks the socket. */
    heartbeatMs: number;
    /** The seq to resume after (-1: ask for a snapshot). */
    since(): number;
    /** A socket said hello (before the state turns live and queued requests go out). */
    onHello(hello: HelloFrame): void;
    /** Every frame after hello, replies included (after their promise settled). */
    onFrame(frame: ServerFrame): void;
    /** The live socket went away (closed, dropped, offline). */
    onDown(): void;
}
/** Options of Connection.request. */
export interface RequestOptions {
    /** Wait for the socket to be live instead of failing at once (the request still fails if the socket drops after sending it). */
    wait?: boolean;
    /** Fail with DisconnectedError when no answer came within this many ms. */
    timeoutMs?: number;
}
export declare class Connection {
    #private;
    constructor(o: ConnectionOptions);
    /** The connection state. */
    get state(): Observable<ConnectionState>;
    /** The last hello (null before the first one). */
    get hello(): HelloFrame | null;
    /** The user the connection is signed in as: from hello, else from the token. */
    get userId(): string | null;
    get live(): boolean;
    /** Starts connecting (once). */
    start(): void;
    /** Connects now: after unauthenticated (with a new token), or to skip a backoff wait. A live socket is kept. */
    reconnect(): void;
    /** Closes for good: the socket with 1000, pending requests fail. */
    close(): void;
    /** Publishes a new local seq in the state. */
    setSeq(seq: number): void;
    /**
     * Sends a request and resolves with its answer (reply, pong, synced, or
     * the first snapshot page), or rejects with RequestError (an error frame)
     * or DisconnectedError. rate_limited refusals are resent after
     * retry_after_ms by the connection itself.
     */
    request(frame: ClientFrame, opts?: RequestOptions): Promise<ServerFrame>;
}
