// The long poll (GET /api/rooms/:room/messages) against a real server: holding
// and waking, timeouts, joining, limit/more, history pages, reset and gap.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import {
  metricValue,
  metricsText,
  newRoom,
  parkedPolls,
  poll,
  roomInfo,
  send,
  sendMany,
  track,
  waitParked,
  type PollBody,
  type TestServer,
  useServer,
} from './util.js';

const server = useServer();

const seqs = (body: PollBody): number[] => body.messages.map((m) => m.seq);

describe('a poll at the head', () => {
  it('is held until a message posted on another connection wakes it', async () => {
    const room = newRoom();
    await send(server.base, room, 'first');
    const held = track(poll(server.base, room, { after: 1, timeout: 20 }));

    await sleep(300);
    expect(held.settled()).toBe(false);
    await waitParked(server.base, 1);
    expect(await parkedPolls(server.base)).toBe(1);

    const posted = await send(server.base, room, 'wake up');
    const res = await held.promise;
    expect(res.status).toBe(200);
    expect(res.body.messages).toEqual([posted]);
    expect(res.body.last).toBe(posted.seq);
    expect(res.body.last).toBe(2);
    expect(res.body.more).toBe(false);
    expect(res.body.room).toBe(room);
    expect(res.body.reset).toBeUndefined();
    expect(res.body.gap).toBeUndefined();
    await waitParked(server.base, 0);
  });

  it('times out with no messages, last = after, more false', async () => {
    const room = newRoom();
    await sendMany(server.base, room, 2);
    const res = await poll(server.base, room, { after: 2, timeout: 0.2 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ room, epoch: (await roomInfo(server.base, room)).epoch, messages: [], last: 2, more: false });
  });

  it('times out in a room that has no messages, without creating it', async () => {
    const room = newRoom();
    const res = await poll(server.base, room, { after: 0, timeout: 0.2 });
    expect(res.status).toBe(200);
    expect(res.body.messages).toEqual([]);
    expect(res.body.last).toBe(0);
    expect(res.body.more).toBe(false);
    const info = await roomInfo(server.base, room);
    expect(info.head).toBe(0);
    expect(info.oldest).toBe(0);
  });

  it('answers at once with timeout=0', async () => {
    const room = newRoom();
    await send(server.base, room, 'x');
    const res = await poll(server.base, room, { after: 1, timeout: 0 });
    expect(res.status).toBe(200);
    expect(res.body.messages).toEqual([]);
    expect(res.body.last).toBe(1);
  });

  it('answers at once when messages after the cursor exist', async () => {
    const room = newRoom();
    const sent = await sendMany(server.base, room, 3);
    const res = await poll(server.base, room, { after: 1, timeout: 20 });
    expect(res.status).toBe(200);
    expect(res.body.messages).toEqual(sent.slice(1));
    expect(res.body.last).toBe(3);
    expect(res.body.more).toBe(false);
  });

  it('ignores unknown query parameters such as a cache buster', async () => {
    const room = newRoom();
    await send(server.base, room, 'x');
    const held = await poll(server.base, room, { after: 1, timeout: 0.2, t: 123 });
    expect(held.status).toBe(200);
    expect(held.body.last).toBe(1);
    const join = await poll(server.base, room, { t: 124, foo: 'bar' });
    expect(join.status).toBe(200);
    expect(seqs(join.body)).toEqual([1]);
  });
});

describe('timeout clamping', () => {
  let short: TestServer;
  beforeAll(async () => {
    short = await startTestServer({ maxTimeout: 0.5 });
  });
  afterAll(async () => {
    await short?.close();
  });

  it('answers a poll asking for more than the maximum instead of holding it', { timeout: 10_000 }, async () => {
    const room = newRoom();
    const res = await poll(short.baseUrl, room, { after: 0, timeout: 30 });
    expect(res.status).toBe(200);
    expect(res.body.messages).toEqual([]);
    expect(res.body.last).toBe(0);
  });
});

describe('join (no after)', () => {
  it('answers an empty room with no messages and last 0', async () => {
    const room = newRoom();
    const res = await poll(server.base, room);
    expect(res.status).toBe(200);
    expect(res.body.room).toBe(room);
    expect(res.body.messages).toEqual([]);
    expect(res.body.last).toBe(0);
    expect(res.body.more).toBe(false);
    expect(typeof res.body.epoch).toBe('string');
    expect(res.body.epoch).not.toBe('');
  });

  it('answers the tail at once, with last = head', async () => {
    const room = newRoom();
    const sent = await sendMany(server.base, room, 5);
    const all = await poll(server.base, room);
    expect(all.body.messages).toEqual(sent);
    expect(all.body.last).toBe(5);
    expect(all.body.more).toBe(false);

    const tail = await poll(server.base, room, { limit: 2 });
    expect(seqs(tail.body)).toEqual([4, 5]);
    expect(tail.body.last).toBe(5);
    expect(tail.body.more).toBe(false);
    expect(tail.body.epoch).toBe((await roomInfo(server.base, room)).epoch);
  });

  it('hands out an epoch in an empty room that stays valid after its first message', async () => {
    const room = newRoom();
    const join = await poll(server.base, room);
    const first = await send(server.base, room, 'first');
    const res = await poll(server.base, room, { after: join.body.last, epoch: join.body.epoch, timeout: 5 });
    expect(res.body.reset).toBeUndefined();
    expect(res.body.messages).toEqual([first]);
    expect(res.body.epoch).toBe(join.body.epoch);
  });
});

