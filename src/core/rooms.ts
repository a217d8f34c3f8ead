import { createHmac } from 'node:crypto';
import { nanoid } from 'nanoid';
import type { Caller } from './access.js';
import { ChatError } from './errors.js';
import type { Store } from './store.js';
import type { RoomRecord, User } from './types.js';
import { authorProblem, checkRoom, isPrivateRoom, USER_ID } from './validate.js';

/**
 * Members a private room may have. A room is a conversation among people who
 * know each other; the cap bounds a record's size (every read of a private
 * room reads its record) whatever its members do.
 */
export const MAX_MEMBERS = 1000;

/** Longest room title, in code points. */
export const MAX_TITLE_LENGTH = 100;

/**
 * The one answer for a private room the caller may not use, the same whether
 * the room exists or not, so that nothing tells a non-member which names are
 * taken (protocol "Private rooms").
 */
export function roomNotFound(): ChatError {
  return new ChatError('not_found', 'no such room');
}

/** A private room as `GET /api/rooms` lists it: its record with the number of members, and the members of a direct message only. */
export interface RoomSummary extends Omit<RoomRecord, 'members'> {
  memberCount: number;
  members?: User[];
}

/** True when `userId` is among the record's members. */
export function isMember(record: RoomRecord | undefined, userId: string): boolean {
  return record !== undefined && record.members.some((member) => member.id === userId);
}

function needCaller(caller: Caller | undefined): Caller {
  if (!caller) throw new ChatError('unauthenticated', 'sign in first: this needs a token (Authorization: Bearer)');
  return caller;
}

function fields(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ChatError('invalid_body', 'body must be a JSON object or a form');
  return body as Record<string, unknown>;
}

function userIdOf(body: Record<string, unknown>): string {
  const { userId } = body;
  if (typeof userId !== 'string' || !USER_ID.test(userId)) {
    throw new ChatError('invalid_body', '"userId" must be a user id: 1-64 characters of A-Z, a-z, 0-9, "_" or "-"');
  }
  return userId;
}

/** The user a body names: `userId`, and `name` (the id itself when none is given). */
function userOf(body: Record<string, unknown>): User {
  const id = userIdOf(body);
  const { name } = body;
  if (name === undefined) return { id, name: id };
  if (typeof name !== 'string') throw new ChatError('invalid_body', '"name" must be a string');
  const problem = authorProblem(name);
  if (problem) throw new ChatError('invalid_body', `"name" ${problem}`);
  return { id, name };
}

/**
 * Private rooms and direct messages (protocol "Private rooms"): who may
 * create, join, leave and remove, over the records the store keeps. Every
 * refusal about a room the caller may not see is `roomNotFound`.
 */
export class PrivateRooms {
  constructor(
    private readonly store: Store,
    /** Keys the names of direct-message rooms, so that no one can derive them from two user ids. */
    private readonly directKey: Uint8Array,
  ) {}

  /**
   * Resolves when `caller` may read and post in the private room `room`:
   * through the token's `rooms` claim, or stored membership. Throws
   * `roomNotFound` otherwise (anonymous callers included).
   */
  async admit(room: string, caller: Caller | undefined): Promise<void> {
    if (!caller) throw roomNotFound();
    if (caller.rooms?.has(room)) return;
    const record = await this.store.readRoom(room);
    if (!isMember(record, caller.id)) throw roomNotFound();
    await this.keepName(record!, caller);
  }

  /**
   * Members are listed by the name they were added under, which the inviter
   * chose (or their id); the member's own token says what they call
   * themselves, and wins as soon as they use the room.
   */
  private async keepName(record: RoomRecord, caller: Caller): Promise<RoomRecord> {
    const kept = record.members.find((member) => member.id === caller.id);
    if (!kept || kept.name === caller.name) return record;
    return (await this.store.addMember(record.room, { id: caller.id, name: caller.name }, MAX_MEMBERS)) ?? record;
  }

  /** `POST /api/rooms`: a new room with a server-chosen name, the caller its owner. */
  async create(caller: Caller | undefined, body: unknown): Promise<RoomRecord> {
    const owner = needCaller(caller);
    const { title = '' } = fields(body);
    if (typeof title !== 'string' || [...title].length > MAX_TITLE_LENGTH || /[\u0000-\u001f\u007f-\u009f]/.test(title) || !title.isWellFormed()) {
      throw new ChatError('invalid_body', `"title" must be text of at most ${MAX_TITLE_LENGTH} characters, without control characters`);
    }
    // 126 random bits: a name no one can guess, as the protocol asks.
    const room = `p_${nanoid(21)}`;
    const record = await this.store.createRoom(room, title, { id: owner.id, name: owner.name });
    if (!record) throw new ChatError('room_exists', `room ${room} exists already; try again`);
    return record;
  }

