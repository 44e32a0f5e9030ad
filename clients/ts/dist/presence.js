// Presence: the user's sessions online on any instance, from presence frames
// and the presence.list reply asked for after every hello.
import { Cell } from "./observable.js";
export class Presence {
    #state = new Cell({ online: 0, sessions: [] });
    get state() {
        return this.#state;
    }
    /** Reads a presence frame or a presence.list reply; other frames are ignored. */
    apply(f) {
        if (f.type === "presence" || (f.type === "reply" && f.re === "presence.list")) {
            this.#state.set({ online: f.online ?? 0, sessions: f.sessions ?? [] });
        }
    }
    /** The socket went away: presence is unknown until the next hello. */
    clear() {
        this.#state.set({ online: 0, sessions: [] });
    }
}
