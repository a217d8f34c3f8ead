// Two real server processes on a Redis Cluster of the test's own, as behind
// a load balancer with no sticky sessions: the two-instance checks of
// multi-instance.test.ts, with the rooms spread over three masters; and
// `npm run new-epoch` on the cluster.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { roomKeys } from '../../src/stores/redis-store.js';
import { startServerProcess, type ServerProcess } from '../helpers/processes.js';
import { startRedisCluster, type RedisClusterProcess } from '../helpers/redis-cluster.js';
import { follow, newRoom, poll, post, range, send, waitParked, type Message } from '../http/util.js';

const env = inject('redis');
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe.skipIf(env.skipCluster)('two server processes on one Redis Cluster', () => {
  let cluster: RedisClusterProcess;
  let a: ServerProcess;
  let b: ServerProcess;
  const storeArgs = (): string[] => ['--store', 'redis', '--redis-cluster', '--redis-url', cluster.url, '--redis-prefix', 'multi:'];
  beforeAll(async () => {
    cluster = await startRedisCluster();
    [a, b] = await Promise.all([startServerProcess(storeArgs()), startServerProcess(storeArgs())]);
  });
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await cluster?.stop();
  });

  it('carry 1,000 messages in 4 rooms from posters on both to followers on both, each exactly once and in order', async () => {
    const rooms = range(1, 4).map(() => newRoom('multi'));
    const POSTERS = 10;
    const EACH = 100;
    const roomOf = (p: number, i: number): string => rooms[(p + i) % rooms.length]!;
    const expected = rooms.map((room) => range(0, POSTERS - 1).flatMap((p) => range(1, EACH).filter((i) => roomOf(p, i) === room)).length);
    const followers = await Promise.all(
      rooms.map(async (room, r) => {
        const joined = await poll(a.url, room);
        const cursor = { epoch: joined.body.epoch, last: 0 };
        return [a, a, b, b].map((server) => follow(server.url, room, expected[r]!, cursor));
      }),
    );

    const statuses: number[] = [];
    const posted = await Promise.all(
      range(0, POSTERS - 1).map(async (p) => {
        const server = p % 2 === 0 ? a : b;
        const mine: Message[] = [];
        for (let i = 1; i <= EACH; i++) {
          const res = await post(server.url, roomOf(p, i), { author: `poster-${p}`, text: `p${p} m${i}`, clientMsgId: `p${p}-${i}` });
          statuses.push(res.status);
          if (res.status === 201) mine.push(res.body.message);
        }
        return mine;
      }),
    );

    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    for (const [r, room] of rooms.entries()) {
      const all = posted.flat().filter((m) => m.room === room).sort((x, y) => x.seq - y.seq);
      expect(all.map((m) => m.seq)).toEqual(range(1, expected[r]!));
      for (const seen of await Promise.all(followers[r]!)) expect(seen).toEqual(all);
    }
  }, 120_000);

  it('wake a poll parked on one with a post to the other', async () => {
    for (let i = 0; i < 6; i++) {
      const room = newRoom();
      const held = poll(b.url, room, { after: 0, timeout: 20 });
      await waitParked(b.url, 1);
      const m = await send(a.url, room, 'across');
      const res = await held;
      expect(res.status).toBe(200);
      expect(res.body.messages).toEqual([m]);
    }
  });

  it('give a poll racing a post on the other process that post, whichever arrives first', async () => {
    const room = newRoom();
    for (let i = 1; i <= 50; i++) {
      const [pollServer, postServer] = i % 2 === 0 ? [a, b] : [b, a];
      const [res, m] = await Promise.all([poll(pollServer.url, room, { after: i - 1, timeout: 10 }), send(postServer.url, room, `r${i}`)]);
      expect(res.body.messages).toEqual([m]);
    }
  });

  it('show a poll on one process a post the other has answered', async () => {
    const room = newRoom();
    let after = 0;
    for (let i = 1; i <= 50; i++) {
      const m = await send(a.url, room, `n${i}`);
      const res = await poll(b.url, room, { after, timeout: 10 });
      expect(res.body.messages).toEqual([m]);
      after = res.body.last;
    }
  });

  it('take a new epoch from npm run new-epoch for rooms on every master: parked and new polls reset', async () => {
    const rooms: string[] = [];
    const masters = new Set<number>();
    while (masters.size < 3) {
      rooms.push(newRoom('epoch'));
      masters.add(await cluster.masterOf(roomKeys('multi:', rooms.at(-1)!).meta));
    }
    for (const room of rooms) await send(a.url, room, 'before');
    const old = (await poll(b.url, rooms[0]!)).body.epoch;
    const held = poll(b.url, rooms[1]!, { after: 1, epoch: old, timeout: 20 });
    await waitParked(b.url, 1);
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/new-epoch.ts', ...storeArgs()], { cwd: ROOT, encoding: 'utf8', timeout: 25_000 });
    expect(run.status, run.stderr).toBe(0);
    const epoch = /^new epoch (\S+) in Redis Cluster at /.exec(run.stdout)?.[1];
    expect(epoch).toBeDefined();
    expect((await held).body).toMatchObject({ reset: true, epoch });
    for (const room of rooms) expect((await poll(a.url, room, { after: 1, epoch: old })).body).toMatchObject({ reset: true, epoch });
  });
});
