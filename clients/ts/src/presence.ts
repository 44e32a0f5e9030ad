// Presence: the user's sessions online on any instance, from presence frames
// and the presence.list reply asked for after every hello.

import { Cell, type Observable } from "./observable.js";
import type { PresenceSession, ServerFrame } from "./protocol.gen.js";

/** Who is online: the number of the user's sessions and the list, oldest first. */
export interface PresenceState {
  online: number;
  sessions: PresenceSession[];
}

export class Presence {
  readonly #state = new Cell<PresenceState>({ online: 0, sessions: [] });

  get state(): Observable<PresenceState> {
    return this.#state;
  }

  /** Reads a presence frame or a presence.list reply; other frames are ignored. */
  apply(f: ServerFrame): void {
    if (f.type === "presence" || (f.type === "reply" && f.re === "presence.list")) {
      this.#state.set({ online: f.online ?? 0, sessions: f.sessions ?? [] });
    }
  }

  /** The socket went away: presence is unknown until the next hello. */
  clear(): void {
    this.#state.set({ online: 0, sessions: [] });
  }
}
