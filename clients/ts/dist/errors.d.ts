import type { ErrorFrame } from "./protocol.gen.js";
/** The server refused a request: an error frame (docs/PROTOCOL.md, Errors). */
export declare class RequestError extends Error {
    /** The error code: invalid, not_found, version_mismatch, forbidden, ... */
    readonly code: string;
    /** The whole error frame (fields, the current task of a version_mismatch, retry_after_ms). */
    readonly frame: ErrorFrame;
    constructor(frame: ErrorFrame);
}
/** A request could not be sent, or its answer was lost, because the socket is down or the client closed. */
export declare class DisconnectedError extends Error {
    readonly code = "disconnected";
    constructor(message?: string);
}