describe('limit and more', () => {
  it('pages forward with more until the head', async () => {
    const room = newRoom();
    await sendMany(server.base, room, 5);
    const pages: number[][] = [];
    const mores: boolean[] = [];
    let after = 0;
    for (let i = 0; i < 10; i++) {
      const res = await poll(server.base, room, { after, limit: 2, timeout: 0 });
      expect(res.status).toBe(200);
      pages.push(seqs(res.body));
      mores.push(res.body.more);
      expect(res.body.last).toBe(res.body.messages.at(-1)?.seq ?? after);
      after = res.body.last;
      if (!res.body.more) break;
    }
    expect(pages).toEqual([[1, 2], [3, 4], [5]]);
    expect(mores).toEqual([true, true, false]);
  });

  it('applies to a woken poll', async () => {
    const room = newRoom();
    const held = poll(server.base, room, { after: 0, limit: 1, timeout: 20 });
    await waitParked(server.base, 1);
    // Whether the answer is made before or after the second message is
    // stored, it holds at most one message, and the next poll gets the other.
    await Promise.all([send(server.base, room, 'a'), send(server.base, room, 'b')]);
    const res = await held;
    expect(res.body.messages).toHaveLength(1);
    expect(res.body.messages[0]!.seq).toBe(1);
    expect(res.body.last).toBe(1);
    const next = await poll(server.base, room, { after: 1, timeout: 5 });
    expect(seqs(next.body)).toEqual([2]);
    expect(next.body.more).toBe(false);
  });
});

describe('before (history pages)', () => {
  it('pages backwards, oldest first, with more saying older messages exist', async () => {
    const room = newRoom();
    await sendMany(server.base, room, 5);
    const page = async (before: number) => (await poll(server.base, room, { before, limit: 2 })).body;

    const p1 = await page(6);
    expect(seqs(p1)).toEqual([4, 5]);
    expect(p1.more).toBe(true);
    expect(p1.last).toBe(5);

    const p2 = await page(4);
    expect(seqs(p2)).toEqual([2, 3]);
    expect(p2.more).toBe(true);
    expect(p2.last).toBe(3);

    const p3 = await page(2);
    expect(seqs(p3)).toEqual([1]);
    expect(p3.more).toBe(false);
    expect(p3.last).toBe(1);

    const p4 = await page(1);
    expect(p4.messages).toEqual([]);
    expect(p4.more).toBe(false);
    expect(p4.last).toBe(0);
  });

  it('answers an empty room with nothing and last 0', async () => {
    const res = await poll(server.base, newRoom(), { before: 10 });
    expect(res.status).toBe(200);
    expect(res.body.messages).toEqual([]);
    expect(res.body.last).toBe(0);
    expect(res.body.more).toBe(false);
  });
});

describe('reset', () => {
  it('answers the tail with reset when the epoch differs', async () => {
    const room = newRoom();
    const sent = await sendMany(server.base, room, 3);
    const res = await poll(server.base, room, { after: 2, epoch: 'not-this-epoch', timeout: 5 });
    expect(res.status).toBe(200);
    expect(res.body.reset).toBe(true);
    expect(res.body.messages).toEqual(sent);
    expect(res.body.last).toBe(3);
    expect(res.body.epoch).toBe((await roomInfo(server.base, room)).epoch);
  });

  it('is not held when the cursor is at the head of another epoch', async () => {
    const room = newRoom();
    await sendMany(server.base, room, 3);
    const res = await poll(server.base, room, { after: 3, epoch: 'old-epoch', timeout: 5 });
    expect(res.body.reset).toBe(true);
    expect(seqs(res.body)).toEqual([1, 2, 3]);
  });

  it('obeys limit', async () => {
    const room = newRoom();
    await sendMany(server.base, room, 3);
    const res = await poll(server.base, room, { after: 1, epoch: 'old-epoch', limit: 2, timeout: 5 });
    expect(res.body.reset).toBe(true);
    expect(seqs(res.body)).toEqual([2, 3]);
    expect(res.body.last).toBe(3);
  });

  it('answers the tail with reset when after is beyond the head', async () => {
    const room = newRoom();
    await sendMany(server.base, room, 3);
    const res = await poll(server.base, room, { after: 10, timeout: 5 });
    expect(res.body.reset).toBe(true);
    expect(seqs(res.body)).toEqual([1, 2, 3]);
    expect(res.body.last).toBe(3);

    const empty = await poll(server.base, newRoom(), { after: 5, timeout: 5 });
    expect(empty.body.reset).toBe(true);
    expect(empty.body.messages).toEqual([]);
    expect(empty.body.last).toBe(0);
  });

  it('is absent from ordinary answers', async () => {
    const room = newRoom();
    await sendMany(server.base, room, 2);
    const info = await roomInfo(server.base, room);
    const res = await poll(server.base, room, { after: 1, epoch: info.epoch });
    expect(Object.keys(res.body)).toEqual(['room', 'epoch', 'messages', 'last', 'more']);
  });
});

