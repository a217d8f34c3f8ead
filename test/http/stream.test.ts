// GET /api/stream on a real server (protocol "Streams"): events for the rooms
// followed, ids that resume every room, heartbeats, tickets for EventSource,
// capacity, presence and shutdown like held polls, and bad input refused with
// a JSON error that leaves nothing open.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openStream, type SseStream } from '../helpers/sse.js';
import { startTestServer } from '../helpers/server.js';
import {
  bearer,
  expectError,
  metricsText,
  metricValue,
  newRoom,
  post,
  postAs,
  request,
  signIn,
  useServer,
  waitFor,
  type Message,
  type Res,
} from './util.js';

const server = useServer({ syncMaxRooms: 5, streamHeartbeat: 0.3, streamStall: 0.5, retention: 50 });

interface Entry {
  room: string;
  epoch: string;
  messages: Message[];
  last: number;
  more: boolean;
  reset?: true;
  state?: string;
  online?: { id: string; name: string }[];
  typing?: { id: string; name: string }[];
  error?: { code: string };
}

const open: SseStream[] = [];
afterEach(() => {
  for (const stream of open.splice(0)) stream.close();
});

async function stream(path: string, headers: Record<string, string> = {}, base = server.base): Promise<SseStream> {
  const s = await openStream(base, path, headers);
  open.push(s);
  return s;
}

const entryOf = (data: string): Entry => JSON.parse(data) as Entry;
const roomEvent = (room: string, has: (entry: Entry) => boolean = () => true) => (e: { event: string; data: string }) => e.event === 'room' && entryOf(e.data).room === room && has(entryOf(e.data));

async function streamsOpen(base = server.base): Promise<number> {
  return metricValue(await metricsText(base), 'chat_streams_open') ?? NaN;
}

const nothingLeft = (base = server.base): Promise<void> =>
  waitFor(async () => {
    const text = await metricsText(base);
    return metricValue(text, 'chat_streams_open') === 0 && metricValue(text, 'chat_parked_polls') === 0;
  }, 'no stream open and no poll parked');