  /** `POST /api/dms`: the caller's direct-message room with another user; `created` on first use. */
  async openDirect(caller: Caller | undefined, body: unknown): Promise<{ record: RoomRecord; created: boolean }> {
    const me = needCaller(caller);
    const other = userOf(fields(body));
    if (other.id === me.id) throw new ChatError('invalid_body', '"userId" must be someone else\'s id');
    const opened = await this.store.openDirect(this.directName(me.id, other.id), { id: me.id, name: me.name }, other);
    return { record: await this.keepName(opened.record, me), created: opened.created };
  }

  /** `POST /api/rooms/:room/members`: a member adds a user (or renames one). */
  async add(room: string, caller: Caller | undefined, body: unknown): Promise<RoomRecord> {
    const record = await this.readable(room, caller);
    const user = userOf(fields(body));
    if (room.startsWith('dm_')) throw new ChatError('forbidden', 'a direct-message room has exactly its two members');
    // A member's name is theirs (their token's, see keepName): adding them again changes nothing.
    if (isMember(record, user.id)) return record;
    const after = await this.store.addMember(room, user, MAX_MEMBERS);
    if (!after) throw roomNotFound();
    if (!isMember(after, user.id)) throw new ChatError('forbidden', `a room has at most ${MAX_MEMBERS} members`);
    return after;
  }

  /** `POST /api/rooms/:room/leave`: the caller leaves (an owner passes the room on). */
  async leave(room: string, caller: Caller | undefined): Promise<RoomRecord> {
    const record = await this.readable(room, caller);
    const after = await this.store.removeMember(room, caller!.id);
    await this.endPresence(room, caller!.id);
    return after ?? record;
  }

  /** `POST /api/rooms/:room/members/remove`: the owner removes a member; anyone else is `forbidden`. */
  async remove(room: string, caller: Caller | undefined, body: unknown): Promise<RoomRecord> {
    const record = await this.readable(room, caller);
    const userId = userIdOf(fields(body));
    if (room.startsWith('dm_')) throw new ChatError('forbidden', 'a direct-message room has exactly its two members; leave it instead');
    if (record.owner.id !== caller!.id) throw new ChatError('forbidden', 'only the room\'s owner removes members');
    const after = await this.store.removeMember(room, userId);
    await this.endPresence(room, userId);
    return after ?? record;
  }

  /** Someone who may no longer read the room is neither online nor typing in it from now on. */
  private async endPresence(room: string, userId: string): Promise<void> {
    const now = Date.now();
    const user = { id: userId, name: '' };
    await Promise.all([this.store.setOnline(room, user, now, now), this.store.setTyping(room, user, now, now)]);
  }

  /** `GET /api/rooms/:room/members`. */
  members(room: string, caller: Caller | undefined): Promise<RoomRecord> {
    return this.readable(room, caller);
  }

  /**
   * The caller's private rooms (stored membership; rooms granted only by the
   * token's claim have no record to list), each without its members but for
   * a direct message's two: however many rooms others add the caller to,
   * with up to MAX_MEMBERS each, the answer stays small.
   */
  async list(caller: Caller | undefined): Promise<RoomSummary[]> {
    const records = await this.store.roomsOf(needCaller(caller).id);
    return records.map(({ room, title, owner, members }) =>
      room.startsWith('dm_') ? { room, title, owner, memberCount: members.length, members } : { room, title, owner, memberCount: members.length },
    );
  }

  /**
   * The record of a private room the caller may use. A room granted only by
   * the token's claim has no record, and so nothing to show or change here.
   */
  private async readable(room: string, caller: Caller | undefined): Promise<RoomRecord> {
    checkRoom(room);
    if (!isPrivateRoom(room)) throw new ChatError('not_found', 'only private rooms (p_… and dm_…) have members');
    if (!caller) throw roomNotFound();
    const record = await this.store.readRoom(room);
    if (!record || (!isMember(record, caller.id) && !caller.rooms?.has(room))) throw roomNotFound();
    return this.keepName(record, caller);
  }

  private directName(a: string, b: string): string {
    const [first, second] = a < b ? [a, b] : [b, a];
    const digest = createHmac('sha256', this.directKey).update(`dm\u0000${first}\u0000${second}`).digest('base64url');
    return `dm_${digest.slice(0, 32)}`;
  }
}
