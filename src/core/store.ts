import type { AppendResult, Draft, PresenceSnapshot, RoomRecord, RoomState, Slice, User } from './types.js';

/** Called after messages were appended to a room. */
export type ChangeListener = () => void;

/**
 * Where messages live. Every implementation (in memory, SQLite, Redis) keeps
 * this contract; the shared store-contract tests check it.
 *
 * Rooms:
 * - A room exists once a message is appended to it. Reading a room that has
 *   none answers an empty slice (head 0, oldest 0) and stores nothing.
 * - Room names reach the store already validated.
 *
 * Sequence and epoch:
 * - `append` gives a room's messages seq 1, 2, 3, … with no gap and no reuse,
 *   in the order the appends commit, also when many callers (or many
 *   processes sharing the store) append at once.
 * - The epoch names one lifetime of the sequences. It changes whenever a seq
 *   could be handed out again (memory lost, data wiped, a file replaced by
 *   an older copy) and only then, or when an operator asks (`newEpoch`); an
 *   epoch read while a room was empty stays valid after its first message.
 *   Every result carries the epoch current when it was read.
 *
 * Retention:
 * - A store keeps at least the newest message of every room it keeps and may
 *   drop older ones (oldest first) to honour its retention. Dropped messages
 *   are never returned again; `oldest` says where the retained run starts.
 *
 * Durability:
 * - When `append` resolves, the message is as durable as the store promises
 *   (in memory: for the process lifetime) and will be returned by every read
 *   that starts afterwards, from any process sharing the store.
 *
 * Idempotency:
 * - `append` with a `clientMsgId` already accepted in the same room (while
 *   that message is retained, at least) stores nothing, signals nobody and
 *   resolves to the original message with `duplicate: true`.
 *
 * Change signal:
 * - `subscribe(room, listener)` resolves once the subscription is active:
 *   every append to the room that commits after that point, and every other
 *   change to what reads of the room return (a room forgotten, messages
 *   dropped by age), is followed by at least one call of the listener.
 *   Several appends may be folded into one
 *   call and a call may come when nothing is new; the caller reads the store
 *   to learn what is new, so a late or extra signal costs a read, never a
 *   message. A duplicate (see Idempotency) signals nothing.
 *
 * Private rooms (protocol "Private rooms"; the callers decide who may do
 * what, the store only keeps the records):
 * - A private room's record (title, owner, members) exists from
 *   `createRoom` or `openDirect` on, independently of its messages, and is as
 *   durable as the messages are; every process sharing the store sees a
 *   change as soon as the call that made it resolves.
 * - A user is a member at most once; adding a member again only updates the
 *   name kept for them. `members` keep the order users joined in.
 * - When the owner leaves, the member who joined earliest after them becomes
 *   the owner; when the last member leaves, the record stays, with no
 *   members (no one can read the room any more) and its last owner, until
 *   someone joins it again and owns it.
 * - Every change to a room's members is followed by a change signal for the
 *   room (see Change signal), so that held polls of a removed member end.
 * - `roomsOf` lists exactly the rooms whose members include the user.
 *
 * Presence and typing (protocol "Presence and typing"; the callers decide
 * when a user is online or typing, the store only keeps the entries):
 * - An entry is a user (id and name) with a time (ms since the epoch) until
 *   which they are online, or typing, in a room; it counts while its time is
 *   after the `now` a call is given. Entries are never stored as messages
 *   and never touch seqs, epochs or records.
 * - `setOnline` and `setTyping` replace the user's time in the room (lower
 *   or higher); a time not after `now` ends the entry. A call that changes
 *   what `readPresence` at `now` returns (a user starting, ending, or
 *   changing name), or brings an entry's end earlier, is followed by a
 *   change signal for the room (readers then learn the new `nextExpiry`);
 *   one that only moves a time later does not signal: every poll renews
 *   its user's time, and that must wake no one.
 * - An entry whose time has passed is not read, and stops taking memory soon
 *   after (by the next read or write of the room, or a key expiry), so that
 *   nothing of a user who has gone stays behind.
 * - Every process sharing the store sees an entry as soon as the call that
 *   wrote it resolves. An entry lost with the store (a restart, a Redis
 *   failover) is written again by the next poll of its user.
 *
 * Deployment secret: `sharedSecret` stores the first candidate it is given
 * and resolves every later call, from any process sharing the store, to that
 * same value (kept as durably as messages; never logged).
 *
 * Errors: a store that cannot answer (connection lost, disk failure) rejects
 * with `StoreUnavailableError`; it never answers with partial data.
 */
export interface Store {
  /** Stores a message at the room's next seq (or finds its duplicate). */
  append(room: string, draft: Draft, now: number): Promise<AppendResult>;

  /** Messages with seq > `after`, oldest first, at most `limit`. */
  readAfter(room: string, after: number, limit: number): Promise<Slice>;

