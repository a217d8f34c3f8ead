// POST /api/sync on a real server (protocol "One poll for many rooms"): one
// answer for many rooms with a v1 verdict each, held until any room has
// something, one held sync per client, and bad bodies refused whole.
import { describe, expect, it } from 'vitest';
import {
  expectError,
  metricsText,
  metricValue,
  newRoom,
  parkedPolls,
  postAs,
  sendMany,
  signIn,
  track,
  useServer,
  waitParked,
  type Res,
} from './util.js';

const server = useServer({ retention: 3, syncMaxRooms: 5, maxTimeout: 2 });

interface SyncBody {
  rooms: Record<string, { epoch: string; messages: { text: string; seq: number }[]; last: number; more: boolean; reset?: true; gap?: true } | { error: { code: string } }>;
  timeout?: number;
  superseded?: true;
}

const sync = (body: unknown, token?: string): Promise<Res<SyncBody>> => postAs<SyncBody>(server.base, '/api/sync', token, body);

describe('POST /api/sync', () => {
  it('answers at once with a reset in one room, a gap in another, not_found in a third, and leaves quiet rooms out', async () => {
    const [reset, gap, quiet] = [newRoom('reset'), newRoom('gap'), newRoom('quiet')];
    await sendMany(server.base, reset, 2);
    await sendMany(server.base, gap, 6); // retention 3: seqs 4-6 kept
    const joined = await sync({ rooms: { [quiet]: {} } });
    const { epoch } = joined.body.rooms[quiet] as { epoch: string };
    const res = await sync({
      rooms: { [reset]: { after: 1, epoch: 'from-another-life' }, [gap]: { after: 1, epoch }, [quiet]: { after: 0, epoch }, p_secret: {} },
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
    const held = track(sync({ rooms: Object.fromEntries(rooms.map((r) => [r, { after: 0 }])), timeout: 2 }));
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
    const res = await sync({ rooms: { [newRoom()]: { after: 0 } }, timeout: 30 });
    expect(res.body).toEqual({ rooms: {}, timeout: 2 });
  });

  it('keeps one held sync per client: a newer one supersedes it, an older seq is superseded at once', async () => {
    const room = newRoom();
    const before = await parkedPolls(server.base);
    const first = track(sync({ rooms: { [room]: { after: 0 } }, client: 'tab-1', seq: 5 }));
    await waitParked(server.base, before + 1);
    const second = track(sync({ rooms: { [room]: { after: 0 } }, client: 'tab-1', seq: 6 }));
    expect((await first.promise).body).toEqual({ rooms: {}, superseded: true });
    expect((await sync({ rooms: { [room]: { after: 0 } }, client: 'tab-1', seq: 4 })).body).toEqual({ rooms: {}, superseded: true });
    await sendMany(server.base, room, 1);
    expect(Object.keys((await second.promise).body.rooms)).toEqual([room]);
    expect(await parkedPolls(server.base)).toBe(before);
  });

  it('ends a removed member\'s held sync at once, with not_found for that room', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = (await postAs<{ room: string }>(server.base, '/api/rooms', ann.token, {})).body;
    await postAs(server.base, `/api/rooms/${room}/members`, ann.token, { userId: bob.user.id });
    const before = await parkedPolls(server.base);
    const held = track(sync({ rooms: { [room]: { after: 0 }, [newRoom()]: { after: 0 } } }, bob.token));
    await waitParked(server.base, before + 1);
    await postAs(server.base, `/api/rooms/${room}/members/remove`, ann.token, { userId: bob.user.id });
    const res = await held.promise;
    expect(res.body.rooms[room]).toEqual({ error: { code: 'not_found', message: 'no such room' } });
    expect(await parkedPolls(server.base)).toBe(before);
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

  it('answers only POST', async () => {
    const res = await postAs(server.base, '/api/sync', undefined);
    expectError(res, 415);
    const get = await fetch(`${server.base}/api/sync`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});
