// The presence part of the bare-sync reference: who is online in one room,
// kept as simply as the protocol allows, and the room's lists serialized once
// per change.

/** Users listed in `online` at most (protocol: 100, then `onlineCount`). */
const LISTED = 100;

interface Entry {
  name: string;
  /** Syncs of the user held on the room. */
  held: number;
  /** When the user stops being online, once `held` is 0 (ms since the epoch). */
  until: number;
}

/** A room's lists as sync answers carry them: `"state":…,"online":[…],"onlineCount":n,"typing":[]` (no braces). */
export interface View {
  state: string;
  fields: string;
}

/**
 * One room's online users: online while a sync of theirs is held, and for
 * `windowMs` after the last one ended. `changed` is called when the lists
 * change (a user arrives, or one's time runs out).
 */
export class OnlineSet {
  private readonly entries = new Map<string, Entry>();
  /** Users with no sync held, whose time runs out. */
  private readonly idle = new Set<string>();
  private version = 0;
  private view: View | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly changed: () => void,
  ) {}

  hold(id: string, name: string): void {
    const entry = this.entries.get(id);
    if (entry) {
      entry.held++;
      this.idle.delete(id);
      return;
    }
    this.entries.set(id, { name, held: 1, until: 0 });
    this.change();
  }

  release(id: string, now: number): void {
    const entry = this.entries.get(id);
    if (!entry || --entry.held > 0) return;
    entry.until = now + this.windowMs;
    this.idle.add(id);
  }

  /** Ends the users whose time ran out. */
  sweep(now: number): void {
    let ended = false;
    for (const id of this.idle) {
      if (this.entries.get(id)!.until > now) continue;
      this.idle.delete(id);
      this.entries.delete(id);
      ended = true;
    }
    if (ended) this.change();
  }

  /** The lists now: the first LISTED users by id, the count, no one typing. */
  current(): View {
    if (this.view) return this.view;
    const ids = [...this.entries.keys()].sort().slice(0, LISTED);
    const online = JSON.stringify(ids.map((id) => ({ id, name: this.entries.get(id)!.name })));
    const state = `v${this.version}`;
    return (this.view = { state, fields: `"state":"${state}","online":${online},"onlineCount":${this.entries.size},"typing":[]` });
  }

  private change(): void {
    this.version++;
    this.view = undefined;
    this.changed();
  }
}
