import { ReplyError } from 'ioredis';
import { nanoid } from 'nanoid';
import { StoreOpenError, StoreUnavailableError, type ChangeListener, type Store } from '../core/store.js';
import type { AppendResult, Draft, Message, PresenceSnapshot, RoomRecord, RoomState, Slice, User } from '../core/types.js';
import { silentLog, type Log } from '../log.js';
import { connect, distinct, masters, safeUrl, warnAboutEviction, warnAboutReplicas, watch, type RedisClient, type RedisClients, type RedisTarget } from './redis-connect.js';
import { RedisPresence } from './redis-presence.js';
import { RedisRooms } from './redis-rooms.js';
import { APPEND, READ, RENEW_EPOCH } from './redis-scripts.js';
import { RedisSignals } from './redis-signals.js';

export interface RedisStoreOptions extends RedisTarget {
  /**
   * Redis Cluster: replicas that must have a message before append
   * resolves (1 by default; 0: its master alone). See append.
   */
  ackReplicas?: number;
  /** Starts every key and channel name, so that several deployments can share one Redis. */
  prefix: string;
  /** Messages kept per room (the stream's exact MAXLEN). */
  retention: number;
  /** Where connection losses and recoveries are reported. */
  log?: Log;
}

/** Redis Cluster: how long an append waits for replicas to confirm it (WAIT) before it fails (503). */
const ACK_TIMEOUT_MS = 2000;
/** How long a room's change channel stays subscribed after its last poll left. */
const SIGNAL_LINGER_MS = 10_000;
/** How often the store epoch is read again, to notice a Redis wiped while connected. */
const EPOCH_REFRESH_MS = 10_000;
/** Keys asked for per SCAN step when renewing every room's epoch. */
const SCAN_COUNT = 1000;

/**
 * Where a room lives in Redis. Every key of a room carries the room as its
 * hash tag, so that one room's keys share a Redis Cluster slot and a script
 * may touch them all.
 */
export function roomKeys(prefix: string, room: string) {
  const base = `${prefix}{${room}}`;
  return {
    meta: `${base}:meta`,
    log: `${base}:log`,
    ids: `${base}:ids`,
    signal: `${base}:signal`,
    record: `${base}:record`,
    members: `${base}:members`,
    names: `${base}:names`,
    online: `${base}:online`,
    onlineIds: `${base}:onlineIds`,
    onlineNames: `${base}:onlineNames`,
    typing: `${base}:typing`,
    typingIds: `${base}:typingIds`,
    typingNames: `${base}:typingNames`,
  };
}

export type RoomKeys = ReturnType<typeof roomKeys>;

type Entry = [id: string, fields: string[]];

function toMessage(room: string, [entryId, fields]: Entry): Message {
  const get = (name: string): string | undefined => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  };
  const message: Message = {
    seq: Number.parseInt(entryId, 10),
    id: get('id') ?? '',
    room,
    author: get('author') ?? '',
    text: get('text') ?? '',
    ts: Number(get('ts')),
  };
  const authorId = get('aid');
  if (authorId !== undefined) message.authorId = authorId;
  const clientMsgId = get('cmid');
  if (clientMsgId !== undefined) message.clientMsgId = clientMsgId;
  return message;
}

/**
 * Keeps messages in Redis, one stream per room, so that any number of server
 * processes share one history and wake each other's polls. Key layout: see
 * roomKeys and the README. Needs Redis 7.0 or newer (sharded pub/sub).
 *
 * Commands are never queued or retried while Redis is away: they fail at once
 * with StoreUnavailableError (a 503), so a post is never acknowledged unless
 * Redis ran it, and never run twice behind the client's back.
 *
 * Runs on one Redis or on a Redis Cluster (`cluster`): a room's keys share
 * its slot, and nothing else goes into one command or script with them.
 */
export class RedisStore implements Store {
  private readonly epochKey: string;
  private readonly probeKey: string;
  private readonly secretKey: string;
  private readonly rooms: RedisRooms;
  private readonly presence: RedisPresence;
  private epochLoad?: Promise<string>;
  /** The epoch the last successful read found. */
  private lastEpoch?: string;
  private readonly epochTimer: NodeJS.Timeout;
  /** Replicas an append waits for (0: none, as on a single Redis). */
  private readonly ackReplicas: number;
  private readonly cmd: RedisClient;
  private readonly sub: RedisClient;

  private constructor(
    private readonly clients: RedisClients,
    private readonly signals: RedisSignals,
    private readonly options: RedisStoreOptions,
  ) {
    const { cmd } = clients;
    this.cmd = cmd;
    this.sub = clients.sub;
    this.epochKey = `${options.prefix}epoch`;
    this.probeKey = `${options.prefix}probe`;
    this.secretKey = `${options.prefix}secret`;
    this.ackReplicas = options.cluster ? (options.ackReplicas ?? 1) : 0;
    this.rooms = new RedisRooms(cmd, options.prefix, (room) => roomKeys(options.prefix, room), (fn) => this.call(fn));
    this.presence = new RedisPresence(cmd, (room) => roomKeys(options.prefix, room), (fn) => this.call(fn));
    // After a reconnect (Redis may have restarted empty) and now and then, read
    // the store epoch again, so that rooms started afresh get a new one.
    cmd.on('ready', () => (this.epochLoad = undefined));
    this.epochTimer = setInterval(() => (this.epochLoad = undefined), EPOCH_REFRESH_MS).unref();
  }

