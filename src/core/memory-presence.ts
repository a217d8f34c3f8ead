import type { PresenceSnapshot, User } from './types.js';

interface Entry {
  name: string;
  until: number;
}

/**
 * How often every room is pruned: rooms no one reads or writes any more
 * still free their entries within this.
 */
const SWEEP_MS = 10_000;

/** One room's online and typing entries, by user id. */
interface RoomPresence {
  online: Map<string, Entry>;
  typing: Map<string, Entry>;
}

/**
 * Presence and typing entries kept in this process, for the stores whose
 * every writer is this process (memory, SQLite: one process per file). It
 * keeps the Store contract's presence rules; `signal` is the store's change
 * signal for a room.
 *
 * Memory: a room's entries are pruned on every read and write of it, and
 * every room every SWEEP_MS while any has entries, so a user who has gone
 * leaves nothing behind even in a room no one reads any more.
 */
export class MemoryPresence {
  private readonly rooms = new Map<string, RoomPresence>();
  private sweeper: NodeJS.Timeout | undefined;

  /** `signal` is the store's change signal for a room; `clock` the time sweeps prune at (ms since the epoch). */
  constructor(
    private readonly signal: (room: string) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  setOnline(room: string, user: User, until: number, now: number): void {
    this.set(room, 'online', user, until, now);
  }

  setTyping(room: string, user: User, until: number, now: number): void {
    this.set(room, 'typing', user, until, now);
  }

  read(room: string, now: number, limit: number): PresenceSnapshot {
    const presence = this.rooms.get(room);
    if (!presence) return { online: [], onlineCount: 0, typing: [], nextExpiry: undefined };
    this.prune(room, presence, now);
    let nextExpiry: number | undefined;
    for (const list of [presence.online, presence.typing]) {
      for (const { until } of list.values()) if (nextExpiry === undefined || until < nextExpiry) nextExpiry = until;
    }
    return { online: firstById(presence.online, limit), onlineCount: presence.online.size, typing: firstById(presence.typing, limit), nextExpiry };
  }

  clear(): void {
    this.rooms.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private sweep(): void {
    const now = this.clock();
    for (const [room, presence] of this.rooms) this.prune(room, presence, now);
    if (this.rooms.size === 0) this.clear();
  }

  private set(room: string, list: keyof RoomPresence, user: User, until: number, now: number): void {
    let presence = this.rooms.get(room);
    if (!presence) {
      if (until <= now) return;
      this.rooms.set(room, (presence = { online: new Map(), typing: new Map() }));
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    }
    const entries = presence[list];
    const before = entries.get(user.id);
    const wasLive = before !== undefined && before.until > now;
    if (until > now) entries.set(user.id, { name: user.name, until });
    else entries.delete(user.id);
    const isLive = until > now;
    if (wasLive !== isLive || (isLive && (before!.name !== user.name || until < before!.until))) this.signal(room);
    this.prune(room, presence, now);
  }

  /** Drops entries that ended; a room left with none is forgotten. */
  private prune(room: string, presence: RoomPresence, now: number): void {
    for (const entries of [presence.online, presence.typing]) {
      for (const [id, { until }] of entries) if (until <= now) entries.delete(id);
    }
    if (presence.online.size === 0 && presence.typing.size === 0) this.rooms.delete(room);
  }
}

function firstById(entries: Map<string, Entry>, limit: number): User[] {
  const ids = [...entries.keys()].sort(byCodeUnits).slice(0, limit);
  return ids.map((id) => ({ id, name: entries.get(id)!.name }));
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
