import { type Observable } from "./observable.js";
import type { PresenceSession, ServerFrame } from "./protocol.gen.js";
/** Who is online: the number of the user's sessions and the list, oldest first. */
export interface PresenceState {
    online: number;
    sessions: PresenceSession[];
}
export declare class Presence {
    #private;
    get state(): Observable<PresenceState>;
    /** Reads a presence frame or a presence.list reply; other frames are ignored. */
    apply(f: ServerFrame): void;
    /** The socket went away: presence is unknown until the next hello. */
    clear(): void;
}
