// POST /api/sync on a real server (protocol "One poll for many rooms"): one
// answer for many rooms with a v1 verdict each, held until any room has
// something, one held sync per client, and bad bodies refused whole.
import { describe, expect, it } from 'vitest';
import {
  bearer,
  expectError,
  expectRetryAfter,
  getAs,
  metricsText,
  metricValue,
  newRoom,
  parkedPolls,
  postAs,
  rawGet,
  rawRequest,
  request,
  sendMany,
  signIn,
  track,
  useServer,
  waitParked,
  type Res,
} from './util.js';

const server = useServer({ retention: 3, syncMaxRooms: 5, maxTimeout: 2 });

interface User {
  id: string;
  name: string;
}

interface RoomEntry {
  epoch: string;
  messages: { text: string; seq: number }[];
  last: number;
  more: boolean;
  reset?: true;
  gap?: true;
  state?: string;
  online?: User[];
  onlineCount?: number;
  typing?: User[];
}

interface SyncBody {
  rooms: Record<string, RoomEntry | { error: { code: string } }>;
  timeout?: number;
  superseded?: true;
}

const sync = (body: unknown, token?: string): Promise<Res<SyncBody>> => postAs<SyncBody>(server.base, '/api/sync', token, body);

/** A typing form, as a page without scripts (or sendBeacon) sends it. */
const typingForm = (room: string, token: string, form: string): Promise<Res<unknown>> =>
  request(server.base, `/api/rooms/${room}/typing`, { method: 'POST', headers: { ...bearer(token), 'Content-Type': 'application/x-www-form-urlencoded' }, body: form });

/**
 * Cursors at the head of `rooms`, with the state of their lists as `token`'s
 * user sees them (they themselves online once their sync was read), so that a
 * sync with them is held until something happens.
 */
async function settled(rooms: string[], token?: string): Promise<Record<string, { after: number; epoch: string; state: string }>> {
  const cursors = Object.fromEntries(rooms.map((room) => [room, {}]));
  // The first read marks the user online, which the second one's lists include.
  await sync({ rooms: cursors }, token);
  const res = await sync({ rooms: cursors }, token);
  return Object.fromEntries(
    Object.entries(res.body.rooms).map(([room, entry]) => {
      const { last, epoch, state } = entry as RoomEntry;
      return [room, { after: last, epoch, state: state! }];
    }),
  );
}

