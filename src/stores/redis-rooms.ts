import type { RoomRecord, User } from '../core/types.js';
import { JOIN, LEAVE, READ_RECORD } from './redis-scripts.js';
import type { RedisClient } from './redis-connect.js';
import type { RoomKeys } from './redis-store.js';

/** A record as the scripts answer it: title, owner id, owner name, then members as id, name, id, name … */
type RecordReply = [title: string, ownerId: string, ownerName: string, members: string[]];

function toRecord(room: string, [title, ownerId, ownerName, flat]: RecordReply): RoomRecord {
  const members: User[] = [];
  for (let i = 0; i < flat.length; i += 2) members.push({ id: flat[i]!, name: flat[i + 1]! });
  return { room, title, owner: { id: ownerId, name: ownerName }, members };
}

/**
 * Private room records for RedisStore. A room's record lives in keys tagged
 * with the room (see roomKeys), changed only by scripts that also signal the
 * room, so a change is atomic and wakes every process's polls on it.
 *
 * roomsOf reads a per-user set of room names (`<prefix>user:{<id>}:rooms`),
 * which lives in another Cluster slot than the rooms and so cannot change in
 * the same script: it is updated by a command of its own after the record,
 * and may name a room whose record no longer lists the user (a removal whose
 * index update was lost); roomsOf checks every record it reads. A change
 * whose index update fails rejects with the record changed already; the
 * same call made again (as after any StoreUnavailableError) completes it.
 */
export class RedisRooms {
  constructor(
    private readonly cmd: RedisClient,
    private readonly prefix: string,
    private readonly roomKeys: (room: string) => RoomKeys,
    /** Runs a command, turning a failure into StoreUnavailableError. */
    private readonly call: <T>(fn: () => Promise<T>) => Promise<T>,
  ) {}

  private keys(room: string): string[] {
    const keys = this.roomKeys(room);
    return [keys.record, keys.members, keys.names, keys.signal];
  }

  private userKey(userId: string): string {
    return `${this.prefix}user:{${userId}}:rooms`;
  }

  /** Runs JOIN for `users`, then indexes them: resolves to whether it created the record, and the record; undefined when the script refused. */
  private async join(room: string, mode: 'create' | 'direct' | 'add', title: string, users: User[], maxMembers = 0) {
    const reply = (await this.call(() =>
      JOIN.run(this.cmd, this.keys(room), [mode, title, maxMembers, ...users.flatMap((user) => [user.id, user.name])]),
    )) as [0 | 1, RecordReply] | null;
    if (!reply) return undefined;
    const record = toRecord(room, reply[1]);
    const joined = users.filter((user) => record.members.some((member) => member.id === user.id));
    await this.call(() => Promise.all(joined.map((user) => this.cmd.sadd(this.userKey(user.id), room))));
    return { created: reply[0] === 1, record };
  }

  async create(room: string, title: string, owner: User): Promise<RoomRecord | undefined> {
    return (await this.join(room, 'create', title, [owner]))?.record;
  }

  async openDirect(room: string, caller: User, other: User): Promise<{ record: RoomRecord; created: boolean }> {
    return (await this.join(room, 'direct', '', [caller, other]))!;
  }

  async add(room: string, user: User, maxMembers: number): Promise<RoomRecord | undefined> {
    return (await this.join(room, 'add', '', [user], maxMembers))?.record;
  }

  async remove(room: string, userId: string): Promise<RoomRecord | undefined> {
    const reply = (await this.call(() => LEAVE.run(this.cmd, this.keys(room), [userId]))) as [0 | 1, RecordReply] | null;
    if (!reply) return undefined;
    if (reply[0] === 1) {
      await this.call(() => this.cmd.srem(this.userKey(userId), room));
      // Added again by another call between the script and SREM: that call's SADD may have come first, so it is made again.
      if ((await this.read(room))?.members.some((member) => member.id === userId)) {
        await this.call(() => this.cmd.sadd(this.userKey(userId), room));
      }
    }
    return toRecord(room, reply[1]);
  }

  async read(room: string): Promise<RoomRecord | undefined> {
    const reply = (await this.call(() => READ_RECORD.run(this.cmd, this.keys(room).slice(0, 3), []))) as RecordReply | null;
    return reply ? toRecord(room, reply) : undefined;
  }

  async roomsOf(userId: string): Promise<RoomRecord[]> {
    const rooms = (await this.call(() => this.cmd.smembers(this.userKey(userId)))).sort();
    const records = await Promise.all(rooms.map((room) => this.read(room)));
    return records.filter((record): record is RoomRecord => record?.members.some((member) => member.id === userId) ?? false);
  }
}
