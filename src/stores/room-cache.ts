import { Ring } from '../core/ring.js';
import type { Message } from '../core/types.js';

/** What a store that is the only writer of its data knows of a room without asking it. */
export interface CachedRoom {
  head: number;
  oldest: number;
  /** The room's newest messages, seqs `head - recent.size + 1` to `head`. */
  readonly recent: Ring<Message>;
}

/**
 * The state and newest messages of the most recently used rooms, so that a
 * poll at (or near) the head is answered without touching the database.
 * Bounded: at most `maxRooms` rooms of at most `perRoom` messages; the least
 * recently used room is dropped first and read again when next needed.
 */
export class RoomCache {
  private readonly rooms = new Map<string, CachedRoom>();

  constructor(
    private readonly maxRooms: number,
    readonly perRoom: number,
  ) {}

  get(room: string): CachedRoom | undefined {
    const entry = this.rooms.get(room);
    if (entry) {
      this.rooms.delete(room);
      this.rooms.set(room, entry);
    }
    return entry;
  }

  set(room: string, entry: CachedRoom): void {
    this.rooms.delete(room);
    if (this.rooms.size >= this.maxRooms) this.rooms.delete(this.rooms.keys().next().value!);
    this.rooms.set(room, entry);
  }

  delete(room: string): void {
    this.rooms.delete(room);
  }

  /** Records a committed message of a cached room; `retention` is how many the room keeps. */
  appended(message: Message, retention: number): void {
    const entry = this.rooms.get(message.room);
    if (!entry) return;
    entry.recent.push(message);
    entry.head = message.seq;
    entry.oldest = entry.oldest === 0 ? message.seq : Math.max(entry.oldest, message.seq - retention + 1);
  }

  clear(): void {
    this.rooms.clear();
  }
}
