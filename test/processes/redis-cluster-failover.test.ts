// A master of the Redis Cluster killed (SIGKILL) under two running server
// processes, with a writer posting to a room on that master as a careful
// client does (retrying a 503 with the same clientMsgId) and followers
// polling it on both: its replica takes over, the killed node comes back as
// a replica, and no acknowledged message is lost or repeated. What the
// clients saw meanwhile is printed.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { roomKeys } from '../../src/stores/redis-store.js';
import { startServerProcess, type ServerProcess } from '../helpers/processes.js';
import { startRedisCluster, type RedisClusterProcess } from '../helpers/redis-cluster.js';
import { poll, post, waitParked, type Message } from '../http/util.js';

const env = inject('redis');
const PREFIX = 'failover:';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(env.skipCluster)('a Redis Cluster master killed under two server processes', () => {
  let cluster: RedisClusterProcess;
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    const args = ['--store', 'redis', '--redis-cluster', '--redis-url', cluster.url, '--redis-prefix', PREFIX];
    [a, b] = await Promise.all([startServerProcess(args), startServerProcess(args)]);
  });
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await cluster?.stop();
  });

  it('loses and repeats no acknowledged message, answers 503 meanwhile, and wakes a poll parked before it', async () => {
    const room = `failover-${process.pid}`;
    const master = await cluster.masterOf(roomKeys(PREFIX, room).meta);
    // Another room on the same master, with a poll parked on it through the failover.
    let quiet = '';
    for (let i = 0; !quiet; i++) if ((await cluster.masterOf(roomKeys(PREFIX, `quiet-${i}`).meta)) === master) quiet = `quiet-${i}`;

    const started = Date.now();
    let killedAt = 0;
    let stop = false;
    const writer = { acked: [] as Message[], refused: 0, failed: 0, retriedStored: 0, firstRefusal: 0, recoveredAt: 0 };
    const writing = (async () => {
      for (let i = 1; !stop; i++) {
        const body = { author: 'writer', text: `m${i}`, clientMsgId: `w-${i}` };
        for (let attempt = 0; ; attempt++) {
          const server = (i + attempt) % 2 === 0 ? a : b;
          const res = await post(server.url, room, body).catch(() => undefined);
          // 200: a retry of a post that was stored after all, answered with the original.
          if (res?.status === 201 || res?.status === 200) {
            if (res.status === 200) writer.retriedStored++;
            writer.acked.push(res.body.message);
            if (killedAt && !writer.recoveredAt) writer.recoveredAt = Date.now();
            break;
          }
          if (res?.status === 503) writer.refused++;
          else writer.failed++;
          writer.firstRefusal ||= Date.now();
          await sleep(100);
        }
        await sleep(20);
      }
    })();

    const readers = { refused: 0 };
    const follow = async (server: ServerProcess): Promise<Message[]> => {
      const seen: Message[] = [];
      let cursor: { epoch?: string; last: number } = { last: 0 };
      for (;;) {
        if (stop && writer.acked.length > 0 && cursor.last >= writer.acked.at(-1)!.seq) return seen;
        const res = await poll(server.url, room, { after: cursor.last, ...(cursor.epoch ? { epoch: cursor.epoch } : {}), timeout: 2 }).catch(() => undefined);
        if (res?.status !== 200) {
          readers.refused++;
          await sleep(100);
          continue;
        }
        expect(res.body.reset, 'no reset').toBeUndefined();
        expect(res.body.gap, 'no gap').toBeUndefined();
        seen.push(...res.body.messages);
        cursor = { epoch: res.body.epoch, last: res.body.last };
      }
    };
    const followers = [follow(a), follow(b)] as const;

    const parked = poll(b.url, quiet, { after: 0, timeout: 60 });
    await waitParked(b.url, 2);
    await sleep(1000);
    const ackedBefore = writer.acked.length;
    expect(ackedBefore).toBeGreaterThan(0);

    killedAt = Date.now();
    await cluster.kill(master);
    await cluster.waitHealthy({ key: roomKeys(PREFIX, room).meta, replicated: false, timeoutMs: 30_000 });
    const tookOverAt = Date.now();
    // As a supervisor would, once a replica has taken over: the node comes back empty and joins as a replica.
    await cluster.restart(master);
    await cluster.waitHealthy({ key: roomKeys(PREFIX, room).meta, timeoutMs: 30_000 });
    const rejoinedAt = Date.now();

    const news = await post(a.url, quiet, { author: 'writer', text: 'after the failover', clientMsgId: 'quiet-1' });
    const parkedAnswer = await parked;
    const wokenWith = parkedAnswer.status === 200 ? parkedAnswer.body.messages : [];
    // A poll parked after the failover, on the master that took over, is woken by a post to the other instance.
    const fresh = poll(b.url, quiet, { after: 1, timeout: 20 });
    await sleep(1000);
    const wakeSent = Date.now();
    const wake = await post(a.url, quiet, { author: 'writer', text: 'woken', clientMsgId: 'quiet-2' });
    const freshAnswer = await fresh;
    const wakeMs = Date.now() - wakeSent;

    await sleep(1000);
    stop = true;
    await writing;
    const [onA, onB] = await Promise.all(followers);

    const ids = (messages: Message[]): string[] => messages.map((m) => m.clientMsgId ?? '');
    const acked = ids(writer.acked);
    const lost = acked.filter((id) => !ids(onA).includes(id) || !ids(onB).includes(id));
    const repeated = [onA, onB].map((seen) => seen.length - new Set(ids(seen)).size);
    console.log(
      [
        `cluster failover, measured from the SIGKILL of the room's master:`,
        `  replica took over after ${tookOverAt - killedAt} ms; killed node back in sync as a replica after ${rejoinedAt - killedAt} ms`,
        `  writer: ${acked.length} posts acknowledged (${ackedBefore} before the kill), ${writer.refused} answers 503, ${writer.failed} failed requests, ${writer.retriedStored} retries answered with the original; ` +
          `first 201 after the kill ${writer.recoveredAt - killedAt} ms after it (first refusal ${writer.firstRefusal - killedAt} ms after it)`,
        `  followers: ${onA.length} and ${onB.length} messages read, ${lost.length} acknowledged ones missing, ${repeated.join(' and ')} repeated; ${readers.refused} polls answered other than 200`,
        `  poll parked before the kill: answered ${parkedAnswer.status}${parkedAnswer.status === 200 ? ` with ${wokenWith.length} message(s)` : ''}; ` +
          `a poll parked after it, on the new master, woken ${wakeMs} ms after a post to the other instance`,
        `  (${Date.now() - started} ms in all)`,
      ].join('\n'),
    );

    expect(news.status).toBe(201);
    expect(wake.status).toBe(201);
    expect(freshAnswer.body.messages.map((m) => m.text)).toEqual(['woken']);
    expect(wakeMs).toBeLessThan(5000);
    expect(writer.recoveredAt).toBeGreaterThan(0);
    expect(writer.acked.length).toBeGreaterThan(ackedBefore);
    for (const seen of [onA, onB]) expect(ids(seen)).toEqual(acked);
    expect(writer.acked.map((m) => m.seq)).toEqual(writer.acked.map((_, i) => i + 1));
    // Answered: with the news when it came after the failover, or with a 503 during it, after which a poll finds the news.
    if (parkedAnswer.status === 200) expect(wokenWith.map((m) => m.text)).toEqual(['after the failover']);
    else {
      expect(parkedAnswer.status).toBe(503);
      expect((await poll(b.url, quiet, { after: 0 })).body.messages.map((m) => m.text)).toEqual(['after the failover', 'woken']);
    }
  }, 180_000);
});
