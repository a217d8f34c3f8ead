import type { PollAnswer } from './answer.js';
import type { RoomState } from './types.js';

/**
 * Rooms whose answers are kept. A busy deployment answers at once from a few
 * hot rooms at a time; a room pushed out is only serialized again.
 */
const MAX_ROOMS = 256;

/** Different cursors kept per room: clients coming back after a post stand at one or two. */
const MAX_PER_ROOM = 4;

/**
 * Bytes of serialized answers kept over all rooms. Answers are kept only up
 * to a sixteenth of it each, so that one long history page cannot push out
 * every hot room's answer.
 */
const MAX_BYTES = 4 * 1024 * 1024;

interface RoomAnswers extends RoomState {
  /** By `after:limit`. */
  readonly answers: Map<string, PollAnswer>;
  bytes: number;
}

/**
 * The answers most recently given at once to polls that found news, so that
 * clients coming back at one cursor while nobody waits in the room (the
 * usual state of a busy room: every poll finds a newer message and is
 * answered at once) share one serialization, as parked polls woken together
 * do.
 *
 * An answer depends only on the cursor and the room's retained messages,
 * which are known from (epoch, head, oldest): messages are never changed,
 * only appended or dropped from the front. A read that finds the room in
 * another state drops the room's kept answers. Bounded by MAX_ROOMS rooms,
 * MAX_PER_ROOM answers each and MAX_BYTES in all; the room whose answers
 * were least recently added goes first.
 */
export class RecentAnswers {
  private readonly rooms = new Map<string, RoomAnswers>();
  private bytes = 0;

  /** The answer kept for a cursor (`after`, `limit`) while the room is in `state`, if any. */
  get(room: string, after: number, limit: number, state: RoomState): PollAnswer | undefined {
    const entry = this.rooms.get(room);
    return entry && sameState(entry, state) ? entry.answers.get(`${after}:${limit}`) : undefined;
  }

  /** Keeps `answer`, serializing it now: it is about to be sent anyway. */
  set(room: string, after: number, limit: number, state: RoomState, answer: PollAnswer): void {
    const size = answer.bytes.length;
    if (size > MAX_BYTES / 16) return;
    let entry = this.rooms.get(room);
    if (entry && !sameState(entry, state)) {
      this.drop(room, entry);
      entry = undefined;
    }
    if (!entry) {
      entry = { epoch: state.epoch, head: state.head, oldest: state.oldest, answers: new Map(), bytes: 0 };
    } else {
      // Re-inserted, so that Map order is least recently added first.
      this.rooms.delete(room);
      if (entry.answers.size >= MAX_PER_ROOM) return void this.rooms.set(room, entry);
    }
    this.rooms.set(room, entry);
    entry.answers.set(`${after}:${limit}`, answer);
    entry.bytes += size;
    this.bytes += size;
    for (const [oldest, old] of this.rooms) {
      if (this.rooms.size <= MAX_ROOMS && this.bytes <= MAX_BYTES) break;
      this.drop(oldest, old);
    }
  }

  private drop(room: string, entry: RoomAnswers): void {
    this.rooms.delete(room);
    this.bytes -= entry.bytes;
  }
}

function sameState(a: RoomState, b: RoomState): boolean {
  return a.head === b.head && a.epoch === b.epoch && a.oldest === b.oldest;
}
