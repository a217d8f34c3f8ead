// Caching headers on every /api answer, room info, /healthz, /metrics and CORS.
import { describe, expect, it } from 'vitest';
import {
  expectNoCache,
  metricValue,
  metricsText,
  newRoom,
  poll,
  post,
  request,
  send,
  waitParked,
  type Res,
  useServer,
} from './util.js';

const ORIGIN = 'https://a.example';

const server = useServer({ corsOrigins: [ORIGIN] });

describe('every /api answer forbids caching', () => {
  it('for joins, polls (data and timeout), pages, posts, duplicates and room info', async () => {
    const room = newRoom();
    const answers: [string, Res<unknown>][] = [];
    answers.push(['join of an empty room', await poll(server.base, room)]);
    answers.push(['201 post', await post(server.base, room, { author: 'a', text: 'x', clientMsgId: 'c1' })]);
    answers.push(['200 duplicate', await post(server.base, room, { author: 'a', text: 'x', clientMsgId: 'c1' })]);
    answers.push(['join', await poll(server.base, room)]);
    answers.push(['poll with data', await poll(server.base, room, { after: 0 })]);
    answers.push(['poll timeout', await poll(server.base, room, { after: 1, timeout: 0.1 })]);
    answers.push(['reset', await poll(server.base, room, { after: 1, epoch: 'other', timeout: 0 })]);
    answers.push(['history page', await poll(server.base, room, { before: 2 })]);
    answers.push(['room info', await request(server.base, `/api/rooms/${room}`)]);
    answers.push(['HEAD of a join', await request(server.base, `/api/rooms/${room}/messages`, { method: 'HEAD' })]);

    const held = poll(server.base, room, { after: 1, timeout: 10 });
    await waitParked(server.base, 1);
    await send(server.base, room, 'wake');
    answers.push(['woken poll', await held]);

    expect(answers.map(([what, res]) => [what, res.status])).toEqual([
      ['join of an empty room', 200],
      ['201 post', 201],
      ['200 duplicate', 200],
      ['join', 200],
      ['poll with data', 200],
      ['poll timeout', 200],
      ['reset', 200],
      ['history page', 200],
      ['room info', 200],
      ['HEAD of a join', 200],
      ['woken poll', 200],
    ]);
    for (const [what, res] of answers) {
      expect.soft(res.headers.get('cache-control'), what).toBe('no-store');
      expect.soft(res.headers.get('pragma'), what).toBe('no-cache');
      expect.soft(res.headers.get('etag'), what).toBeNull();
      expect.soft(res.headers.get('last-modified'), what).toBeNull();
    }
  });

  it('also for a request that could be revalidated', async () => {
    const room = newRoom();
    await send(server.base, room, 'x');
    const res = await poll(server.base, room, {}, { headers: { 'If-None-Match': '*', 'If-Modified-Since': new Date().toUTCString() } });
    expect(res.status).toBe(200);
    expectNoCache(res);
  });
});

describe('GET /api/rooms/:room', () => {
  it('answers room, epoch, head and oldest', async () => {
    const room = newRoom();
    const empty = await request(server.base, `/api/rooms/${room}`);
    expect(empty.status).toBe(200);
    const emptyBody = empty.body as { epoch: string };
    expect(empty.body).toEqual({ room, epoch: emptyBody.epoch, head: 0, oldest: 0 });
    expect(typeof emptyBody.epoch).toBe('string');

    await send(server.base, room, 'a');
    await send(server.base, room, 'b');
    const info = await request(server.base, `/api/rooms/${room}`);
    expect(info.body).toEqual({ room, epoch: emptyBody.epoch, head: 2, oldest: 1 });
    expect((await poll(server.base, room)).body.epoch).toBe(emptyBody.epoch);
  });
});