describe('POST /api/sync', () => {
  it('answers at once with a reset in one room, a gap in another, not_found in a third, and leaves quiet rooms out', async () => {
    const [reset, gap, quiet] = [newRoom('reset'), newRoom('gap'), newRoom('quiet')];
    await sendMany(server.base, reset, 2);
    await sendMany(server.base, gap, 6); // retention 3: seqs 4-6 kept
    const { [quiet]: quietCursor } = await settled([quiet]);
    const { epoch } = quietCursor!;
    const res = await sync({
      rooms: { [reset]: { after: 1, epoch: 'from-another-life' }, [gap]: { after: 1, epoch }, [quiet]: quietCursor, p_secret: {} },
      timeout: 1,
    });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body.rooms).sort()).toEqual([gap, 'p_secret', reset].sort());
    expect(res.body.rooms[reset]).toMatchObject({ reset: true, last: 2 });
    expect((res.body.rooms[reset] as { messages: unknown[] }).messages).toHaveLength(2);
    expect(res.body.rooms[gap]).toMatchObject({ gap: true, last: 6 });
    expect((res.body.rooms[gap] as { messages: { seq: number }[] }).messages.map((m) => m.seq)).toEqual([4, 5, 6]);
    expect(res.body.rooms.p_secret).toEqual({ error: { code: 'not_found', message: 'no such room' } });
    expect(res.body.rooms[reset]).not.toHaveProperty('room');
    expect(res.body.timeout).toBe(1);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('holds until a message arrives in any of its rooms, then answers that room', async () => {
    const rooms = [newRoom(), newRoom(), newRoom()];
    const before = await parkedPolls(server.base);
    const held = track(sync({ rooms: await settled(rooms), timeout: 2 }));
    await waitParked(server.base, before + 1);
    const metrics = await metricsText(server.base);
    expect(metricValue(metrics, 'chat_syncs_held')).toBe(1);
    expect(metricValue(metrics, 'chat_sync_rooms_count')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'chat_sync_rooms_bucket', 'le="2"')).toBeLessThan(metricValue(metrics, 'chat_sync_rooms_bucket', 'le="5"')!);
    await sendMany(server.base, rooms[1]!, 1);
    const res = await held.promise;
    expect(Object.keys(res.body.rooms)).toEqual([rooms[1]]);
    expect(await parkedPolls(server.base)).toBe(before);
    expect(metricValue(await metricsText(server.base), 'chat_syncs_held')).toBe(0);
  });

  it('answers an empty one when the hold (clamped to the server\'s maximum) runs out, and says the hold it applied', async () => {
    const res = await sync({ rooms: await settled([newRoom()]), timeout: 30 });
    expect(res.body).toEqual({ rooms: {}, timeout: 2 });
  });

  it('keeps one held sync per client: a newer one supersedes it, an older seq is superseded at once', async () => {
    const room = newRoom();
    const rooms = await settled([room]);
    const before = await parkedPolls(server.base);
    const first = track(sync({ rooms, client: 'tab-1', seq: 5 }));
    await waitParked(server.base, before + 1);
    const second = track(sync({ rooms, client: 'tab-1', seq: 6 }));
    expect((await first.promise).body).toEqual({ rooms: {}, superseded: true });
    expect((await sync({ rooms, client: 'tab-1', seq: 4 })).body).toEqual({ rooms: {}, superseded: true });
    await sendMany(server.base, room, 1);
    expect(Object.keys((await second.promise).body.rooms)).toEqual([room]);
    expect(await parkedPolls(server.base)).toBe(before);
  });

  it('ends a removed member\'s held sync at once, with not_found for that room, and shows them online there no more', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = (await postAs<{ room: string }>(server.base, '/api/rooms', ann.token, {})).body;
    await postAs(server.base, `/api/rooms/${room}/members`, ann.token, { userId: bob.user.id });
    const before = await parkedPolls(server.base);
    const held = track(sync({ rooms: await settled([room, newRoom()], bob.token) }, bob.token));
    await waitParked(server.base, before + 1);
    await postAs(server.base, `/api/rooms/${room}/members/remove`, ann.token, { userId: bob.user.id });
    const res = await held.promise;
    expect(res.body.rooms[room]).toEqual({ error: { code: 'not_found', message: 'no such room' } });
    expect(await parkedPolls(server.base)).toBe(before);
    // And no longer shown online there, though his last sync ended just now.
    const seen = (await sync({ rooms: { [room]: {} } }, ann.token)).body.rooms[room] as RoomEntry;
    expect(seen.online).toEqual([ann.user]);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past the grace after which an idle user's end time is written
    expect(((await sync({ rooms: { [room]: {} } }, ann.token)).body.rooms[room] as RoomEntry).online).toEqual([ann.user]);
  });

  it.each<[string, unknown, string]>([
    ['no rooms', { rooms: {} }, 'invalid_body'],
    ['rooms not an object', { rooms: ['a'] }, 'invalid_body'],
    ['more rooms than the maximum', { rooms: Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((r) => [r, {}])) }, 'too_many_rooms'],
    ['a bad room name', { rooms: { 'no spaces': {} } }, 'invalid_room'],
    ['a cursor that is not an object', { rooms: { a: 3 } }, 'invalid_body'],
    ['a negative after', { rooms: { a: { after: -1 } } }, 'invalid_parameter'],
    ['a fractional after', { rooms: { a: { after: 1.5 } } }, 'invalid_parameter'],
    ['an after past 2^53-1', { rooms: { a: { after: 2 ** 53 } } }, 'invalid_parameter'],
    ['an after as a string', { rooms: { a: { after: '3' } } }, 'invalid_parameter'],
    ['an empty epoch', { rooms: { a: { after: 0, epoch: '' } } }, 'invalid_parameter'],
    ['a state that is not a string', { rooms: { a: { after: 0, state: 7 } } }, 'invalid_parameter'],
    ['a state too long', { rooms: { a: { after: 0, state: 'x'.repeat(200) } } }, 'invalid_parameter'],
    ['a timeout as a string', { rooms: { a: {} }, timeout: '25' }, 'invalid_parameter'],
    ['a negative timeout', { rooms: { a: {} }, timeout: -1 }, 'invalid_parameter'],
    ['a limit of 0', { rooms: { a: {} }, limit: 0 }, 'invalid_parameter'],
    ['a client of the wrong shape', { rooms: { a: {} }, client: 'a b', seq: 1 }, 'invalid_body'],
    ['a negative seq', { rooms: { a: {} }, client: 'c', seq: -1 }, 'invalid_body'],
    ['a huge seq', { rooms: { a: {} }, client: 'c', seq: 1e300 }, 'invalid_body'],
    ['a seq without a client', { rooms: { a: {} }, seq: 1 }, 'invalid_body'],
    ['a body that is a list', [], 'invalid_body'],
  ])('refuses %s with 400, holding nothing', async (_what, body, code) => {
    const before = await parkedPolls(server.base);
    expectError(await sync(body), 400, code);
    expect(await parkedPolls(server.base)).toBe(before);
  });

  describe('presence and typing', () => {
    it('lists who is online in a room (signed-in syncs and polls; anonymous readers not), with its state, once per change', async () => {
      const room = newRoom('presence');
      const ann = await signIn(server.base, 'Ann');
      const bob = await signIn(server.base, 'Bob');
      const first = await sync({ rooms: { [room]: {} } }, ann.token);
      expect(first.body.rooms[room]).toMatchObject({ messages: [], online: [ann.user], onlineCount: 1, typing: [] });
      // Anonymous readers are not counted.
      await sync({ rooms: { [room]: {} }, timeout: 0 });
      const cursors = await settled([room], ann.token);
      const before = await parkedPolls(server.base);
      const held = track(sync({ rooms: cursors }, ann.token));
      await waitParked(server.base, before + 1);
      // bob's plain v1 poll makes him online too.
      const bobPoll = track(getAs(server.base, `/api/rooms/${room}/messages?after=0&timeout=2`, bob.token));
      const res = await held.promise;
      const entry = res.body.rooms[room] as RoomEntry;
      const online = [ann.user, bob.user].sort((x, y) => (x.id < y.id ? -1 : 1));
      expect(entry).toMatchObject({ messages: [], last: cursors[room]!.after, online, onlineCount: 2, typing: [] });
      expect(entry.state).not.toBe(cursors[room]!.state);
      await bobPoll.promise;
    });

    it('shows typing, ended by a post, and carries the message and the change in one answer', async () => {
      const room = newRoom('typing');
      const ann = await signIn(server.base, 'Ann');
      const bob = await signIn(server.base, 'Bob');
      await postAs(server.base, `/api/rooms/${room}/messages`, bob.token, { text: 'warming up' });
      expect((await postAs(server.base, `/api/rooms/${room}/typing`, bob.token, { typing: true })).status).toBe(204);
      const typing = (await sync({ rooms: { [room]: {} } }, ann.token)).body.rooms[room] as RoomEntry;
      expect(typing.typing).toEqual([bob.user]);

      const cursors = await settled([room], ann.token);
      const before = await parkedPolls(server.base);
      const held = track(sync({ rooms: cursors }, ann.token));
      await waitParked(server.base, before + 1);
      await postAs(server.base, `/api/rooms/${room}/messages`, bob.token, { text: 'done typing' });
      const entry = (await held.promise).body.rooms[room] as RoomEntry;
      expect(entry.messages.map((m) => m.text)).toEqual(['done typing']);
      expect(entry.typing).toEqual([]);

      expect((await postAs(server.base, `/api/rooms/${room}/typing`, bob.token, { typing: true })).status).toBe(204);
      expect((await typingForm(room, bob.token, 'typing=false')).status).toBe(204);
      expect(((await sync({ rooms: { [room]: {} } }, ann.token)).body.rooms[room] as RoomEntry).typing).toEqual([]);
    });

    it('refuses typing without a token, in a room the user may not read, or with a bad body, changing no presence', async () => {
      const room = newRoom('typing-bad');
      const ann = await signIn(server.base, 'Ann');
      const mallory = await signIn(server.base, 'Mallory');
      const { room: secret } = (await postAs<{ room: string }>(server.base, '/api/rooms', ann.token, {})).body;
      const before = await parkedPolls(server.base);
      expectError(await postAs(server.base, `/api/rooms/${room}/typing`, undefined, { typing: true }), 401, 'unauthenticated');
      expectError(await postAs(server.base, `/api/rooms/${secret}/typing`, mallory.token, { typing: true }), 404, 'not_found');
      expectError(await postAs(server.base, `/api/rooms/p_nonesuch/typing`, mallory.token, { typing: true }), 404, 'not_found');
      for (const body of [{}, { typing: 'yes' }, { typing: 1 }, [true]]) {
        expectError(await postAs(server.base, `/api/rooms/${room}/typing`, mallory.token, body), 400, 'invalid_body');
      }
      expectError(await typingForm(room, mallory.token, 'typing=maybe'), 400, 'invalid_body');
      expectError(await postAs(server.base, `/api/rooms/bad%20name/typing`, mallory.token, { typing: true }), 400, 'invalid_room');
      expect((await fetch(`${server.base}/api/rooms/${room}/typing`)).status).toBe(405);
      expect(await parkedPolls(server.base)).toBe(before);
      const seen = (await sync({ rooms: { [room]: {}, [secret]: {} } }, ann.token)).body.rooms;
      expect(seen[room]).toMatchObject({ typing: [], online: [ann.user] });
      expect(seen[secret]).toMatchObject({ typing: [], online: [ann.user] });
    });

    it('limits typing notices per user: the 11th within 10 s is 429 rate_limited, and others may still type', async () => {
      const room = newRoom('typing-spam');
      const dan = await signIn(server.base, 'Dan');
      const eve = await signIn(server.base, 'Eve');
      for (let i = 0; i < 10; i++) expect((await postAs(server.base, `/api/rooms/${room}/typing`, dan.token, { typing: i % 2 === 0 })).status).toBe(204);
      const refused = await postAs(server.base, `/api/rooms/${room}/typing`, dan.token, { typing: true });
      expectError(refused, 429, 'rate_limited');
      expectRetryAfter(refused.headers.get('retry-after'));
      expect((await postAs(server.base, `/api/rooms/${room}/typing`, eve.token, { typing: true })).status).toBe(204);
      // The refused notice changed nothing: dan's last one said he stopped.
      expect(((await sync({ rooms: { [room]: {} } }, eve.token)).body.rooms[room] as RoomEntry).typing).toEqual([eve.user]);
    });

    it('says how many users are online on the instance in its metrics', async () => {
      const cy = await signIn(server.base, 'Cy');
      const before = metricValue(await metricsText(server.base), 'chat_users_online')!;
      await sync({ rooms: { [newRoom()]: {} } }, cy.token);
      expect(metricValue(await metricsText(server.base), 'chat_users_online')).toBe(before + 1);
    });
  });

  it('counts, by how long they were held, the polls and syncs whose clients went away before the answer, and no others', async () => {
    const abandoned = async () => metricValue(await metricsText(server.base), 'chat_poll_abandoned_seconds_count') ?? 0;
    const before = await abandoned();
    const parked = await parkedPolls(server.base);
    const room = newRoom();
    const poll = rawGet(server.base, `/api/rooms/${room}/messages?after=0&timeout=2`);
    const body = JSON.stringify({ rooms: await settled([room]), timeout: 2 });
    const held = rawRequest(server.base, '/api/sync', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
    held.req.end(body);
    await waitParked(server.base, parked + 2);
    poll.req.destroy();
    held.req.destroy();
    await waitParked(server.base, parked);
    await expect.poll(abandoned).toBe(before + 2);
    // Answered ones are not given up, however their connections end.
    await sync({ rooms: await settled([room]), timeout: 0.2 });
    expect((await request(server.base, `/api/rooms/${room}/messages?after=0&timeout=0.2`)).status).toBe(200);
    expect(await abandoned()).toBe(before + 2);
    // Every one of the ones given up was observed at the time it had been held, past the instant it parked.
    expect(metricValue(await metricsText(server.base), 'chat_poll_abandoned_seconds_sum')).toBeGreaterThan(0);
  });

  it('answers only POST', async () => {
    const res = await postAs(server.base, '/api/sync', undefined);
    expectError(res, 415);
    const get = await fetch(`${server.base}/api/sync`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});
