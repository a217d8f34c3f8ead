import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { nanoid } from 'nanoid';
import { Ring } from '../core/ring.js';
import { MemoryPresence } from '../core/memory-presence.js';
import { RoomListeners } from '../core/room-listeners.js';
import { StoreOpenError, StoreUnavailableError, type ChangeListener, type Store } from '../core/store.js';
import type { AppendResult, Draft, Message, PresenceSnapshot, RoomRecord, RoomState, Slice, User } from '../core/types.js';
import { silentLog, warnRepeated, type Log } from '../log.js';
import { RoomCache, type CachedRoom } from './room-cache.js';
import { SqliteMark } from './sqlite-mark.js';
import { ROOMS_SCHEMA, SqliteRooms } from './sqlite-rooms.js';

export interface SqliteStoreOptions {
  /** The database file; its directory is created if missing. */
  path: string;
  /** Messages kept per room; older ones are dropped (and reported as a gap). */
  retention: number;
  /**
   * Milliseconds a message is kept; 0 keeps messages by count only. A room's
   * newest message is kept whatever its age, so its seq never starts again.
   */
  retentionAgeMs: number;
  /** Where a file that went back in time, and a failed background age sweep, are reported. */
  log?: Log;
}

/** What takes a file from each schema version to the next: MIGRATIONS[v] upgrades version v. */
const MIGRATIONS = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE rooms (room TEXT PRIMARY KEY, head INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE messages (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    ts INTEGER NOT NULL,
    client_msg_id TEXT,
    PRIMARY KEY (room, seq)
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX messages_client_msg_id ON messages (room, client_msg_id) WHERE client_msg_id IS NOT NULL;
  CREATE INDEX messages_ts ON messages (ts);
`,
  `ALTER TABLE messages ADD COLUMN author_id TEXT; ${ROOMS_SCHEMA}`,
];
const SCHEMA_VERSION = MIGRATIONS.length;

const COLUMNS = 'seq, id, author, author_id, text, ts, client_msg_id';

interface Row {
  seq: number;
  id: string;
  author: string;
  author_id: string | null;
  text: string;
  ts: number;
  client_msg_id: string | null;
}

function toMessage(room: string, row: Row): Message {
  const message: Message = { seq: row.seq, id: row.id, room, author: row.author, text: row.text, ts: row.ts };
  if (row.author_id !== null) message.authorId = row.author_id;
  if (row.client_msg_id !== null) message.clientMsgId = row.client_msg_id;
  return message;
}

function prepareQueries(db: Database.Database) {
  return {
    head: db.prepare<[string], { head: number }>('SELECT head FROM rooms WHERE room = ?'),
    bumpHead: db.prepare<[string], { head: number }>(
      'INSERT INTO rooms (room, head) VALUES (?, 1) ON CONFLICT (room) DO UPDATE SET head = head + 1 RETURNING head',
    ),
    insert: db.prepare('INSERT INTO messages (room, seq, id, author, author_id, text, ts, client_msg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    byClientMsgId: db.prepare<[string, string], Row>(`SELECT ${COLUMNS} FROM messages WHERE room = ? AND client_msg_id = ?`),
    oldest: db.prepare<[string], { seq: number }>('SELECT seq FROM messages WHERE room = ? ORDER BY seq LIMIT 1'),
    newest: db.prepare<[string, number], Row>(`SELECT ${COLUMNS} FROM messages WHERE room = ? ORDER BY seq DESC LIMIT ?`),
    probe: db.prepare("INSERT INTO meta (key, value) VALUES ('probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    setEpoch: db.prepare<[string]>("UPDATE meta SET value = ? WHERE key = 'epoch'"),
    keepSecret: db.prepare<[string]>("INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT (key) DO NOTHING"),
    secret: db.prepare<[], string>("SELECT value FROM meta WHERE key = 'secret'").pluck(),
    rooms: db.prepare<[], string>('SELECT room FROM rooms').pluck(),
    range: db.prepare<[string, number, number], Row>(`SELECT ${COLUMNS} FROM messages WHERE room = ? AND seq >= ? AND seq < ? ORDER BY seq`),
    dropUpTo: db.prepare('DELETE FROM messages WHERE room = ? AND seq <= ?'),
    // Rooms with expired messages other than their newest, with the newest expired seq of each.
    expired: db.prepare<[number, number], { room: string; upto: number }>(
      `SELECT m.room AS room, MAX(m.seq) AS upto FROM messages m JOIN rooms r ON r.room = m.room
       WHERE m.ts < ? AND m.seq < r.head GROUP BY m.room LIMIT ?`,
    ),
  };
}

interface PendingAppend {
  room: string;
  draft: Draft;
  now: number;
  resolve(result: AppendResult): void;
  reject(err: unknown): void;
}

/** Rooms whose state and newest messages are kept in memory. */
const CACHED_ROOMS = 1000;
/** Newest messages kept in memory per cached room: enough for a poll that fell a few behind. */
const CACHED_PER_ROOM = 128;
/** Rooms trimmed by age in one transaction, so that a sweep never holds the event loop for long. */
const SWEEP_CHUNK = 100;
/** Longest pause between age sweeps. */
const SWEEP_INTERVAL_MAX_MS = 60_000;

function isSqliteError(err: unknown): err is Error & { code: string } {
  return err instanceof Database.SqliteError;
}

/**
 * Keeps messages in a SQLite file, so that history survives restarts.
 *
 * - Durable: WAL with synchronous=FULL, and an append resolves only after its
 *   transaction committed. Appends that arrive in the same turn of the event
 *   loop share one transaction (group commit), so one disk flush serves many.
 * - One process per file: the file is opened with an exclusive lock, which
 *   makes this process its only writer. That is what lets reads at or near a
 *   room's head come from memory (RoomCache), and change signals stay in
 *   process. To run several server processes, use the Redis store.
 * - The epoch is created with the file and kept in it. It changes when the
 *   file is found to have gone back in time at open (see SqliteMark), or on
 *   newEpoch.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private epoch: string;
  /** Messages ever appended: the sum of the rooms' heads, kept here so that no commit needs to ask. */
  private count: number;
  private readonly mark: SqliteMark;
  private readonly log: Log;
  private readonly cache: RoomCache;
  private readonly listeners = new RoomListeners();
  /** Presence is ephemeral and this process is the file's only user: kept in memory, never in the file. */
  private readonly presence = new MemoryPresence((room) => this.listeners.notify(room));
  private readonly rooms: SqliteRooms;
  private readonly q: ReturnType<typeof prepareQueries>;
  private readonly writeBatch: (batch: PendingAppend[]) => { results: AppendResult[]; heads: Map<string, number> };
  private pending: PendingAppend[] = [];
  private sweepTimer?: NodeJS.Timeout;
  private sweeping = false;
  private closed = false;
  private readCount = 0;

  /** SQL reads of messages and room heads made so far; polls answered from memory do not add to it. */
  get reads(): number {
    return this.readCount;
  }

  /** Opens (or creates) the database; throws StoreOpenError with one line for the operator. */
  static open(options: SqliteStoreOptions): SqliteStore {
    try {
      mkdirSync(dirname(options.path), { recursive: true });
    } catch (err) {
      throw new StoreOpenError(`cannot create the directory for ${options.path}: ${(err as Error).message}`, { cause: err });
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(options.path);
      return new SqliteStore(db, options);
    } catch (err) {
      db?.close();
      throw openError(options.path, err);
    }
  }

  private constructor(
    db: Database.Database,
    private readonly options: SqliteStoreOptions,
  ) {
    if (!Number.isInteger(options.retention) || options.retention < 1) throw new RangeError('retention must be a positive integer');
    this.db = db;
    // Taken at the first access below and held until close: no other process can use the file meanwhile.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    this.migrate();
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)").run(nanoid(12));
    this.epoch = (db.prepare("SELECT value FROM meta WHERE key = 'epoch'").get() as { value: string }).value;
    this.count = (db.prepare('SELECT total(head) AS count FROM rooms').get() as { count: number }).count;
    this.log = options.log ?? silentLog;

    this.q = prepareQueries(db);
    this.rooms = new SqliteRooms(db, (room) => this.listeners.notify(room));

    this.writeBatch = db.transaction((batch: PendingAppend[]) => {
      const results: AppendResult[] = [];
      const heads = new Map<string, number>();
      for (const { room, draft, now } of batch) {
        if (draft.clientMsgId !== undefined) {
          const original = this.q.byClientMsgId.get(room, draft.clientMsgId);
          if (original) {
            results.push({ message: toMessage(room, original), duplicate: true });
            continue;
          }
        }
        const seq = this.q.bumpHead.get(room)!.head;
        const message: Message = { seq, id: nanoid(), room, author: draft.author, text: draft.text, ts: now };
        if (draft.authorId !== undefined) message.authorId = draft.authorId;
        if (draft.clientMsgId !== undefined) message.clientMsgId = draft.clientMsgId;
        this.q.insert.run(room, seq, message.id, message.author, draft.authorId ?? null, message.text, now, draft.clientMsgId ?? null);
        heads.set(room, seq);
        results.push({ message, duplicate: false });
      }
      // Once per room and batch: one range delete, usually of as many rows as were added.
      for (const [room, head] of heads) {
        if (head > options.retention) this.q.dropUpTo.run(room, head - options.retention);
      }
      return { results, heads };
    });

    this.cache = new RoomCache(CACHED_ROOMS, Math.min(CACHED_PER_ROOM, options.retention));
    this.mark = this.openMark();
    if (options.retentionAgeMs > 0) {
      const every = Math.min(SWEEP_INTERVAL_MAX_MS, Math.max(1000, options.retentionAgeMs / 10));
      this.sweepTimer = setInterval(() => {
        this.sweep().catch((err: unknown) => warnRepeated(this.log, 'age retention sweep failed', err));
      }, every).unref();
    }
  }

  /**
   * Opens the file's mark and compares: a database that has taken fewer
   * messages than its mark (of the same epoch) says went back in time, and
   * its seqs could be handed out again, so it gets a new epoch. A missing or
   * unreadable mark, or one of another epoch (another file, or a new epoch
   * whose mark was not written), is simply replaced.
   */
  private openMark(): SqliteMark {
    const { path } = this.options;
    let mark: SqliteMark | undefined;
    try {
      mark = SqliteMark.open(path);
      const { found } = mark;
      if (found?.epoch === this.epoch && this.count < found.count) {
        const stale = this.epoch;
        this.epoch = nanoid(12);
        this.q.setEpoch.run(this.epoch);
        this.log.warn(
          { path, messages: this.count, marked: found.count, epoch: this.epoch, staleEpoch: stale },
          `${path} went back in time: it has taken ${this.count} messages, its mark says ${found.count} (an older copy, or rooms deleted by hand); starting new epoch ${this.epoch} (was ${stale}), so that every client resets`,
        );
      }
      mark.write({ epoch: this.epoch, count: this.count });
      return mark;
    } catch (err) {
      mark?.close();
      if (isSqliteError(err)) throw err;
      throw new StoreOpenError(`cannot use ${path}-mark, which records how far ${path} got: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Records the count after a change; a failure only weakens what a later open can detect, so it is reported, not thrown. */
  private updateMark(): void {
    try {
      this.mark.write({ epoch: this.epoch, count: this.count });
    } catch (err) {
      warnRepeated(this.log, `cannot update ${this.mark.path}: a restore of an older copy may go unnoticed`, err);
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new StoreOpenError(`${this.options.path} was written by a newer version of this server (schema ${version}; this one knows ${SCHEMA_VERSION})`);
    }
    // One transaction: a failed upgrade leaves the file as it was, at its old version.
    this.db.transaction(() => {
      for (const migration of MIGRATIONS.slice(version)) this.db.exec(migration);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  /** Runs `fn`, turning a database failure into StoreUnavailableError. */
  private guard<T>(fn: () => T): T {
    if (this.closed) throw new StoreUnavailableError('the SQLite store is closed');
    try {
      return fn();
    } catch (err) {
      // The file is local: whatever SQLite says, it said it, and may say it again while reads still work.
      if (isSqliteError(err)) throw new StoreUnavailableError(`SQLite: ${err.message} (${err.code})`, { cause: err, refused: true });
      throw err;
    }
  }

  append(room: string, draft: Draft, now: number): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the SQLite store is closed'));
    return new Promise((resolve, reject) => {
      if (this.pending.push({ room, draft, now, resolve, reject }) === 1) setImmediate(() => this.commit());
    });
  }

  /** Writes every pending append in one transaction, then answers and signals. */
  private commit(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let written;
    try {
      written = this.guard(() => this.writeBatch(batch));
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    let appended = 0;
    for (const [i, result] of written.results.entries()) {
      if (!result.duplicate) {
        this.cache.appended(result.message, this.options.retention);
        appended++;
      }
      batch[i]!.resolve(result);
    }
    // Before the answers go out (they go once this returns) and before any
    // poll is woken: every seq a client can have seen is counted in the mark.
    if (appended > 0) {
      this.count += appended;
      this.updateMark();
    }
    for (const room of written.heads.keys()) this.listeners.notify(room);
  }

  /** The room's cached state, read from the database when it is not cached. */
  private room(room: string): CachedRoom {
    const cached = this.cache.get(room);
    if (cached) return cached;
    const entry: CachedRoom = { head: 0, oldest: 0, recent: new Ring(this.cache.perRoom) };
    this.readCount++;
    const head = this.q.head.get(room)?.head ?? 0;
    if (head > 0) {
      this.readCount += 2;
      const newest = this.q.newest.all(room, this.cache.perRoom);
      for (let i = newest.length - 1; i >= 0; i--) entry.recent.push(toMessage(room, newest[i]!));
      entry.head = head;
      entry.oldest = this.q.oldest.get(room)?.seq ?? 0;
    }
    this.cache.set(room, entry);
    return entry;
  }

  /** Messages with seq in [from, to), from memory when the cache holds them all. */
  private range(room: string, entry: CachedRoom, from: number, to: number): Message[] {
    if (to <= from) return [];
    const first = entry.head - entry.recent.size + 1;
    if (from >= first) return entry.recent.slice(from - first, to - first);
    this.readCount++;
    return this.q.range.all(room, from, to).map((row) => toMessage(room, row));
  }

  private slice(entry: CachedRoom, messages: Message[]): Slice {
    return { epoch: this.epoch, head: entry.head, oldest: entry.oldest, messages };
  }

  readAfterNow(room: string, after: number, limit: number): Slice {
    return this.guard(() => {
      const entry = this.room(room);
      if (after >= entry.head) return this.slice(entry, []);
      const from = Math.max(after + 1, entry.oldest);
      return this.slice(entry, this.range(room, entry, from, Math.min(from + limit, entry.head + 1)));
    });
  }

  async readAfter(room: string, after: number, limit: number): Promise<Slice> {
    return this.readAfterNow(room, after, limit);
  }

  async readBefore(room: string, before: number, limit: number): Promise<Slice> {
    return this.guard(() => {
      const entry = this.room(room);
      if (entry.head === 0) return this.slice(entry, []);
      const to = Math.min(before, entry.head + 1);
      return this.slice(entry, this.range(room, entry, Math.max(to - limit, entry.oldest), to));
    });
  }

  readTail(room: string, limit: number): Promise<Slice> {
    return this.readBefore(room, Number.MAX_SAFE_INTEGER, limit);
  }

  async info(room: string): Promise<RoomState> {
    return this.guard(() => {
      const { head, oldest } = this.room(room);
      return { epoch: this.epoch, head, oldest };
    });
  }

  async subscribe(room: string, listener: ChangeListener): Promise<() => void> {
    return this.listeners.add(room, listener);
  }

  async ping(): Promise<void> {
    this.guard(() => this.q.probe.run(String(Date.now())));
  }

  async newEpoch(): Promise<string> {
    return this.guard(() => {
      const epoch = nanoid(12);
      this.q.setEpoch.run(epoch);
      this.epoch = epoch;
      this.updateMark();
      for (const room of this.q.rooms.all()) this.listeners.notify(room);
      return epoch;
    });
  }

  async createRoom(room: string, title: string, owner: User): Promise<RoomRecord | undefined> {
    return this.guard(() => this.rooms.create(room, title, owner));
  }

  async openDirect(room: string, caller: User, other: User): Promise<{ record: RoomRecord; created: boolean }> {
    return this.guard(() => this.rooms.openDirect(room, caller, other));
  }

  async readRoom(room: string): Promise<RoomRecord | undefined> {
    return this.guard(() => this.rooms.read(room));
  }

  async addMember(room: string, user: User, maxMembers: number): Promise<RoomRecord | undefined> {
    return this.guard(() => this.rooms.add(room, user, maxMembers));
  }

  async removeMember(room: string, userId: string): Promise<RoomRecord | undefined> {
    return this.guard(() => this.rooms.remove(room, userId));
  }

  async roomsOf(userId: string): Promise<RoomRecord[]> {
    return this.guard(() => this.rooms.roomsOf(userId));
  }

  async sharedSecret(candidate: string): Promise<string> {
    return this.guard(() => {
      this.q.keepSecret.run(candidate);
      return this.q.secret.get()!;
    });
  }

  /**
   * Drops messages older than the age retention, keeping each room's newest
   * message and its retained run contiguous. Works in small transactions,
   * yielding to the event loop between them. Returns how many rooms it trimmed.
   */
  async sweep(now = Date.now()): Promise<number> {
    if (this.options.retentionAgeMs <= 0 || this.sweeping) return 0;
    this.sweeping = true;
    try {
      const cutoff = now - this.options.retentionAgeMs;
      let trimmed = 0;
      for (;;) {
        const rooms = this.guard(() =>
          this.db.transaction(() => {
            const expired = this.q.expired.all(cutoff, SWEEP_CHUNK);
            for (const { room, upto } of expired) this.q.dropUpTo.run(room, upto);
            return expired;
          })(),
        );
        for (const { room } of rooms) {
          this.cache.delete(room);
          this.listeners.notify(room);
        }
        trimmed += rooms.length;
        if (rooms.length < SWEEP_CHUNK) return trimmed;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.sweeping = false;
    }
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
    if (this.closed) return;
    clearInterval(this.sweepTimer);
    this.commit();
    this.closed = true;
    this.listeners.clear();
    this.presence.clear();
    this.cache.clear();
    this.db.close();
    this.mark.close();
  }
}

/** One line saying why the file cannot serve as the store. */
function openError(path: string, err: unknown): StoreOpenError {
  if (err instanceof StoreOpenError) return err;
  const code = isSqliteError(err) ? err.code : undefined;
  const reason = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new StoreOpenError(`${path} is in use by another server process (one process per SQLite file; use --store redis to run several)`, { cause: err });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new StoreOpenError(`${path} is not a usable SQLite database (${reason}); move it aside or choose another --sqlite-path`, { cause: err });
  }
  return new StoreOpenError(`cannot open ${path} as a SQLite database: ${reason}`, { cause: err });
}
