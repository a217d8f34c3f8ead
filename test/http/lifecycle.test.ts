// The life of connections and of the server: clients that go away while
// parked, shutdown answering parked polls and draining, and Node's own
// server timeouts not cutting a held poll.
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import {
  expectRetryAfter,
  newRoom,
  poll,
  rawGet,
  rawRequest,
  send,
  waitFor,
  waitParked,
  type PollBody,
  type RawResponse,
  type TestServer,
} from './util.js';

const servers: TestServer[] = [];
async function start(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const srv = await startTestServer(overrides);
  servers.push(srv);
  return srv;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const parse = (res: RawResponse) => JSON.parse(res.body) as PollBody;

describe('a client that goes away while parked', () => {
  it('leaves nothing parked', async () => {
    const srv = await start();
    const room = newRoom();
    await send(srv.baseUrl, room, 'x');
    const N = 20;
    const polls = Array.from({ length: N }, (_, i) =>
      // Several cursors and rooms, so that groups and rooms are cleaned up too.
      rawGet(srv.baseUrl, `/api/rooms/${i % 2 ? room : `${room}-b`}/messages?after=${i % 2 ? 1 : 0}&limit=${1 + (i % 3)}&timeout=30`),
    );
    await waitParked(srv.baseUrl, N);
    expect(srv.chat.parked).toBe(N);

    for (const p of polls) p.req.destroy();
    await waitParked(srv.baseUrl, 0);
    expect(srv.chat.parked).toBe(0);
    for (const p of polls) await expect(p.response).rejects.toThrow();

    // The room still works: a new poll parks and is woken.
    const held = poll(srv.baseUrl, room, { after: 1, timeout: 10 });
    await waitParked(srv.baseUrl, 1);
    const m = await send(srv.baseUrl, room, 'after the aborts');
    expect((await held).body.messages).toEqual([m]);
  });

  it('aborted by fetch leaves nothing parked', async () => {
    const srv = await start();
    const room = newRoom();
    const controller = new AbortController();
    const p = poll(srv.baseUrl, room, { after: 0, timeout: 30 }, { signal: controller.signal });
    await waitParked(srv.baseUrl, 1);
    controller.abort();
    await expect(p).rejects.toThrow();
    await waitParked(srv.baseUrl, 0);
    expect(srv.chat.parked).toBe(0);
  });
});

describe('shutdown', () => {
  it('answers every parked poll at once as if it timed out, closing the connection', async () => {
    const srv = await start();
    const room = newRoom();
    await send(srv.baseUrl, room, 'x');
    const polls = [
      rawGet(srv.baseUrl, `/api/rooms/${room}/messages?after=1&timeout=30`),
      rawGet(srv.baseUrl, `/api/rooms/${room}/messages?after=1&timeout=30&limit=5`),
      rawGet(srv.baseUrl, `/api/rooms/${newRoom()}/messages?after=0&timeout=30`),
    ];
    await waitParked(srv.baseUrl, 3);

    const done = srv.shutdown();
    const answers = await Promise.all(polls.map((p) => p.response));
    await done;
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.map((a) => parse(a).messages)).toEqual([[], [], []]);
    expect(answers.map((a) => parse(a).last)).toEqual([1, 1, 0]);
    expect(answers.map((a) => parse(a).more)).toEqual([false, false, false]);
    for (const a of answers) expect(a.headers.connection).toBe('close');
    expect(srv.chat.parked).toBe(0);
  });

  it('answers 503 shutting_down with Retry-After and Connection: close during the drain', async () => {
    const srv = await start({ drainTimeout: 1 });
    const room = newRoom();
    await send(srv.baseUrl, room, 'x');
    const parked = rawGet(srv.baseUrl, `/api/rooms/${room}/messages?after=1&timeout=30`);
    await waitParked(srv.baseUrl, 1);

    const done = srv.shutdown();
    const answer = await parked.response;
    expect(answer.status).toBe(200);
    expect(parse(answer)).toMatchObject({ messages: [], last: 1, more: false });

    const requests = [
      rawGet(srv.baseUrl, `/api/rooms/${room}/messages?after=1&timeout=30`),
      rawGet(srv.baseUrl, `/api/rooms/${room}/messages`),
      rawGet(srv.baseUrl, `/api/rooms/${room}`),
    ];
    const postReq = rawRequest(srv.baseUrl, `/api/rooms/${room}/messages`, { method: 'POST', headers: { 'Content-Type': 'application/json' } });
    postReq.req.end(JSON.stringify({ author: 'a', text: 'too late' }));
    requests.push(postReq);

    for (const r of await Promise.all(requests.map((q) => q.response))) {
      expect(r.status).toBe(503);
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['pragma']).toBe('no-cache');
      expect(r.headers.connection).toBe('close');
      expectRetryAfter(r.headers['retry-after']);
      const body = JSON.parse(r.body) as { error: { code: string; message: string } };
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error.code).toBe('shutting_down');
      expect(body.error.message).not.toBe('');
    }
    expect(srv.chat.parked).toBe(0);
    await done;
    // Closed: nothing listens any more.
    await expect(fetch(`${srv.baseUrl}/healthz`)).rejects.toThrow();
  });
});

describe("Node's server timeouts", () => {
  it('do not cut a poll held on a reused keep-alive connection longer than the keep-alive timeout', { timeout: 15_000 }, async () => {
    // Node's client agent keeps a socket for the server's Keep-Alive hint
    // minus one second, so 2 s is the shortest timeout it will reuse a socket for.
    const srv = await start({ keepAliveTimeout: 2 });
    const room = newRoom();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = rawGet(srv.baseUrl, '/healthz', { agent });
      expect((await first.response).status).toBe(200);
      await waitFor(() => Object.values(agent.freeSockets).some((list) => (list?.length ?? 0) > 0), 'the socket back in the pool');

      const held = rawGet(srv.baseUrl, `/api/rooms/${room}/messages?after=0&timeout=3`, { agent });
      await waitParked(srv.baseUrl, 1);
      expect(held.req.reusedSocket).toBe(true);
      const answer = await held.response;
      expect(answer.status).toBe(200);
      expect(parse(answer)).toMatchObject({ messages: [], last: 0, more: false });
    } finally {
      agent.destroy();
    }
  });
});
