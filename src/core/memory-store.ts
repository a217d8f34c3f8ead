import { nanoid } from 'nanoid';
import { Ring } from './ring.js';
import { MemoryPresence } from './memory-presence.js';
import { RoomListeners } from './room-listeners.js';
import type { ChangeListener, Store } from './store.js';
import type { AppendResult, Draft, Message, PresenceSnapshot, RoomRecord, RoomState, Slice, User } from './types.js';

export interface MemoryStoreOptions {
  /** Messages kept per room; older ones are dropped (and reported as a gap). */
  retention: number;
  /**
   * Rooms kept at once, and private room records kept at once. Past it the
   * room with the oldest last post, or the record changed least recently, is
   * forgotten, so that no input can grow memory without bound.
   */
  maxRooms: number;
}

/** A private room's record as kept: `members` maps id to name in join order, which a Map keeps for free. */
interface PrivateRoom {
  title: string;
  owner: User;
  readonly members: Map<string, string>;
}

/** A copy for the caller, so that nothing it does to the answer changes the record. */
function toRecord(room: string, { title, owner, members }: PrivateRoom): RoomRecord {
  return { room, title, owner: { ...owner }, members: Array.from(members, ([id, name]) => ({ id, name })) };
}

class RoomLog {
  head = 0;
  readonly ring: Ring<Message>;
  readonly byClientMsgId = new Map<string, Message>();
  constructor(retention: number, public epoch: string) {
    this.ring = new Ring(retention);
  }
  get oldest(): number {
    return this.head - this.ring.size + 1;
  }
}

// Forgotten rooms bump the generation of their hash bucket, which changes the
// epoch of every room in that bucket: a room that starts again at seq 1 must
// not share an epoch with its former life, and remembering each forgotten
// room by name would be unbounded. A bucket collision costs an unneeded reset
// for some other room's clients, never a wrong answer.
const GENERATION_BUCKETS = 4096;

function bucketOf(room: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < room.length; i++) h = Math.imul(h ^ room.charCodeAt(i), 0x01000193);
  return (h >>> 0) % GENERATION_BUCKETS;
}

/**
 * Keeps each room's newest messages in a ring buffer in this process. Its
 * epoch is new for every process, so clients of a restarted server reset.
 *
 * Private room records and the secret live for the process lifetime too, at
 * most `maxRooms` records: past it the record changed least recently is
 * forgotten (its members lose the room, as after a restart), which bounds
 * memory whatever callers create. A record's own size is the caller's to
 * bound (members per room).
 */
export class MemoryStore implements Store {
  private baseEpoch = nanoid(12);
  private readonly generations = new Uint32Array(GENERATION_BUCKETS);
  /** In least-recently-posted-first order, so the first key is the one to forget. */
  private readonly rooms = new Map<string, RoomLog>();
  private readonly listeners = new RoomListeners();
  private readonly presence = new MemoryPresence((room) => this.listeners.notify(room));
  /** Least recently changed first, so the first key is the one to forget. */
  private readonly privateRooms = new Map<string, PrivateRoom>();
  /** The private rooms each user is a member of, so that roomsOf reads no record it does not return. */
  private readonly roomsByUser = new Map<string, Set<string>>();
  private secret?: string;

