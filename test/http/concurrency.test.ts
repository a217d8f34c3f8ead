// Many posters and a follower at once: seqs without gap or repeat, a follower
// that sees every message once and in order, and no lost wake-up, also
// between two server instances that share one store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/core/memory-store.js';
import { DEFAULTS } from '../../src/config.js';
import { startTestServer } from '../helpers/server.js';
import { follow, newRoom, poll, post, range, send, waitParked, type Message, type TestServer, useServer } from './util.js';

const server = useServer();

describe('50 posters and a follower in one room', () => {
  it('assign seqs 1..1000 exactly once, and the follower sees each once, in order', async () => {
    const room = newRoom('busy');
    const POSTERS = 50;
    const EACH = 20;
    const TOTAL = POSTERS * EACH;

    const join = await poll(server.base, room);
    expect(join.body.last).toBe(0);
    const following = follow(server.base, room, TOTAL, { epoch: join.body.epoch, last: join.body.last });

    const statuses: number[] = [];
    const posted = await Promise.all(
      range(1, POSTERS).map(async (p) => {
        const mine: Message[] = [];
        for (let i = 1; i <= EACH; i++) {
          const res = await post(server.base, room, { author: `poster-${p}`, text: `p${p} m${i}` });
          statuses.push(res.status);
          if (res.status === 201) mine.push(res.body.message);
        }
        return mine;
      }),
    );

    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    const all = posted.flat();
    expect(all.map((m) => m.seq).sort((a, b) => a - b)).toEqual(range(1, TOTAL));
    // One poster's messages, sent one after the other, are in its order.
    for (const mine of posted) {
      const seqs = mine.map((m) => m.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }

    const seen = await following;
    expect(seen.map((m) => m.seq)).toEqual(range(1, TOTAL));
    const bySeq = new Map(all.map((m) => [m.seq, m]));
    for (const m of seen) expect(m).toEqual(bySeq.get(m.seq));
  });
});

describe('no lost wake-up', () => {
  it('a poll that starts after a POST was answered sees that message', async () => {
    const room = newRoom();
    let after = 0;
    for (let i = 1; i <= 50; i++) {
      const m = await send(server.base, room, `n${i}`);
      const res = await poll(server.base, room, { after, timeout: 5 });
      expect(res.body.messages).toEqual([m]);
      expect(res.body.last).toBe(m.seq);
      after = res.body.last;
    }
  });

  it('a poll racing a POST gets the message, whichever arrives first', async () => {
    const room = newRoom();
    for (let i = 1; i <= 50; i++) {
      const [res, m] = await Promise.all([poll(server.base, room, { after: i - 1, timeout: 5 }), send(server.base, room, `r${i}`)]);
      expect(res.body.messages).toEqual([m]);
    }
  });
});

describe('two server instances sharing one store', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const store = new MemoryStore({ retention: DEFAULTS.retention, maxRooms: DEFAULTS.maxRooms });
    a = await startTestServer({}, { store });
    b = await startTestServer({}, { store });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('a poll on one instance that starts after a POST to the other was answered sees it', async () => {
    const room = newRoom();
    let after = 0;
    for (let i = 1; i <= 20; i++) {
      const m = await send(a.baseUrl, room, `x${i}`);
      const res = await poll(b.baseUrl, room, { after, timeout: 5 });
      expect(res.body.messages).toEqual([m]);
      after = res.body.last;
    }
  });

  it('a poll parked on one instance is woken by a POST to the other', async () => {
    const room = newRoom();
    const held = poll(b.baseUrl, room, { after: 0, timeout: 10 });
    await waitParked(b.baseUrl, 1);
    const m = await send(a.baseUrl, room, 'across');
    expect((await held).body.messages).toEqual([m]);
  });
});
