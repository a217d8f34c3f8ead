import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { StoreOpenError, StoreUnavailableError } from '../../src/core/store.js';
import { RedisSignals } from '../../src/stores/redis-signals.js';
import { RedisStore, roomKeys } from '../../src/stores/redis-store.js';
import { startRedisServer, type RedisProcess } from '../helpers/processes.js';
import { storeContract } from './store-contract.js';

const env = inject('redis');
let stores = 0;
/** A prefix of its own for each store, under the run's prefix that is wiped afterwards. */
const newPrefix = (): string => `${env.prefix}s${++stores}:`;
const draft = (text: string, clientMsgId?: string) => ({ author: 'ann', text, ...(clientMsgId ? { clientMsgId } : {}) });
const ann = { id: 'u-ann', name: 'Ann' };
const bob = { id: 'u-bob', name: 'Bob' };

describe.skipIf(env.skip)('redis store', () => {
  storeContract('redis', ({ retention }) => RedisStore.open({ url: env.url, prefix: newPrefix(), retention }));

  const open: RedisStore[] = [];
  const make = async (prefix: string, retention = 100): Promise<RedisStore> => {
    const store = await RedisStore.open({ url: env.url, prefix, retention });
    open.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  let raw: Redis;
  beforeAll(() => {
    raw = new Redis(env.url);
  });
  afterAll(() => raw?.disconnect());

  describe('two stores on one prefix, as two server processes would have', () => {
    it('give gap-free seqs to appends racing from both', async () => {
      const prefix = newPrefix();
      const [a, b] = [await make(prefix, 1000), await make(prefix, 1000)];
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? a : b).append('r', draft(`m${i}`), i)),
      );
      expect(results.map((r) => r.message.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
      const read = await b.readAfter('r', 0, 1000);
      expect(read.messages).toEqual(results.map((r) => r.message).sort((x, y) => x.seq - y.seq));
    });

    it('signal each other: every append on one, after a subscribe on the other resolved, is signalled', async () => {
      const prefix = newPrefix();
      const [a, b] = [await make(prefix), await make(prefix)];
      for (let i = 1; i <= 30; i++) {
        let signals = 0;
        const room = `race-${i}`;
        const stop = await a.subscribe(room, () => signals++);
        await b.append(room, draft('x'), i);
        await expect.poll(() => signals).toBeGreaterThan(0);
        stop();
      }
    });

    it('share clientMsgIds and the epoch', async () => {
      const prefix = newPrefix();
      const [a, b] = [await make(prefix), await make(prefix)];
      expect((await a.info('fresh')).epoch).toBe((await b.info('fresh')).epoch);
      const first = await a.append('r', draft('once', 'k'), 1);
      expect(await b.append('r', draft('twice', 'k'), 2)).toEqual({ message: first.message, duplicate: true });
      expect((await b.info('r')).epoch).toBe((await a.info('fresh')).epoch);
    });

    it('share private room records: a change on one is read on the other at once, and signals its subscribers', async () => {
      const prefix = newPrefix();
      const [a, b] = [await make(prefix), await make(prefix)];
      await a.createRoom('p_r', 'shared', ann);
      await a.addMember('p_r', bob, 100);
      const both = { room: 'p_r', title: 'shared', owner: ann, members: [ann, bob] };
      expect(await b.readRoom('p_r')).toEqual(both);
      expect(await b.roomsOf(bob.id)).toEqual([both]);

      let signals = 0;
      const stop = await b.subscribe('p_r', () => signals++);
      await a.removeMember('p_r', bob.id);
      await expect.poll(() => signals).toBeGreaterThan(0);
      expect(await b.roomsOf(bob.id)).toEqual([]);
      stop();
    });

    it('share presence: an entry written on one is read on the other at once, and signals its subscribers', async () => {
      const prefix = newPrefix();
      const [a, b] = [await make(prefix), await make(prefix)];
      let signals = 0;
      const stop = await b.subscribe('r', () => signals++);
      await a.setOnline('r', ann, 1_060_000, 1_000_000);
      expect(await b.readPresence('r', 1_000_000, 100)).toEqual({ online: [ann], onlineCount: 1, typing: [], nextExpiry: 1_060_000 });
      await expect.poll(() => signals).toBeGreaterThan(0);
      const seen = signals;
      await b.setTyping('r', bob, 1_006_000, 1_000_000);
      expect((await a.readPresence('r', 1_000_000, 100)).typing).toEqual([bob]);
      await expect.poll(() => signals).toBeGreaterThan(seen);
      stop();
    });

    it('share the secret: the first candidate stored by either wins', async () => {
      const prefix = newPrefix();
      const [a, b] = [await make(prefix), await make(prefix)];
      const [fromA, fromB] = await Promise.all([a.sharedSecret('from-a'), b.sharedSecret('from-b')]);
      expect(fromA).toBe(fromB);
      expect(await b.sharedSecret('later')).toBe(fromA);
    });
  });

  it("skips in roomsOf a room whose index entry is stale (a removal's index update lost)", async () => {
    const prefix = newPrefix();
    const store = await make(prefix);
    await store.createRoom('p_kept', '', ann);
    await store.createRoom('p_left', '', bob);
    await store.addMember('p_left', ann, 100);
    const keys = roomKeys(prefix, 'p_left');
    await raw.zrem(keys.members, ann.id);
    await raw.hdel(keys.names, ann.id);
    expect(await raw.smembers(`${prefix}user:{${ann.id}}:rooms`)).toContain('p_left');
    expect((await store.roomsOf(ann.id)).map((r) => r.room)).toEqual(['p_kept']);
  });

  it('lays a private room out as documented: a hash, a sorted set and a hash, tagged with the room; an index set per user', async () => {
    const prefix = newPrefix();
    const store = await make(prefix);
    await store.createRoom('p_r', 'Title', ann);
    await store.addMember('p_r', bob, 100);
    await store.removeMember('p_r', ann.id);
    expect(await store.sharedSecret('s3cret')).toBe('s3cret');
    const keys = roomKeys(prefix, 'p_r');
    expect((await raw.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 1000))[1].sort()).toEqual(
      [`${prefix}epoch`, `${prefix}secret`, keys.record, keys.members, keys.names, `${prefix}user:{u-bob}:rooms`].sort(),
    );
    expect(await raw.hgetall(keys.record)).toEqual({ title: 'Title', owner: bob.id, ownerName: bob.name, joins: '2' });
    expect(await raw.zrange(keys.members, '0', '-1', 'WITHSCORES')).toEqual([bob.id, '2']);
    expect(await raw.hgetall(keys.names)).toEqual({ [bob.id]: bob.name });
    expect(await raw.smembers(`${prefix}user:{u-bob}:rooms`)).toEqual(['p_r']);
    expect(await raw.get(`${prefix}secret`)).toBe('s3cret');
  });

  describe('presence', () => {
    const T = 1_000_000;
    const MIN = 60_000;
    const prefixKeys = async (prefix: string): Promise<string[]> => (await raw.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 10_000))[1].sort();

    it('lays a list out as documented: by time, by id (all scores 0) and names, tagged with the room, expiring with its last entry', async () => {
      const prefix = newPrefix();
      const store = await make(prefix);
      await store.setOnline('r', ann, T + 2 * MIN, T);
      await store.setOnline('r', bob, T + MIN, T);
      await store.setTyping('r', bob, T + MIN / 2, T);
      const keys = roomKeys(prefix, 'r');
      expect(await prefixKeys(prefix)).toEqual(
        [`${prefix}epoch`, keys.online, keys.onlineIds, keys.onlineNames, keys.typing, keys.typingIds, keys.typingNames].sort(),
      );
      expect(await raw.zrange(keys.online, '0', '-1', 'WITHSCORES')).toEqual([bob.id, String(T + MIN), ann.id, String(T + 2 * MIN)]);
      expect(await raw.zrange(keys.onlineIds, '0', '-1', 'WITHSCORES')).toEqual([ann.id, '0', bob.id, '0']);
      expect(await raw.hgetall(keys.onlineNames)).toEqual({ [ann.id]: ann.name, [bob.id]: bob.name });
      expect(await raw.zrange(keys.typing, '0', '-1', 'WITHSCORES')).toEqual([bob.id, String(T + MIN / 2)]);
      // Each key expires when the list's latest entry ends, counted from the caller's now (Redis's clock is not the caller's).
      for (const key of [keys.online, keys.onlineIds, keys.onlineNames]) {
        expect(await raw.pttl(key)).toBeGreaterThan(2 * MIN - 5000);
        expect(await raw.pttl(key)).toBeLessThanOrEqual(2 * MIN);
      }
      for (const key of [keys.typing, keys.typingIds, keys.typingNames]) expect(await raw.pttl(key)).toBeLessThanOrEqual(MIN / 2);
      // Lowering the latest entry brings the expiry forward.
      await store.setOnline('r', ann, T + MIN / 4, T);
      expect(await raw.pttl(keys.onlineNames)).toBeLessThanOrEqual(MIN);

      await store.setTyping('r', bob, T, T);
      expect(await prefixKeys(prefix)).toEqual([`${prefix}epoch`, keys.online, keys.onlineIds, keys.onlineNames].sort());
      await store.readPresence('r', T + MIN, 100);
      expect(await prefixKeys(prefix)).toEqual([`${prefix}epoch`]);
    });

    it('frees the keys of a room no one reads or writes again once its last entry ends', async () => {
      const prefix = newPrefix();
      const store = await make(prefix);
      await store.setOnline('r', ann, T + 200, T);
      await store.setTyping('r', ann, T + 100, T);
      const keys = roomKeys(prefix, 'r');
      const all = [keys.online, keys.onlineIds, keys.onlineNames, keys.typing, keys.typingIds, keys.typingNames];
      expect(await raw.exists(...all)).toBe(6);
      await expect.poll(() => raw.exists(...all), { timeout: 3000 }).toBe(0);
    });

    it('prunes 10,000 users whose times passed together, more than one Lua call can take at once', async () => {
      const prefix = newPrefix();
      const store = await make(prefix);
      const users = Array.from({ length: 10_000 }, (_, i) => ({ id: `u${i}`, name: `U${i}` }));
      await Promise.all(users.map((user) => store.setOnline('crowd', user, T + MIN, T)));
      expect((await store.readPresence('crowd', T, 10)).onlineCount).toBe(10_000);
      await store.setTyping('crowd', ann, T + 2 * MIN, T + MIN);
      expect(await store.readPresence('crowd', T + MIN, 10)).toEqual({ online: [], onlineCount: 0, typing: [ann], nextExpiry: T + 2 * MIN });
      const keys = roomKeys(prefix, 'crowd');
      expect(await raw.exists(keys.online, keys.onlineIds, keys.onlineNames)).toBe(0);
    });

    it('rejects with StoreUnavailableError while Redis cannot be reached', async () => {
      const store = await make(newPrefix());
      store.client.disconnect();
      await expect(store.setOnline('r', ann, T + MIN, T)).rejects.toThrow(StoreUnavailableError);
      await expect(store.setTyping('r', ann, T + MIN, T)).rejects.toThrow(StoreUnavailableError);
      await expect(store.readPresence('r', T, 100)).rejects.toThrow(StoreUnavailableError);
    });
  });

  it('keeps deployments with different prefixes apart', async () => {
    const [a, b] = [await make(newPrefix()), await make(newPrefix())];
    await a.append('r', draft('a1'), 1);
    await a.append('r', draft('a2'), 1);
    expect((await b.info('r')).head).toBe(0);
    expect((await b.append('r', draft('b1'), 1)).message.seq).toBe(1);
    expect((await a.info('r')).epoch).not.toBe((await b.info('r')).epoch);
  });

  it('lays a room out as documented: one stream, a hash and a clientMsgId index, all tagged with the room', async () => {
    const prefix = newPrefix();
    const store = await make(prefix, 2);
    for (let i = 1; i <= 3; i++) await store.append('lobby', draft(`t${i}`, `k${i}`), i);
    const keys = roomKeys(prefix, 'lobby');
    expect(keys).toEqual({
      meta: `${prefix}{lobby}:meta`,
      log: `${prefix}{lobby}:log`,
      ids: `${prefix}{lobby}:ids`,
      signal: `${prefix}{lobby}:signal`,
      record: `${prefix}{lobby}:record`,
      members: `${prefix}{lobby}:members`,
      names: `${prefix}{lobby}:names`,
      online: `${prefix}{lobby}:online`,
      onlineIds: `${prefix}{lobby}:onlineIds`,
      onlineNames: `${prefix}{lobby}:onlineNames`,
      typing: `${prefix}{lobby}:typing`,
      typingIds: `${prefix}{lobby}:typingIds`,
      typingNames: `${prefix}{lobby}:typingNames`,
    });
    expect((await raw.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 1000))[1].sort()).toEqual(
      [`${prefix}epoch`, keys.ids, keys.log, keys.meta].sort(),
    );
    expect(await raw.type(keys.log)).toBe('stream');
    expect(await raw.xlen(keys.log)).toBe(2);
    expect(await raw.hgetall(keys.meta)).toEqual({ epoch: await raw.get(`${prefix}epoch`), head: '3' });
    // The index is trimmed with the stream.
    expect(await raw.zrange(keys.ids, '0', '-1', 'WITHSCORES')).toEqual(['k2', '2', 'k3', '3']);
  });

  it("renews the store epoch key and every room's meta on newEpoch, and touches nothing else", async () => {
    const prefix = newPrefix();
    const [a, b] = [await make(prefix), await make(prefix)];
    await a.append('one', draft('x'), 1);
    await a.append('two', draft('x'), 1);
    await a.append('two', draft('y'), 2);
    const keys = (await raw.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 1000))[1].sort();

    const epoch = await a.newEpoch();
    expect(await raw.get(`${prefix}epoch`)).toBe(epoch);
    expect(await raw.hgetall(roomKeys(prefix, 'one').meta)).toEqual({ epoch, head: '1' });
    expect(await raw.hgetall(roomKeys(prefix, 'two').meta)).toEqual({ epoch, head: '2' });
    expect((await raw.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 1000))[1].sort()).toEqual(keys);
    // Another process on the prefix reads a room's epoch from the room, so it sees the new one at once.
    expect(await b.info('two')).toEqual({ epoch, head: 2, oldest: 1 });
  });

  it("keeps a room's channel subscribed for a while after its last listener, then unsubscribes", async () => {
    const conn = new Redis(env.url, { lazyConnect: true });
    await conn.connect();
    const signals = new RedisSignals(conn, 200);
    const channel = `${newPrefix()}{linger}:signal`;
    const subscribers = async (): Promise<number> => Number(((await raw.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);
    try {
      let calls = 0;
      const stop = await signals.subscribe(channel, () => calls++);
      await raw.spublish(channel, '1');
      await expect.poll(() => calls).toBe(1);
      stop();
      expect(await subscribers()).toBe(1);
      await raw.spublish(channel, '2');
      await expect.poll(subscribers).toBe(0);
      expect(calls).toBe(1);
    } finally {
      signals.close();
      conn.disconnect();
    }
  });

  it('refuses to start against an unreachable Redis, with one line', async () => {
    await expect(RedisStore.open({ url: 'redis://127.0.0.1:1', prefix: newPrefix(), retention: 10 })).rejects.toThrow(
      /^cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
  });
});

describe.skipIf(env.skipOwnServer)('redis store against a Redis that needs a password', () => {
  let server: RedisProcess;
  beforeAll(async () => {
    server = await startRedisServer(['--requirepass', 'sekret']);
  });
  afterAll(() => server?.kill());

  it('refuses a wrong or missing password with one line, hiding the password', async () => {
    const wrong = RedisStore.open({ url: `redis://:nope@127.0.0.1:${server.port}`, prefix: 'p:', retention: 10 });
    await expect(wrong).rejects.toThrow(StoreOpenError);
    await expect(wrong).rejects.toThrow(new RegExp(`^Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${server.port} refused the credentials: WRONGPASS`));
    await expect(RedisStore.open({ url: server.url, prefix: 'p:', retention: 10 })).rejects.toThrow(/refused the credentials: NOAUTH/);
    const right = await RedisStore.open({ url: `redis://:sekret@127.0.0.1:${server.port}`, prefix: 'p:', retention: 10 });
    expect((await right.append('r', draft('in'), 1)).message.seq).toBe(1);
    await right.close();
  });
});