async function ticketFor(token: string): Promise<string> {
  const res = await postAs<{ ticket: string; expiresAt: number }>(server.base, '/api/stream-tickets', token);
  expect(res.status, res.text).toBe(201);
  expect(res.body.expiresAt).toBeGreaterThan(Date.now());
  expect(res.body.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
  return res.body.ticket;
}

describe('GET /api/stream', () => {
  it('answers with the SSE headers, a comment and a retry field at once, then joins each room with its tail', async () => {
    const room = newRoom('s-join');
    await post(server.base, room, { author: 'ann', text: 'before' });
    const s = await stream(`/api/stream?rooms=${room}`);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.headers['cache-control']).toBe('no-store, no-transform');
    expect(s.headers['x-accel-buffering']).toBe('no');
    expect(s.headers.etag).toBeUndefined();
    const joined = await s.next(roomEvent(room));
    expect(s.comments.length).toBeGreaterThan(0);
    expect(s.retry).toBe(1000);
    const entry = entryOf(joined.data);
    expect(entry.messages.map((m) => m.text)).toEqual(['before']);
    expect(entry.last).toBe(1);
    expect(joined.id).toBe(`${room}:1:${entry.epoch}`);
  });

  it('sends each new message as an event whose id carries every room\'s cursor, and resumes from it', async () => {
    const [a, b] = [newRoom('s-a'), newRoom('s-b')];
    const s = await stream(`/api/stream?rooms=${a},${b}`);
    await s.next(roomEvent(b));
    await post(server.base, b, { author: 'ann', text: 'to b' });
    const event = await s.next(roomEvent(b, (e) => e.messages.length > 0));
    const epoch = entryOf(event.data).epoch;
    expect(event.id).toBe(`${a}:0:${epoch},${b}:1:${epoch}`);
    s.close();
    // Posted while away: the resumed stream starts with them, and nothing earlier.
    await post(server.base, a, { author: 'ann', text: 'while away in a' });
    await post(server.base, b, { author: 'ann', text: 'while away in b' });
    const resumed = await stream(`/api/stream?rooms=${a},${b}`, { 'Last-Event-ID': event.id! });
    const inA = entryOf((await resumed.next(roomEvent(a, (e) => e.messages.length > 0))).data);
    const inB = entryOf((await resumed.next(roomEvent(b, (e) => e.messages.length > 0))).data);
    expect(inA.messages.map((m) => m.text)).toEqual(['while away in a']);
    expect(inB.messages.map((m) => m.text)).toEqual(['while away in b']);
  });

  it('answers one serialization per message for every stream at a cursor: the same bytes to each', async () => {
    const room = newRoom('s-fan');
    const streams = await Promise.all([1, 2, 3].map(() => stream(`/api/stream?rooms=${room}:0`)));
    await Promise.all(streams.map((s) => s.next(roomEvent(room))));
    await post(server.base, room, { author: 'ann', text: 'to all' });
    const datas = await Promise.all(streams.map(async (s) => (await s.next(roomEvent(room, (e) => e.messages.length > 0))).data));
    expect(new Set(datas).size).toBe(1);
  });

  it('sends a comment while idle, so that proxies counting silence keep the connection', async () => {
    const s = await stream(`/api/stream?rooms=${newRoom('s-idle')}:0`);
    const before = s.comments.length;
    await waitFor(() => s.comments.length >= before + 2, 'two heartbeats');
    expect(s.comments.slice(before)).toEqual(['', '']);
  });

  it('reports a reset for a cursor of another epoch, and a room turned away as not_found, then follows the rest', async () => {
    const room = newRoom('s-reset');
    await post(server.base, room, { author: 'ann', text: 'one' });
    const s = await stream(`/api/stream?rooms=${room}:1:old-epoch,p_nobody${process.pid}:0`);
    const denied = entryOf((await s.next(roomEvent(`p_nobody${process.pid}`))).data);
    expect(denied.error?.code).toBe('not_found');
    const reset = entryOf((await s.next(roomEvent(room))).data);
    expect(reset.reset).toBe(true);
    expect(reset.messages.map((m) => m.text)).toEqual(['one']);
    await post(server.base, room, { author: 'ann', text: 'two' });
    const next = await s.next(roomEvent(room, (e) => e.messages.length > 0), s.events.length);
    expect(next.id).toBe(`${room}:2:${reset.epoch}`);
  });

  it('shows a signed-in reader online and typing changes as they happen, like a held sync', async () => {
    const room = newRoom('s-presence');
    const ann = await signIn(server.base, 'ann');
    const bob = await signIn(server.base, 'bob');
    const s = await stream(`/api/stream?rooms=${room}`, bearer(ann.token));
    await s.next(roomEvent(room, (e) => (e.online ?? []).some((u) => u.id === ann.user.id)));
    const typing = await postAs(server.base, `/api/rooms/${room}/typing`, bob.token, { typing: true });
    expect(typing.status).toBe(204);
    const seen = entryOf((await s.next(roomEvent(room, (e) => (e.typing ?? []).some((u) => u.id === bob.user.id)))).data);
    expect(seen.messages).toEqual([]);
  });

  it('counts toward capacity: a stream held makes the next poll 503 over_capacity, and frees it when closed', async () => {
    const small = await startTestServer({ capacity: 1 });
    try {
      const s = await openStream(small.baseUrl, `/api/stream?rooms=${newRoom('s-cap')}:0`);
      await s.next();
      const refused = await request(small.baseUrl, `/api/rooms/${newRoom('s-cap')}/messages?after=0&timeout=0`);
      expectError(refused, 503, 'over_capacity');
      const second = await openStream(small.baseUrl, `/api/stream?rooms=${newRoom('s-cap')}`);
      expect(second.status).toBe(503);
      expect(JSON.parse(second.text).error.code).toBe('over_capacity');
      s.close();
      await nothingLeft(small.baseUrl);
      const again = await request(small.baseUrl, `/api/rooms/${newRoom('s-cap')}/messages?after=0&timeout=0`);
      expect(again.status).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('at shutdown sends the events pending, then ends the stream', async () => {
    const own = await startTestServer({ drainTimeout: 1 });
    const room = newRoom('s-shutdown');
    const s = await openStream(own.baseUrl, `/api/stream?rooms=${room}:0`);
    await s.next();
    await post(own.baseUrl, room, { author: 'ann', text: 'last words' });
    const closing = own.shutdown();
    await s.ended;
    const texts = s.events.flatMap((e) => entryOf(e.data).messages.map((m) => m.text));
    expect(texts).toEqual(['last words']);
    expect(s.text.endsWith('\n\n')).toBe(true);
    await closing;
  });

  it('leaves nothing behind when the client goes away', async () => {
    const s = await stream(`/api/stream?rooms=${newRoom('s-gone')}:0,${newRoom('s-gone')}`);
    await s.next();
    expect(await streamsOpen()).toBeGreaterThanOrEqual(1);
    s.close();
    await nothingLeft();
  });

  it('cuts a client that reads nothing once it has lagged behind for --stream-stall, leaving nothing open', async () => {
    const room = newRoom('s-stall');
    const socket = net.connect(new URL(server.base).port ? Number(new URL(server.base).port) : 80, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`GET /api/stream?rooms=${room}:0 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    // Never read: the kernel's buffers fill, then Node's.
    socket.pause();
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    await waitFor(async () => (await streamsOpen()) >= 1, 'the stream open');
    const text = 'x'.repeat(4000);
    for (let i = 0; i < 40 && !closed; i++) {
      await Promise.all(Array.from({ length: 25 }, () => post(server.base, room, { author: 'ann', text })));
    }
    await nothingLeft();
    // The server dropped it; the client's side learns when it reads.
    socket.resume();
    await waitFor(() => closed, 'the connection closed');
  });
});

describe('stream tickets', () => {
  it('open one stream for the user who asked, once', async () => {
    const room = newRoom('s-ticket');
    const ann = await signIn(server.base, 'ann');
    const ticket = await ticketFor(ann.token);
    const s = await stream(`/api/stream?rooms=${room}&ticket=${ticket}`);
    expect(s.status).toBe(200);
    await s.next(roomEvent(room, (e) => (e.online ?? []).some((u) => u.id === ann.user.id)));
    const again = await request(server.base, `/api/stream?rooms=${room}&ticket=${ticket}`);
    expectError(again, 401, 'invalid_ticket');
    expect(again.headers.get('www-authenticate')).toBe('Bearer realm="chat"');
  });

  it('are no tokens, and tokens are no tickets', async () => {
    const ann = await signIn(server.base, 'ann');
    const ticket = await ticketFor(ann.token);
    expectError(await request(server.base, `/api/rooms/${newRoom()}`, { headers: bearer(ticket) }), 401, 'invalid_token');
    expectError(await request(server.base, `/api/stream?rooms=lobby&ticket=${ann.token}`), 401, 'invalid_ticket');
    expectError(await request(server.base, `/api/stream?rooms=lobby&ticket=garbage`), 401, 'invalid_ticket');
    expectError(await request(server.base, `/api/stream?rooms=lobby&ticket=${ticket}`, { headers: bearer(ann.token) }), 400, 'bad_request');
  });

  it('need a token to be issued', async () => {
    expectError(await postAs(server.base, '/api/stream-tickets', undefined), 401, 'unauthenticated');
    expectError(await postAs(server.base, '/api/stream-tickets', 'not.a.token'), 401, 'invalid_token');
    expectError(await request(server.base, '/api/stream-tickets'), 405, 'method_not_allowed');
  });
});

describe('bad stream requests', () => {
  const room = `bad-${process.pid}`;
  const cases: [string, string, Record<string, string>, number, string][] = [
    ['no rooms', '/api/stream', {}, 400, 'invalid_parameter'],
    ['empty rooms', '/api/stream?rooms=', {}, 400, 'invalid_parameter'],
    ['rooms twice', `/api/stream?rooms=${room}&rooms=${room}`, {}, 400, 'invalid_parameter'],
    ['a room twice', `/api/stream?rooms=${room},${room}`, {}, 400, 'invalid_parameter'],
    ['a bad room name', '/api/stream?rooms=no%20spaces', {}, 400, 'invalid_room'],
    ['an empty name in the list', `/api/stream?rooms=${room},`, {}, 400, 'invalid_room'],
    ['a seq that is not digits', `/api/stream?rooms=${room}:-1`, {}, 400, 'invalid_parameter'],
    ['a seq past 2^53', `/api/stream?rooms=${room}:9007199254740993`, {}, 400, 'invalid_parameter'],
    ['an empty epoch', `/api/stream?rooms=${room}:3:`, {}, 400, 'invalid_parameter'],
    ['too many rooms', `/api/stream?rooms=${[1, 2, 3, 4, 5, 6].map((i) => `${room}${i}`).join(',')}`, {}, 400, 'too_many_rooms'],
    ['a bad limit', `/api/stream?rooms=${room}&limit=0`, {}, 400, 'invalid_parameter'],
    ['a malformed Last-Event-ID', `/api/stream?rooms=${room}`, { 'Last-Event-ID': 'garbage id' }, 400, 'invalid_room'],
    ['a Last-Event-ID without seqs', `/api/stream?rooms=${room}`, { 'Last-Event-ID': room }, 400, 'invalid_parameter'],
    ['a Last-Event-ID of another stream', `/api/stream?rooms=${room}`, { 'Last-Event-ID': 'elsewhere:4:abc' }, 400, 'invalid_parameter'],
    ['a foreign lastEventId in the query', `/api/stream?rooms=${room}&lastEventId=elsewhere:4:abc`, {}, 400, 'invalid_parameter'],
    ['a Last-Event-ID far too long', `/api/stream?rooms=${room}`, { 'Last-Event-ID': `${room}:1:${'e'.repeat(12_100)}` }, 400, 'invalid_parameter'],
    ['a bad token', `/api/stream?rooms=${room}`, { Authorization: 'Bearer nope' }, 401, 'invalid_token'],
  ];
  it.each(cases)('%s: a JSON error, nothing left open', async (_what, path, headers, status, code) => {
    const res: Res<unknown> = await request(server.base, path, { headers });
    expectError(res, status, code);
    await nothingLeft();
  });

  it('a private room of someone else, for a reader without a token: one not_found event, then the stream ends', async () => {
    const s = await stream(`/api/stream?rooms=p_someone${process.pid}`);
    const event = await s.next();
    expect(entryOf(event.data).error?.code).toBe('not_found');
    await s.ended;
    await nothingLeft();
  });

  it('POST, PUT and HEAD: 405 with Allow: GET', async () => {
    for (const method of ['POST', 'PUT', 'HEAD']) {
      const res = await request(server.base, `/api/stream?rooms=${room}`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET');
    }
  });
});
