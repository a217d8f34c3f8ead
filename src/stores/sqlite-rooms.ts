import type Database from 'better-sqlite3';
import type { RoomRecord, User } from '../core/types.js';

/**
 * The tables of private room records (schema version 2). `joined` numbers a
 * room's members in the order they joined; ownership goes with the lowest.
 * `room_members_user` serves roomsOf without reading every room.
 */
export const ROOMS_SCHEMA = `
  CREATE TABLE room_records (
    room TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    owner_name TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE room_members (
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    joined INTEGER NOT NULL,
    PRIMARY KEY (room, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX room_members_user ON room_members (user_id);
`;

function prepareQueries(db: Database.Database) {
  return {
    record: db.prepare<[string], { title: string; owner_id: string; owner_name: string }>(
      'SELECT title, owner_id, owner_name FROM room_records WHERE room = ?',
    ),
    members: db.prepare<[string], User>('SELECT user_id AS id, name FROM room_members WHERE room = ? ORDER BY joined'),
    memberName: db.prepare<[string, string], string>('SELECT name FROM room_members WHERE room = ? AND user_id = ?').pluck(),
    count: db.prepare<[string], number>('SELECT count(*) FROM room_members WHERE room = ?').pluck(),
    create: db.prepare<[string, string, string, string]>(
      'INSERT INTO room_records (room, title, owner_id, owner_name) VALUES (?, ?, ?, ?) ON CONFLICT (room) DO NOTHING',
    ),
    join: db.prepare<[{ room: string; id: string; name: string }]>(
      `INSERT INTO room_members (room, user_id, name, joined)
       VALUES (@room, @id, @name, (SELECT coalesce(max(joined), 0) + 1 FROM room_members WHERE room = @room))`,
    ),
    rename: db.prepare<[string, string, string]>('UPDATE room_members SET name = ? WHERE room = ? AND user_id = ?'),
    leave: db.prepare<[string, string]>('DELETE FROM room_members WHERE room = ? AND user_id = ?'),
    // A room left empty keeps its last owner.
    settleOwner: db.prepare<[{ room: string }]>(
      `UPDATE room_records SET (owner_id, owner_name) = (SELECT user_id, name FROM room_members WHERE room = @room ORDER BY joined LIMIT 1)
       WHERE room = @room AND EXISTS (SELECT 1 FROM room_members WHERE room = @room)`,
    ),
    roomsOf: db.prepare<[string], string>('SELECT room FROM room_members WHERE user_id = ? ORDER BY room').pluck(),
  };
}

/**
 * Private room records for SqliteStore, in its database file. Each change is one
 * transaction, and the room's listeners are called once it committed. The
 * earliest-joined member owns the room, so ownership passes on when the
 * owner leaves with no bookkeeping of its own.
 */
export class SqliteRooms {
  private readonly q: ReturnType<typeof prepareQueries>;
  private readonly transaction: <T>(fn: () => T) => T;

  constructor(
    db: Database.Database,
    /** Called after a committed change to a room's members. */
    private readonly notify: (room: string) => void,
  ) {
    this.q = prepareQueries(db);
    this.transaction = db.transaction((fn: () => unknown) => fn()) as <T>(fn: () => T) => T;
  }

  read(room: string): RoomRecord | undefined {
    const row = this.q.record.get(room);
    if (!row) return undefined;
    return { room, title: row.title, owner: { id: row.owner_id, name: row.owner_name }, members: this.q.members.all(room) };
  }

  create(room: string, title: string, owner: User): RoomRecord | undefined {
    return this.write(room, () => this.q.create.run(room, title, owner.id, owner.name).changes > 0 ? this.join(room, owner, true) : undefined);
  }

  openDirect(room: string, caller: User, other: User): { record: RoomRecord; created: boolean } {
    let created = false;
    const record = this.write(room, () => {
      created = this.q.create.run(room, '', caller.id, caller.name).changes > 0;
      // Names of users who are members already stay as they are: the caller may know the other only by id.
      const joined = [caller, other].map((user) => this.join(room, user, false));
      return created || joined.includes(true);
    });
    return { record: record!, created };
  }

  add(room: string, user: User, maxMembers: number): RoomRecord | undefined {
    return this.write(room, () => {
      if (!this.q.record.get(room)) return undefined;
      if (this.q.memberName.get(room, user.id) === undefined && this.q.count.get(room)! >= maxMembers) return false;
      return this.join(room, user, true);
    });
  }

  remove(room: string, userId: string): RoomRecord | undefined {
    return this.write(room, () => (this.q.record.get(room) ? this.q.leave.run(room, userId).changes > 0 : undefined));
  }

  roomsOf(userId: string): RoomRecord[] {
    return this.q.roomsOf.all(userId).map((room) => this.read(room)!);
  }

  /**
   * Runs `fn`, which answers whether it changed the room's members (or
   * undefined when the room has no record), in one transaction with the
   * owner's update and the read of the record; then signals a change.
   */
  private write(room: string, fn: () => boolean | undefined): RoomRecord | undefined {
    const { record, changed } = this.transaction(() => {
      const changed = fn();
      if (changed === undefined) return { record: undefined, changed: false };
      if (changed) this.q.settleOwner.run({ room });
      return { record: this.read(room), changed };
    });
    if (changed) this.notify(room);
    return record;
  }

  /** Makes `user` a member (or, with `rename`, updates the name kept for a member); true when that changed the record. */
  private join(room: string, user: User, rename: boolean): boolean {
    const kept = this.q.memberName.get(room, user.id);
    if (kept === undefined) return this.q.join.run({ room, id: user.id, name: user.name }).changes > 0;
    return rename && kept !== user.name && this.q.rename.run(user.name, room, user.id).changes > 0;
  }
}