  /**
   * The command connection, for state that every instance on this Redis
   * must share besides the store's (the posting rate limit), so that it
   * needs no connection of its own. Closed with the store. A cluster client
   * when the store is on a Redis Cluster: such state must keep each
   * command's keys in one slot.
   */
  get client(): RedisClient {
    return this.cmd;
  }

  /** Connects and checks the server (every master of a cluster); throws StoreOpenError with one line for the operator. */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    if (!Number.isInteger(options.retention) || options.retention < 1) throw new RangeError('retention must be a positive integer');
    const where = safeUrl(options.url);
    const clients = await connect(options);
    const { cmd, sub, appends } = clients;
    const log = options.log ?? silentLog;
    watch(cmd, 'commands', log);
    watch(sub, 'change signals', log);
    if (appends !== cmd) watch(appends, 'appends', log);
    const store = new RedisStore(clients, new RedisSignals(sub, SIGNAL_LINGER_MS), options);
    try {
      await store.epoch();
    } catch (err) {
      await store.close();
      throw new StoreOpenError(`cannot use Redis at ${where}: ${(err as Error).message}`, { cause: err });
    }
    await warnAboutEviction(cmd, where, log);
    await warnAboutReplicas(cmd, store.ackReplicas, where, log);
    return store;
  }

  /**
   * The store epoch, created once for the whole prefix: what an empty room
   * reports, and what a new room takes. Read again now and then; when that
   * read fails after one succeeded, the epoch last read stands: on a cluster
   * the epoch's key lives on one master, and its failover must not stop the
   * rooms of every other master (on a single Redis nothing works meanwhile
   * anyway, and the read after reconnecting is what notices a wiped Redis).
   */
  private epoch(): Promise<string> {
    this.epochLoad ??= this.call(async () => {
      const fresh = nanoid(12);
      const existing = await this.cmd.set(this.epochKey, fresh, 'NX', 'GET');
      return (this.lastEpoch = existing ?? fresh);
    }).catch((err: unknown) => {
      this.epochLoad = undefined;
      if (this.lastEpoch !== undefined) return this.lastEpoch;
      throw err;
    });
    return this.epochLoad;
  }

  /** Runs a Redis command, turning any failure into StoreUnavailableError. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      // A reply error (OOM, READONLY, MISCONF) is Redis refusing; anything else is Redis out of reach.
      throw new StoreUnavailableError(`Redis: ${(err as Error).message}`, { cause: err, refused: err instanceof ReplyError });
    }
  }

  /**
   * Appends a message (APPEND). On a Redis Cluster, whose replication is
   * asynchronous, a master that fails right after running it could lose
   * it; so the append is followed, on the same connection to the room's
   * master, by WAIT for `ackReplicas` replicas, and resolves only when they
   * confirmed it (for a duplicate, a write the script makes after finding
   * the original, which replicas receive after the original). Fewer
   * confirmations within ACK_TIMEOUT_MS is StoreUnavailableError: the
   * message may be lost in a failover or kept, and a retry with the same
   * clientMsgId answers with it or stores it, never twice.
   */
  async append(room: string, draft: Draft, now: number): Promise<AppendResult> {
    const storeEpoch = await this.epoch();
    const keys = roomKeys(this.options.prefix, room);
    const id = nanoid();
    const scriptKeys = [keys.meta, keys.log, keys.ids, keys.signal];
    const args = [storeEpoch, this.options.retention, id, draft.author, draft.text, now, draft.clientMsgId ?? '', draft.authorId ?? ''];
    const reply = (await this.call(async () => {
      if (this.ackReplicas === 0) return APPEND.run(this.cmd, scriptKeys, args);
      const [result, replicas] = await APPEND.runThenWait(this.clients.appends, scriptKeys, [...args, 'replicate'], this.ackReplicas, ACK_TIMEOUT_MS);
      if (replicas < this.ackReplicas) {
        throw new StoreUnavailableError(`Redis: ${replicas} of ${this.ackReplicas} replica(s) confirmed the message within ${ACK_TIMEOUT_MS} ms; it may be lost in a failover, so retry it`);
      }
      return result;
    })) as [1, string, number] | [0, string, string, string[]];
    if (reply[0] === 0) return { message: toMessage(room, [reply[2], reply[3]]), duplicate: true };
    const message: Message = { seq: reply[2], id, room, author: draft.author, text: draft.text, ts: now };
    if (draft.authorId !== undefined) message.authorId = draft.authorId;
    if (draft.clientMsgId !== undefined) message.clientMsgId = draft.clientMsgId;
    return { message, duplicate: false };
  }

  private async read(room: string, mode: 'after' | 'before' | 'info', seq: number, limit: number): Promise<Slice> {
    const keys = roomKeys(this.options.prefix, room);
    const [epoch, head, oldest, entries] = (await this.call(() =>
      READ.run(this.cmd, [keys.meta, keys.log], [mode, seq, limit]),
    )) as [string, number, number, Entry[]];
    return {
      epoch: epoch === '' ? await this.epoch() : epoch,
      head,
      oldest,
      messages: entries.map((entry) => toMessage(room, entry)),
    };
  }

  readAfter(room: string, after: number, limit: number): Promise<Slice> {
    return this.read(room, 'after', after, limit);
  }

  async readBefore(room: string, before: number, limit: number): Promise<Slice> {
    const slice = await this.read(room, 'before', before, limit);
    slice.messages.reverse();
    return slice;
  }

  readTail(room: string, limit: number): Promise<Slice> {
    return this.readBefore(room, Number.MAX_SAFE_INTEGER, limit);
  }

  async info(room: string): Promise<RoomState> {
    const { epoch, head, oldest } = await this.read(room, 'info', 0, 0);
    return { epoch, head, oldest };
  }

  subscribe(room: string, listener: ChangeListener): Promise<() => void> {
    return this.signals.subscribe(roomKeys(this.options.prefix, room).signal, listener);
  }

  async ping(): Promise<void> {
    if (this.sub.status !== 'ready') throw new StoreUnavailableError('the Redis connection for change signals is down');
    // A write, because a Redis out of memory or a read-only replica still answers PING and reads.
    await this.call(() => this.cmd.set(this.probeKey, String(Date.now())));
  }

  /**
   * Sets a new store epoch, then gives it to every room with messages (a
   * room keeps the epoch it took with its first message, so changing the
   * store epoch alone would change only the empty rooms).
   *
   * Every other process on the prefix must be stopped while this runs, and
   * started again afterwards: each caches the store epoch for up to
   * EPOCH_REFRESH_MS, and gives it to every room whose first message it
   * stores meanwhile, for good. Such a room, started again from seq 1 after
   * a restore, would then hand out under the old epoch seqs that its
   * clients saw before the restore (restarting the processes right after
   * this is not enough: a post in between can start a room).
   */
  async newEpoch(): Promise<string> {
    const epoch = nanoid(12);
    await this.call(() => this.cmd.set(this.epochKey, epoch));
    this.epochLoad = Promise.resolve((this.lastEpoch = epoch));
    const { prefix } = this.options;
    const metaSuffix = ':meta';
    // SCAN sees one server's keys: on a cluster, every master's in turn.
    for (const node of masters(this.cmd)) {
      let cursor = '0';
      do {
        const [next, metas] = await this.call(() => node.scan(cursor, 'MATCH', `${prefix}{*}${metaSuffix}`, 'COUNT', SCAN_COUNT));
        await Promise.all(
          metas.map((meta) => {
            const { signal } = roomKeys(prefix, meta.slice(prefix.length + 1, -metaSuffix.length - 1));
            return this.call(() => RENEW_EPOCH.run(this.cmd, [meta, signal], [epoch]));
          }),
        );
        cursor = next;
      } while (cursor !== '0');
    }
    return epoch;
  }

  createRoom(room: string, title: string, owner: User): Promise<RoomRecord | undefined> {
    return this.rooms.create(room, title, owner);
  }

  openDirect(room: string, caller: User, other: User): Promise<{ record: RoomRecord; created: boolean }> {
    return this.rooms.openDirect(room, caller, other);
  }

  readRoom(room: string): Promise<RoomRecord | undefined> {
    return this.rooms.read(room);
  }

  addMember(room: string, user: User, maxMembers: number): Promise<RoomRecord | undefined> {
    return this.rooms.add(room, user, maxMembers);
  }

  removeMember(room: string, userId: string): Promise<RoomRecord | undefined> {
    return this.rooms.remove(room, userId);
  }

  roomsOf(userId: string): Promise<RoomRecord[]> {
    return this.rooms.roomsOf(userId);
  }

  /** Set with NX, as the epoch is: processes starting together all end up with the one value that won. */
  async sharedSecret(candidate: string): Promise<string> {
    const existing = await this.call(() => this.cmd.set(this.secretKey, candidate, 'NX', 'GET'));
    return existing ?? candidate;
  }

  setOnline(room: string, user: User, until: number, now: number): Promise<void> {
    return this.presence.set(room, 'online', user, until, now);
  }

  setTyping(room: string, user: User, until: number, now: number): Promise<void> {
    return this.presence.set(room, 'typing', user, until, now);
  }

  readPresence(room: string, now: number, limit: number): Promise<PresenceSnapshot> {
    return this.presence.read(room, now, limit);
  }

  async close(): Promise<void> {
    clearInterval(this.epochTimer);
    this.signals.close();
    const all = distinct(this.clients);
    for (const conn of all) {
      // Closing on purpose is not a loss to report, and must not wake anything.
      conn.removeAllListeners();
      conn.on('error', () => {});
    }
    await Promise.all(
      all.map((conn) =>
        conn.quit().then(
          () => undefined,
          () => conn.disconnect(),
        ),
      ),
    );
  }
}