  constructor(private readonly options: MemoryStoreOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
    }
  }

  private epochOf(room: string): string {
    const generation = this.generations[bucketOf(room)];
    return generation === 0 ? this.baseEpoch : `${this.baseEpoch}.${generation}`;
  }

  /** The room's state and `messages`, built in one object shape whatever the room. */
  private slice(room: string, log: RoomLog | undefined, messages: Message[]): Slice {
    return log
      ? { epoch: log.epoch, head: log.head, oldest: log.oldest, messages }
      : { epoch: this.epochOf(room), head: 0, oldest: 0, messages };
  }

  async append(room: string, draft: Draft, now: number): Promise<AppendResult> {
    let log = this.rooms.get(room);
    if (log && draft.clientMsgId !== undefined) {
      const original = log.byClientMsgId.get(draft.clientMsgId);
      if (original) return { message: original, duplicate: true };
    }
    if (log) {
      this.rooms.delete(room);
    } else {
      log = new RoomLog(this.options.retention, this.epochOf(room));
      if (this.rooms.size >= this.options.maxRooms) this.forgetOldestRoom();
    }
    this.rooms.set(room, log);

    const message: Message = { seq: log.head + 1, id: nanoid(), room, author: draft.author, text: draft.text, ts: now };
    if (draft.authorId !== undefined) message.authorId = draft.authorId;
    if (draft.clientMsgId !== undefined) {
      message.clientMsgId = draft.clientMsgId;
      log.byClientMsgId.set(draft.clientMsgId, message);
    }
    log.head = message.seq;
    const dropped = log.ring.push(message);
    if (dropped?.clientMsgId !== undefined) log.byClientMsgId.delete(dropped.clientMsgId);

    this.listeners.notify(room);
    return { message, duplicate: false };
  }

  private forgetOldestRoom(): void {
    const oldest = this.rooms.keys().next();
    if (oldest.done) return;
    this.rooms.delete(oldest.value);
    const bucket = bucketOf(oldest.value);
    this.generations[bucket] = this.generations[bucket]! + 1;
    // What a read of the room returns has changed (a new epoch, no messages): its polls must read again.
    this.listeners.notify(oldest.value);
  }

  readAfterNow(room: string, after: number, limit: number): Slice {
    const log = this.rooms.get(room);
    if (!log || after >= log.head) return this.slice(room, log, []);
    const from = Math.max(after + 1, log.oldest) - log.oldest;
    return this.slice(room, log, log.ring.slice(from, from + limit));
  }

  async readAfter(room: string, after: number, limit: number): Promise<Slice> {
    return this.readAfterNow(room, after, limit);
  }

  async readBefore(room: string, before: number, limit: number): Promise<Slice> {
    const log = this.rooms.get(room);
    if (!log) return this.slice(room, log, []);
    const to = Math.min(before, log.head + 1) - log.oldest;
    return this.slice(room, log, log.ring.slice(to - limit, to));
  }

  async readTail(room: string, limit: number): Promise<Slice> {
    return this.readBefore(room, Number.MAX_SAFE_INTEGER, limit);
  }

  async info(room: string): Promise<RoomState> {
    const { epoch, head, oldest } = this.slice(room, this.rooms.get(room), []);
    return { epoch, head, oldest };
  }

  async subscribe(room: string, listener: ChangeListener): Promise<() => void> {
    return this.listeners.add(room, listener);
  }

  async ping(): Promise<void> {}

  async newEpoch(): Promise<string> {
    this.baseEpoch = nanoid(12);
    // Every epoch a room had before differs from the new base, so no room needs a generation to tell its lives apart.
    this.generations.fill(0);
    for (const [room, log] of this.rooms) {
      log.epoch = this.baseEpoch;
      this.listeners.notify(room);
    }
    return this.baseEpoch;
  }

  async createRoom(room: string, title: string, owner: User): Promise<RoomRecord | undefined> {
    if (this.privateRooms.has(room)) return undefined;
    const entry: PrivateRoom = { title, owner: { ...owner }, members: new Map() };
    this.join(room, entry, owner, true);
    this.changed(room, entry);
    return toRecord(room, entry);
  }

  async openDirect(room: string, caller: User, other: User): Promise<{ record: RoomRecord; created: boolean }> {
    const found = this.privateRooms.get(room);
    const entry = found ?? { title: '', owner: { ...caller }, members: new Map() };
    // Names of users who are members already stay as they are: the caller may know the other only by id.
    const joined = [caller, other].map((user) => this.join(room, entry, user, false));
    if (!found || joined.includes(true)) this.changed(room, entry);
    return { record: toRecord(room, entry), created: !found };
  }

  async readRoom(room: string): Promise<RoomRecord | undefined> {
    const entry = this.privateRooms.get(room);
    return entry && toRecord(room, entry);
  }

  async addMember(room: string, user: User, maxMembers: number): Promise<RoomRecord | undefined> {
    const entry = this.privateRooms.get(room);
    if (!entry) return undefined;
    if (!entry.members.has(user.id) && entry.members.size >= maxMembers) return toRecord(room, entry);
    if (this.join(room, entry, user, true)) this.changed(room, entry);
    return toRecord(room, entry);
  }

  async removeMember(room: string, userId: string): Promise<RoomRecord | undefined> {
    const entry = this.privateRooms.get(room);
    if (!entry) return undefined;
    if (entry.members.delete(userId)) {
      this.unindex(room, userId);
      this.changed(room, entry);
    }
    return toRecord(room, entry);
  }

  async roomsOf(userId: string): Promise<RoomRecord[]> {
    const rooms = [...(this.roomsByUser.get(userId) ?? [])].sort();
    return rooms.map((room) => toRecord(room, this.privateRooms.get(room)!));
  }

  async sharedSecret(candidate: string): Promise<string> {
    this.secret ??= candidate;
    return this.secret;
  }

  /** Makes `user` a member (or, with `rename`, updates the name kept for a member); true when that changed the record. */
  private join(room: string, entry: PrivateRoom, user: User, rename: boolean): boolean {
    const kept = entry.members.get(user.id);
    if (kept === user.name || (kept !== undefined && !rename)) return false;
    entry.members.set(user.id, user.name);
    if (kept === undefined) {
      let rooms = this.roomsByUser.get(user.id);
      if (!rooms) this.roomsByUser.set(user.id, (rooms = new Set()));
      rooms.add(room);
    }
    return true;
  }

  private unindex(room: string, userId: string): void {
    const rooms = this.roomsByUser.get(userId);
    rooms?.delete(room);
    if (rooms?.size === 0) this.roomsByUser.delete(userId);
  }

  /**
   * After a change to `entry`'s members: the earliest-joined member owns the
   * room (so ownership passes on when the owner leaves; a room left empty
   * keeps its last owner), the record becomes the most recently changed,
   * and the room's listeners are called.
   */
  private changed(room: string, entry: PrivateRoom): void {
    const first = entry.members.entries().next();
    if (!first.done) entry.owner = { id: first.value[0], name: first.value[1] };
    if (!this.privateRooms.delete(room) && this.privateRooms.size >= this.options.maxRooms) this.forgetOldestRecord();
    this.privateRooms.set(room, entry);
    this.listeners.notify(room);
  }

  private forgetOldestRecord(): void {
    const oldest = this.privateRooms.entries().next();
    if (oldest.done) return;
    const [room, entry] = oldest.value;
    this.privateRooms.delete(room);
    for (const userId of entry.members.keys()) this.unindex(room, userId);
    // Its members can no longer read the room: their held polls must learn it.
    this.listeners.notify(room);
  }

  async setOnline(room: string, user: User, until: number, now: number): Promise<void> {
    this.presence.setOnline(room, user, until, now);
  }

  async setTyping(room: string, user: User, until: number, now: number): Promise<void> {
    this.presence.setTyping(room, user, until, now);
  }

  async readPresence(room: string, now: number, limit: number): Promise<PresenceSnapshot> {
    return this.presence.read(room, now, limit);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.presence.clear();
  }
}
