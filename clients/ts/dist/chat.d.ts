import type { ChatDeltaFrame, ChatDoneFrame, ChatErrorFrame, ChatStartedFrame, ChatToolCallFrame, ChatToolResultFrame, ClientFrame, ServerFrame } from "./protocol.gen.js";
type Event<T extends string, F> = {
    type: T;
} & Omit<F, "type">;
/** One event of a chat turn: the chat.* frame with its "chat." prefix dropped from type. */
export type ChatEvent = Event<"started", ChatStartedFrame> | Event<"delta", ChatDeltaFrame> | Event<"tool_call", ChatToolCallFrame> | Event<"tool_result", ChatToolResultFrame> | Event<"done", ChatDoneFrame> | Event<"error", ChatErrorFrame>;
/** Options of chat.send. */
export interface ChatSendOptions {
    /** Continue this conversation (omit to start one). */
    conversationId?: number;
    /**
     * The user's IANA time zone ("Europe/Berlin"): the assistant reads "tomorrow at 9" in it and
     * gives it to new tasks. Default: the runtime's zone (Intl), when it has a usable one; null
     * sends none (the server then uses UTC).
     */
    tz?: string | null;
}
/**
 * One chat turn: iterate it with for await to get its events, from started
 * to exactly one done or error (a refused chat.send throws a RequestError; a
 * socket lost during the turn throws a DisconnectedError: the turn goes on
 * on the server and is stored).
 */
export declare class ChatStream implements AsyncIterable<ChatEvent> {
    #private;
    /** The user message of the turn. */
    readonly message: string;
    /** Whether this client started the turn (false: another device or REST did). */
    readonly local: boolean;
    /** The conversation id, once known; the turn id. */
    conversation: number | undefined;
    turnId: string | undefined;
    constructor(message: string, local: boolean, cancel: (s: ChatStream) => Promise<void>);
    /** The conversation this turn belongs to (new when the send started one). */
    get conversationId(): Promise<number>;
    /** The turn's id. */
    get turn(): Promise<string>;
    /** Whether the turn ended (done, error, or the stream failed). */
    get ended(): boolean;
    /** Asks the server to stop the turn; the stream then ends with a done event whose status is "cancelled". */
    cancel(): Promise<void>;
    /** @internal */
    identify(conversationId: number, turnId: string): void;
    /** @internal */
    push(ev: ChatEvent): void;
    /** @internal */
    fail(err: Error): void;
    [Symbol.asyncIterator](): AsyncIterator<ChatEvent>;
}
export interface ChatDeps {
    request(frame: ClientFrame, opts?: {
        wait?: boolean;
    }): Promise<ServerFrame>;
    sessionId(): string | undefined;
}
/** client.chat: send messages, follow turns started elsewhere. */
export declare class Chat {
    #private;
    constructor(deps: ChatDeps);
    /**
     * Turns started on another device (or over REST) stream here too: cb gets each one's stream at its
     * start, or at the first event seen of a turn that began before this client connected.
     */
    readonly turns: {
        subscribe: (cb: (stream: ChatStream) => void) => (() => void);
    };
    /** Sends a message (waiting for the socket if it is down); iterate the result for the answer's events. */
    send(message: string, opts?: ChatSendOptions): ChatStream;
    /** Routes a frame; returns whether it was a chat frame. */
    apply(f: ServerFrame): boolean;
    /** The socket went away: turns in progress cannot be followed any more. */
    down(): void;
    /** client.close: every stream ends. */
    close(): void;
}
export {};