  /**
   * Optional, for stores whose appends all commit in this process: what
   * readAfter would answer, synchronously, or undefined when that would need
   * waiting for I/O (the caller then uses readAfter). A store offering it also
   * calls change listeners synchronously when an append commits, and a
   * subscription is active as soon as subscribe is called; together these let
   * a caller read, decide and park a poll with no gap in which a message could
   * slip by.
   */
  readAfterNow?(room: string, after: number, limit: number): Slice | undefined;

  /** Messages with seq < `before`: the newest `limit` of them, oldest first. */
  readBefore(room: string, before: number, limit: number): Promise<Slice>;

  /** The room's newest `limit` messages, oldest first. */
  readTail(room: string, limit: number): Promise<Slice>;

  /** The room's position without reading messages. */
  info(room: string): Promise<RoomState>;

  /** Starts change signals for `room`; resolves to the function that stops them. */
  subscribe(room: string, listener: ChangeListener): Promise<() => void>;

  /**
   * Resolves when the store can serve reads and take appends, shown by a
   * small write of its own (never a message, never a change signal): a
   * store that answers reads but refuses writes (disk full, read-only file,
   * Redis out of memory or a read-only replica) rejects with
   * StoreUnavailableError.
   */
  ping(): Promise<void>;

  /**
   * Starts a new epoch for the whole store, as an operator does after
   * restoring a backup, and resolves to it (an opaque string, never one the
   * store had before). Afterwards every room reports it, empty or not, with
   * its head, oldest and messages unchanged, and the next append to a room
   * takes seq head + 1 under it; so a cursor from before is reset. The
   * listeners of every room with messages are called. Rejects with
   * StoreUnavailableError when the store cannot answer; the epoch may then
   * have changed for some rooms only, so call it again.
   *
   * A store shared by several processes (Redis) changes the stored epochs;
   * the other processes may keep using the old one for a while (see the
   * store), so they must be stopped while it runs.
   */
  newEpoch(): Promise<string>;

  /**
   * Creates a private room's record with `owner` as its first member;
   * resolves to it, or to undefined (creating nothing) when a record of that
   * name exists already.
   */
  createRoom(room: string, title: string, owner: User): Promise<RoomRecord | undefined>;

  /**
   * The direct-message room `room` of `caller` and `other`: created on first
   * use with `caller` as owner and both as members; later calls make both
   * members again (whoever had left, in the order caller, other; the names
   * kept for members stay as they are) and resolve to it with created false.
   */
  openDirect(room: string, caller: User, other: User): Promise<{ record: RoomRecord; created: boolean }>;

  /** A private room's record, or undefined when none exists. */
  readRoom(room: string): Promise<RoomRecord | undefined>;

  /**
   * Adds `user` to the room's members (or updates the name kept for a
   * member); resolves to the record after the change, or undefined when
   * the room has no record. A user who is not a member is not added to a
   * room that has `maxMembers` members already: the record comes back
   * without them. The check and the change are one atomic step, so that
   * adds racing from many callers never take a room past the limit.
   */
  addMember(room: string, user: User, maxMembers: number): Promise<RoomRecord | undefined>;

  /**
   * Takes `userId` out of the room's members (nothing when not a member),
   * passing ownership on if they owned it; resolves to the record after the
   * change, or undefined when the room has no record.
   */
  removeMember(room: string, userId: string): Promise<RoomRecord | undefined>;

  /** The records of every private room `userId` is a member of, by room name. */
  roomsOf(userId: string): Promise<RoomRecord[]>;

  /** The deployment's token secret: `candidate` if none is stored yet, else the stored one. */
  sharedSecret(candidate: string): Promise<string>;

  /**
   * Marks `user` online in `room` until `until` (ms since the epoch), or
   * ends their entry when `until` is not after `now` (see Presence).
   */
  setOnline(room: string, user: User, until: number, now: number): Promise<void>;

  /** Marks `user` typing in `room` until `until`, or ends it when `until` is not after `now` (see Presence). */
  setTyping(room: string, user: User, until: number, now: number): Promise<void>;

  /** Who is online and typing in `room` at `now`: at most `limit` users of each list, by id. */
  readPresence(room: string, now: number, limit: number): Promise<PresenceSnapshot>;

  /** Releases connections and files. No call may follow. */
  close(): Promise<void>;
}

/** The store cannot answer now; the request may succeed later. */
export class StoreUnavailableError extends Error {
  /**
   * The store was reached and refused the request (a full disk, a Redis out
   * of memory, a read-only file or replica), rather than being out of reach
   * (a lost connection): such a refusal may go on while the store still
   * answers pings and reads.
   */
  readonly refused: boolean;

  constructor(message: string, options?: { cause?: unknown; refused?: boolean }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
    this.refused = options?.refused ?? false;
  }
}

/**
 * The store cannot be opened as configured (a corrupt or locked file, an
 * unreachable server, refused credentials). Its message is one line meant
 * for the operator.
 */
export class StoreOpenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreOpenError';
  }
}
