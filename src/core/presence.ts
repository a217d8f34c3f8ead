import { createHash } from 'node:crypto';
import type { Store } from './store.js';
import type { PresenceSnapshot, User } from './types.js';

/** Users listed per room in `online` and in `typing` (protocol "Presence and typing": at most 100, then `onlineCount`). */
export const PRESENCE_LIST_LIMIT = 100;

/** How long a `typing: true` lasts unless repeated (protocol "Presence and typing"). */
export const TYPING_MS = 6000;

/**
 * A room's online and typing lists as one read found them, serialized once
 * for every sync that gets them: `fields` is the JSON object members
 * `"state":…,"online":[…],"onlineCount":n,"typing":[…]` (no braces), to be
 * put after a room's v1 answer in a sync (protocol "One poll for many rooms").
 */
export interface PresenceView {
  /** Opaque; equal for equal lists, on every instance reading the same store. */
  readonly state: string;
  readonly fields: Buffer;
  /** PresenceSnapshot.nextExpiry: when the lists may next change without a signal. */
  readonly nextExpiry: number | undefined;
}

/**
 * The view of a snapshot. The state token is a digest of the lists, not a
 * counter: instances sharing a store agree on it without coordinating, and a
 * client that moves to another instance is not sent lists it already has.
 */
export function presenceView(snapshot: PresenceSnapshot): PresenceView {
  const lists = JSON.stringify({ online: snapshot.online.map(plainUser), onlineCount: snapshot.onlineCount, typing: snapshot.typing.map(plainUser) });
  const state = createHash('sha256').update(lists).digest('base64url').slice(0, 16);
  return { state, fields: Buffer.from(`"state":"${state}",${lists.slice(1, -1)}`), nextExpiry: snapshot.nextExpiry };
}

const plainUser = ({ id, name }: User): User => ({ id, name });

/**
 * How far ahead of what a hold needs an online time is written, so that a
 * user who polls again within it (the usual case: a poll answered, the next
 * one sent at once) writes nothing: one store write per user and room every
 * few polls rather than one per poll.
 */
const WRITE_AHEAD_MS = 10_000;

/**
 * How long after a user's last poll of a room ended its end time is written:
 * a client answered polls again within a round trip, so only a user who has
 * really stopped costs the write.
 */
const IDLE_GRACE_MS = 2_000;

/** How often idle users are looked at. */
const SWEEP_MS = 1_000;

/**
 * Rooms one user is shown online in at once from one instance (twice the
 * default `--sync-max-rooms`): a user naming ever new rooms in syncs must
 * not fill memory with entries here and in the store. Past it, a poll on
 * another room is served as usual, its user not shown there.
 */
export const MAX_ROOMS_PER_USER = 200;

interface RoomHold {
  /** Polls of the user held on the room in this process. */
  count: number;
  /** The online time last written for the user in this room (ms since the epoch). */
  written: number;
  /** When `count` last fell to 0. */
  idleSince: number;
  /** The end time (idleSince + window) is written; kept until then, as the user's entry lasts. */
  ending: boolean;
}

const NO_HOLD = (): void => {};

interface Tracked {
  user: User;
  rooms: Map<string, RoomHold>;
  /** Polls of the user held in this process, over all rooms. */
  held: number;
}

export interface OnlineTrackerOptions {
  /** How long a user stays online after their last poll of a room ended (protocol: 30 s, configurable). */
  windowMs: number;
  /** Where failed writes are reported; presence is best effort, the next poll writes again. */
  onError?: (err: unknown) => void;
  now?: () => number;
}

/**
 * Keeps the store's online entries of the users whose polls this process
 * holds (protocol "Presence and typing": a signed-in user is online in a room
 * while a sync, poll or stream of theirs covering it is held, or ended less
 * than the window ago).
 *
 * A held poll writes an online time covering its hold and the window; the
 * poll's end writes nothing at once (the user usually polls again at once),
 * but once the user has held nothing on the room for IDLE_GRACE_MS their
 * time is set to the end of their last poll plus the window, exactly. What
 * is kept here for a room lives as long as the user's entry there (at most
 * MAX_ROOMS_PER_USER rooms a user).
 */
export class OnlineTracker {
  private readonly users = new Map<string, Tracked>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: OnlineTrackerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Distinct users with a poll held here or an entry written from here still running: the `users online` metric. */
  get usersOnline(): number {
    return this.users.size;
  }

  /**
   * A poll of `user` on `room`, to be held up to `holdMs`, has started;
   * returns the function to call once when it ends (answered or cancelled),
   * with `gone` when it ended because the user may no longer read the room:
   * their entry there then ends at once, unless another poll of theirs holds it.
   */
  hold(room: string, user: User, holdMs: number): (gone?: boolean) => void {
    const now = this.now();
    let tracked = this.users.get(user.id);
    if (!tracked) this.users.set(user.id, (tracked = { user, rooms: new Map(), held: 0 }));
    else if (tracked.user.name !== user.name) {
      // A new name (a new token) is written at once everywhere the user is.
      tracked.user = user;
      for (const hold of tracked.rooms.values()) hold.written = 0;
    }
    let roomHold = tracked.rooms.get(room);
    if (!roomHold) {
      if (tracked.rooms.size >= MAX_ROOMS_PER_USER) return NO_HOLD;
      tracked.rooms.set(room, (roomHold = { count: 0, written: 0, idleSince: 0, ending: false }));
    }
    roomHold.count++;
    roomHold.ending = false;
    tracked.held++;
    const needed = now + holdMs + this.options.windowMs;
    if (roomHold.written < needed) {
      roomHold.written = needed + WRITE_AHEAD_MS;
      this.write(room, tracked.user, roomHold, roomHold.written, now);
    }
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    const held = tracked;
    const hold = roomHold;
    let ended = false;
    return (gone = false) => {
      if (ended) return;
      ended = true;
      const at = this.now();
      held.held--;
      if (--hold.count > 0) return;
      hold.idleSince = at;
      if (!gone || held.rooms.get(room) !== hold) return;
      held.rooms.delete(room);
      this.write(room, held.user, undefined, at, at);
    };
  }

  /** Stops the sweep; entries in the store end on their own. */
  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private sweep(): void {
    const now = this.now();
    const { windowMs } = this.options;
    for (const [id, tracked] of this.users) {
      for (const [room, hold] of tracked.rooms) {
        if (hold.count > 0) continue;
        if (hold.ending) {
          if (now >= hold.written) tracked.rooms.delete(room);
        } else if (now - hold.idleSince >= IDLE_GRACE_MS) {
          hold.ending = true;
          hold.written = hold.idleSince + windowMs;
          this.write(room, tracked.user, hold, hold.written, now);
        }
      }
      if (tracked.held === 0 && tracked.rooms.size === 0) this.users.delete(id);
    }
    if (this.users.size === 0) this.close();
  }

  private write(room: string, user: User, hold: RoomHold | undefined, until: number, now: number): void {
    this.store.setOnline(room, user, until, now).catch((err: unknown) => {
      // Written again by the user's next poll.
      if (hold) hold.written = 0;
      this.options.onError?.(err);
    });
  }
}