describe('gap', () => {
  let small: TestServer;
  const room = newRoom('gap');
  beforeAll(async () => {
    small = await startTestServer({ retention: 3 });
    await sendMany(small.baseUrl, room, 6);
  });
  afterAll(async () => {
    await small?.close();
  });

  it('keeps only the retained window', async () => {
    const info = await roomInfo(small.baseUrl, room);
    expect(info.head).toBe(6);
    expect(info.oldest).toBe(4);
  });

  it.each([0, 2])('flags a gap for after=%i, older than the retained window', async (after) => {
    const res = await poll(small.baseUrl, room, { after, timeout: 0 });
    expect(res.body.gap).toBe(true);
    expect(res.body.reset).toBeUndefined();
    expect(seqs(res.body)).toEqual([4, 5, 6]);
    expect(res.body.last).toBe(6);
    expect(res.body.more).toBe(false);
  });

  it('has no gap when after is just before the oldest retained message', async () => {
    const res = await poll(small.baseUrl, room, { after: 3, timeout: 0 });
    expect(res.body.gap).toBeUndefined();
    expect(seqs(res.body)).toEqual([4, 5, 6]);
  });

  it('counts gap answers in the metrics', async () => {
    const before = metricValue(await metricsText(small.baseUrl), 'chat_poll_answers_total', 'outcome="gap"') ?? NaN;
    await poll(small.baseUrl, room, { after: 1, timeout: 0 });
    const after = metricValue(await metricsText(small.baseUrl), 'chat_poll_answers_total', 'outcome="gap"') ?? NaN;
    expect(after).toBe(before + 1);
  });

  it('obeys limit and says more', async () => {
    const res = await poll(small.baseUrl, room, { after: 0, limit: 1, timeout: 0 });
    expect(res.body.gap).toBe(true);
    expect(seqs(res.body)).toEqual([4]);
    expect(res.body.more).toBe(true);
  });
});

describe('a room forgotten by the store and started again', () => {
  // maxRooms 1: posting to another room forgets this one, as if deleted.
  let tiny: TestServer;
  beforeAll(async () => {
    tiny = await startTestServer({ maxRooms: 1 });
  });
  afterAll(async () => {
    await tiny?.close();
  });

  it('has a new epoch, and an old cursor gets reset', async () => {
    const room = newRoom();
    await sendMany(tiny.baseUrl, room, 3);
    const old = await roomInfo(tiny.baseUrl, room);
    await send(tiny.baseUrl, newRoom('other'), 'forgets the first room');
    const m = await send(tiny.baseUrl, room, 'new life');
    expect(m.seq).toBe(1);
    const info = await roomInfo(tiny.baseUrl, room);
    expect(info.epoch).not.toBe(old.epoch);

    const res = await poll(tiny.baseUrl, room, { after: 3, epoch: old.epoch, timeout: 0 });
    expect(res.body.reset).toBe(true);
    expect(res.body.messages).toEqual([m]);
    expect(res.body.last).toBe(1);
    expect(res.body.epoch).toBe(info.epoch);
  });

  it('answers a poll parked in the old life with a reset as soon as the room is forgotten', async () => {
    const room = newRoom();
    await sendMany(tiny.baseUrl, room, 3);
    const old = await roomInfo(tiny.baseUrl, room);
    const held = poll(tiny.baseUrl, room, { after: 3, epoch: old.epoch, timeout: 10 });
    await waitParked(tiny.baseUrl, 1);

    await send(tiny.baseUrl, newRoom('other'), 'forgets the first room');
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ reset: true, messages: [], last: 0 });
    const fresh = await roomInfo(tiny.baseUrl, room);
    expect(res.body.epoch).toBe(fresh.epoch);
    expect(fresh.epoch).not.toBe(old.epoch);

    // The client follows on from the reset cursor into the room's new life.
    const next = poll(tiny.baseUrl, room, { after: 0, epoch: res.body.epoch, timeout: 10 });
    await waitParked(tiny.baseUrl, 1);
    const m = await send(tiny.baseUrl, room, 'new life');
    expect((await next).body.messages).toEqual([m]);
  });
});