describe('GET /healthz', () => {
  it('answers 200 {ok:true}', async () => {
    const res = await request(server.base, '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });
});

describe('GET /metrics', () => {
  it('is Prometheus text with the chat metrics', async () => {
    const res = await request(server.base, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    for (const name of ['chat_parked_polls', 'chat_messages_accepted_total', 'chat_poll_answers_total', 'chat_wakeup_latency_seconds']) {
      expect(res.text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    for (const outcome of ['data', 'timeout', 'reset', 'gap']) {
      expect(metricValue(res.text, 'chat_poll_answers_total', `outcome="${outcome}"`)).toBeGreaterThanOrEqual(0);
    }
    expect(res.text).toMatch(/^chat_wakeup_latency_seconds_bucket\{le="\+Inf"\} \d+$/m);
  });

  it('counts accepted messages, answers by outcome and wake-ups', async () => {
    const room = newRoom();
    const count = async () => {
      const text = await metricsText(server.base);
      return {
        accepted: metricValue(text, 'chat_messages_accepted_total'),
        data: metricValue(text, 'chat_poll_answers_total', 'outcome="data"'),
        timeout: metricValue(text, 'chat_poll_answers_total', 'outcome="timeout"'),
        reset: metricValue(text, 'chat_poll_answers_total', 'outcome="reset"'),
        woke: metricValue(text, 'chat_wakeup_latency_seconds_count'),
      };
    };
    const c0 = await count();
    await send(server.base, room, 'one');
    await poll(server.base, room, { after: 1, timeout: 0 });
    await poll(server.base, room, { after: 5, timeout: 0 });
    const held = poll(server.base, room, { after: 1, timeout: 10 });
    await waitParked(server.base, 1);
    await send(server.base, room, 'two');
    expect((await held).body.last).toBe(2);
    const c1 = await count();
    expect(c1.accepted).toBe(c0.accepted! + 2);
    expect(c1.timeout).toBe(c0.timeout! + 1);
    expect(c1.reset).toBe(c0.reset! + 1);
    expect(c1.data).toBe(c0.data! + 1);
    expect(c1.woke).toBe(c0.woke! + 1);
  });
});

describe('CORS', () => {
  const preflight = (origin: string) =>
    request(server.base, `/api/rooms/${newRoom()}/messages`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });

  it('answers a preflight from an allowed origin with 204 and Access-Control-Allow-Origin', async () => {
    const res = await preflight(ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-methods') ?? '').toMatch(/POST/);
    expect((res.headers.get('access-control-allow-headers') ?? '').toLowerCase()).toMatch(/content-type/);
  });

  it('gives no Access-Control-Allow-Origin to another origin', async () => {
    const res = await preflight('https://b.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const get = await poll(server.base, newRoom(), {}, { headers: { Origin: 'https://b.example' } });
    expect(get.status).toBe(200);
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows the actual requests from an allowed origin', async () => {
    const room = newRoom();
    const posted = await request(server.base, `/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { Origin: ORIGIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ author: 'a', text: 'x' }),
    });
    expect(posted.status).toBe(201);
    expect(posted.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const get = await poll(server.base, room, {}, { headers: { Origin: ORIGIN } });
    expect(get.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  });

  // The browser's view of these, drain and 429 included, is in test/cors-browser.test.ts.
  it('gives an allowed origin CORS and the exposed Retry-After and WWW-Authenticate on every route, errors included', async () => {
    const room = newRoom();
    const messages = `/api/rooms/${room}/messages`;
    const cases: [method: string, path: string, status: number, init?: RequestInit][] = [
      ['GET', messages, 200],
      ['GET', `/api/rooms/${room}`, 200],
      ['GET', '/healthz', 200],
      ['GET', `${messages}?after=x`, 400],
      ['GET', '/api/rooms/no.dots/messages', 400],
      ['GET', '/api/no-such-route', 404],
      ['GET', '/no-such-route', 404],
      ['PUT', messages, 405],
      ['POST', messages, 415, { headers: { 'Content-Type': 'text/plain' }, body: 'x' }],
      ['POST', messages, 400, { headers: { 'Content-Type': 'application/json' }, body: '{' }],
    ];
    for (const [method, path, status, init] of cases) {
      const res = await request(server.base, path, { ...init, method, headers: { ...(init?.headers as Record<string, string>), Origin: ORIGIN } });
      const what = `${method} ${path}`;
      expect(res.status, what).toBe(status);
      expect(res.headers.get('access-control-allow-origin'), what).toBe(ORIGIN);
      const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      expect(exposed, what).toEqual(expect.arrayContaining(['retry-after', 'www-authenticate']));
    }
  });

  it('exposes nothing to another origin', async () => {
    const res = await request(server.base, '/api/no-such-route', { headers: { Origin: 'https://b.example' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-expose-headers')).toBeNull();
  });

  // PROTOCOL.md: "Every /api response carries Cache-Control: no-store".
  it('marks the preflight answer, an /api response too, as not to be cached', async () => {
    const res = await preflight(ORIGIN);
    expect(res.status).toBe(204);
    expectNoCache(res);
  });
});
