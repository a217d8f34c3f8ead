// The Redis store on a real Redis Cluster of the test's own (3 masters, 3
// replicas): the store contract, and what a cluster adds: rooms spread over
// masters, signals from each, a new epoch on every master, the rate limit's
// counts, acknowledged appends confirmed by a replica.
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { StoreOpenError } from '../../src/core/store.js';
import { postLimiter } from '../../src/http/rate-limit.js';
import { RedisStore, roomKeys } from '../../src/stores/redis-store.js';
import { startRedisCluster, type RedisClusterProcess } from '../helpers/redis-cluster.js';
import { storeContract } from './store-contract.js';

const env = inject('redis');
let stores = 0;
const newPrefix = (): string => `cluster-s${++stores}:`;
const draft = (text: string, clientMsgId?: string) => ({ author: 'ann', text, ...(clientMsgId ? { clientMsgId } : {}) });

describe.skipIf(env.skipCluster)('redis store on a Redis Cluster', () => {
  let cluster: RedisClusterProcess;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const open: RedisStore[] = [];
  const make = async (prefix = newPrefix(), retention = 100): Promise<RedisStore> => {
    const store = await RedisStore.open({ url: cluster.url, cluster: true, prefix, retention });
    open.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  storeContract('redis cluster', ({ retention }) => RedisStore.open({ url: cluster.url, cluster: true, prefix: newPrefix(), retention }));

  /** Rooms whose slots are served by every master, `each` per master. */
  async function roomsOnEveryMaster(prefix: string, each: number): Promise<string[]> {
    const byMaster = new Map<number, string[]>();
    for (let i = 0; [...byMaster.values()].filter((rooms) => rooms.length >= each).length < 3; i++) {
      const room = `spread-${i}`;
      const master = await cluster.masterOf(roomKeys(prefix, room).meta);
      const rooms = byMaster.get(master) ?? [];
      if (rooms.length < each) rooms.push(room);
      byMaster.set(master, rooms);
    }
    return [...byMaster.values()].flat();
  }

  it('connects through any one seed node, and finds the rest', async () => {
    const store = await RedisStore.open({ url: cluster.url.split(',')[4]!, cluster: true, prefix: newPrefix(), retention: 10 });
    open.push(store);
    expect((await store.append('r', draft('via one node'), 1)).message.seq).toBe(1);
    expect((store.client as Cluster).nodes('master')).toHaveLength(3);
  });

  it('carries rooms on every master: appends, reads and signals from each, across two stores', async () => {
    const prefix = newPrefix();
    const [a, b] = [await make(prefix), await make(prefix)];
    const rooms = await roomsOnEveryMaster(prefix, 2);
    const signals = new Map<string, number>();
    const stops = await Promise.all(rooms.map((room) => b.subscribe(room, () => signals.set(room, (signals.get(room) ?? 0) + 1))));
    for (const room of rooms) {
      const { message } = await a.append(room, draft(`in ${room}`, `k-${room}`), 5);
      expect(message.seq).toBe(1);
      expect(await b.append(room, draft('again', `k-${room}`), 6)).toEqual({ message, duplicate: true });
      expect((await b.readAfter(room, 0, 10)).messages).toEqual([message]);
    }
    await expect.poll(() => rooms.every((room) => (signals.get(room) ?? 0) > 0)).toBe(true);
    for (const stop of stops) stop();
  });

  it('gives every room on every master the new epoch', async () => {
    const prefix = newPrefix();
    const store = await make(prefix);
    const rooms = await roomsOnEveryMaster(prefix, 3);
    for (const room of rooms) await store.append(room, draft('x'), 1);
    const epoch = await store.newEpoch();
    for (const room of rooms) expect(await store.info(room)).toMatchObject({ epoch, head: 1 });
    expect((await store.append(rooms[0]!, draft('y'), 2)).message.seq).toBe(2);
  });

  it('keeps private room records and the per-user index (another slot) in step', async () => {
    const store = await make();
    const ann = { id: 'u-ann', name: 'Ann' };
    const bob = { id: 'u-bob', name: 'Bob' };
    await store.createRoom('p_one', 'One', ann);
    await store.openDirect('p_two', ann, bob);
    expect((await store.roomsOf(ann.id)).map((r) => r.room)).toEqual(['p_one', 'p_two']);
    await store.removeMember('p_two', ann.id);
    expect((await store.roomsOf(ann.id)).map((r) => r.room)).toEqual(['p_one']);
    expect((await store.roomsOf(bob.id)).map((r) => r.room)).toEqual(['p_two']);
  });

  it('counts the posting limit in the cluster, shared by two stores', async () => {
    const prefix = newPrefix();
    const [a, b] = [await make(prefix), await make(prefix)];
    const limit = { perSecond: 1, burst: 3 };
    const [onA, onB] = [postLimiter(limit, { client: a.client, prefix }), postLimiter(limit, { client: b.client, prefix })];
    await onA.consume('user:u1');
    await onB.consume('user:u1');
    await onA.consume('user:u1');
    await expect(onB.consume('user:u1')).rejects.toMatchObject({ code: 'rate_limited' });
  });

  it('acknowledges an append once a replica has it, and a duplicate likewise', async () => {
    const prefix = newPrefix();
    const store = await make(prefix);
    const { message } = await store.append('acked', draft('kept', 'k1'), 1);
    expect(await store.append('acked', draft('kept', 'k1'), 2)).toEqual({ message, duplicate: true });
    const strict = await RedisStore.open({ url: cluster.url, cluster: true, ackReplicas: 2, prefix, retention: 100 });
    open.push(strict);
    // Each master has one replica: waiting for two cannot succeed, so the post is refused (and may be retried).
    await expect(strict.append('acked', draft('needs two', 'k2'), 3)).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    expect((await store.append('acked', draft('needs two', 'k2'), 4)).duplicate).toBe(true);
  });

  it('warns at start-up of every master with fewer replicas than each post waits for', async () => {
    const warnings: string[] = [];
    const log = { info() {}, error() {}, warn: (_fields: object, message: string) => void warnings.push(message) };
    const store = await RedisStore.open({ url: cluster.url, cluster: true, ackReplicas: 2, prefix: newPrefix(), retention: 10, log });
    await store.close();
    const replicas = warnings.filter((line) => /has 1 replica\(s\) connected and posts wait for 2 \(--redis-ack-replicas\)/.test(line));
    expect(replicas).toHaveLength(3);
  });

  it('refuses, with one line, a cluster node without --redis-cluster and a database other than 0', async () => {
    const seed = cluster.url.split(',')[0]!;
    await expect(RedisStore.open({ url: seed, prefix: newPrefix(), retention: 10 })).rejects.toThrow(
      new StoreOpenError(`Redis at ${seed} is a node of a Redis Cluster; add --redis-cluster (REDIS_CLUSTER=on)`),
    );
    await expect(RedisStore.open({ url: `${seed}/2`, cluster: true, prefix: newPrefix(), retention: 10 })).rejects.toThrow(/a Redis Cluster has database 0 only/);
  });

  it('says which seed nodes it could not reach', async () => {
    await expect(RedisStore.open({ url: 'redis://127.0.0.1:1', cluster: true, prefix: newPrefix(), retention: 10 })).rejects.toThrow(
      /^cannot reach Redis Cluster at redis:\/\/127\.0\.0\.1:1: [^\n]+$/,
    );
  });

  it.skipIf(env.skip)('refuses, with one line, a single Redis given as a cluster', async () => {
    await expect(RedisStore.open({ url: env.url, cluster: true, prefix: newPrefix(), retention: 10 })).rejects.toThrow(
      /is not a node of a Redis Cluster \(.*cluster support disabled\); leave out --redis-cluster$/,
    );
  });
});
