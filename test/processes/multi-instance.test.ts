// Two real server processes sharing one Redis, as behind a load balancer with
// no sticky sessions: any instance answers any poll, and a post on one wakes
// polls on the other.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/processes.js';
import { follow, newRoom, poll, post, range, send, waitParked, type Message } from '../http/util.js';

const env = inject('redis');

describe.skipIf(env.skip)('two server processes on one Redis', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    const args = ['--store', 'redis', '--redis-url', env.url, '--redis-prefix', `${env.prefix}multi:`];
    [a, b] = await Promise.all([startServerProcess(args), startServerProcess(args)]);
  });
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
  });

  it('carry 1,000 messages from posters on both to followers on both, each exactly once and in order', async () => {
    const room = newRoom('multi');
    const POSTERS = 10;
    const EACH = 100;
    const TOTAL = POSTERS * EACH;

    const [joinA, joinB] = await Promise.all([poll(a.url, room), poll(b.url, room)]);
    expect(joinB.body.epoch).toBe(joinA.body.epoch);
    const joined = { epoch: joinA.body.epoch, last: 0 };
    const followers = [a, a, b, b].map((server) => follow(server.url, room, TOTAL, joined));

    const statuses: number[] = [];
    const posted = await Promise.all(
      range(1, POSTERS).map(async (p) => {
        const server = p % 2 === 0 ? a : b;
        const mine: Message[] = [];
        for (let i = 1; i <= EACH; i++) {
          const res = await post(server.url, room, { author: `poster-${p}`, text: `p${p} m${i}`, clientMsgId: `p${p}-${i}` });
          statuses.push(res.status);
          if (res.status === 201) mine.push(res.body.message);
        }
        return mine;
      }),
    );

    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    const all = posted.flat().sort((x, y) => x.seq - y.seq);
    expect(all.map((m) => m.seq)).toEqual(range(1, TOTAL));
    for (const seen of await Promise.all(followers)) expect(seen).toEqual(all);
  });

  it('wake a poll parked on one with a post to the other', async () => {
    const room = newRoom();
    const held = poll(b.url, room, { after: 0, timeout: 20 });
    await waitParked(b.url, 1);
    const m = await send(a.url, room, 'across');
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.body.messages).toEqual([m]);
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
});
