// Streams on two instances sharing one Redis: a ticket issued by one opens a
// stream on the other, once for both; a message posted through one reaches a
// stream held on the other; and a stream resumed on the other instance with
// its last event id starts exactly after what it had.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openStream, type SseStream } from '../helpers/sse.js';
import { startTestServer } from '../helpers/server.js';
import { expectError, newRoom, postAs, request, signIn, type TestServer } from './util.js';

const env = inject('redis');

interface Entry {
  room: string;
  messages: { text: string; seq: number }[];
}

describe.skipIf(env.skip)('streams on two instances on one Redis', () => {
  let a: TestServer;
  let b: TestServer;
  const streams: SseStream[] = [];
  beforeAll(async () => {
    const config = { store: 'redis' as const, redisUrl: env.url, redisPrefix: `${env.prefix}stream:` };
    a = await startTestServer(config);
    b = await startTestServer(config);
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  const texts = (s: SseStream, room: string): string[] =>
    s.events.map((e) => JSON.parse(e.data) as Entry).filter((e) => e.room === room).flatMap((e) => e.messages.map((m) => m.text));

  it('take a ticket from either instance once, wake across instances, and resume on the other instance', async () => {
    const room = newRoom('redis-stream');
    const ann = await signIn(a.baseUrl, 'ann');
    const issued = await postAs<{ ticket: string }>(a.baseUrl, '/api/stream-tickets', ann.token);
    expect(issued.status).toBe(201);

    const onB = await openStream(b.baseUrl, `/api/stream?rooms=${room}&ticket=${issued.body.ticket}`);
    streams.push(onB);
    expect(onB.status).toBe(200);
    // Spent on B, so refused on A too.
    expectError(await request(a.baseUrl, `/api/stream?rooms=${room}&ticket=${issued.body.ticket}`), 401, 'invalid_ticket');

    await onB.next();
    expect((await postAs(a.baseUrl, `/api/rooms/${room}/messages`, ann.token, { text: 'through A' })).status).toBe(201);
    await onB.next((e) => texts(onB, room).length > 0 && e.id !== undefined, 0);
    expect(texts(onB, room)).toEqual(['through A']);
    const id = onB.lastEventId;
    onB.close();

    expect((await postAs(b.baseUrl, `/api/rooms/${room}/messages`, ann.token, { text: 'while away' })).status).toBe(201);
    const onA = await openStream(a.baseUrl, `/api/stream?rooms=${room}`, { 'Last-Event-ID': id });
    streams.push(onA);
    await onA.next((e) => (JSON.parse(e.data) as Entry).messages.length > 0);
    expect(texts(onA, room)).toEqual(['while away']);
  });
});
