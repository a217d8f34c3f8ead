// Limits on what a request may carry: every parameter, field and header is
// read (or the request refused with a 400 saying why), whatever else the
// request holds; and no body makes the server read more than its limit plus a
// bounded linger, while a client still sending it sees the 413.
import http from 'node:http';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { expectError, newRoom, parkedPolls, request, roomInfo, send, waitParked, type PollBody, type RawResponse, type TestServer } from './util.js';

const BODY_LIMIT = 64 * 1024;
/** What the server may read of a refused body: the linger allowance (1 MiB) and what Node reads ahead. */
const READ_BOUND = BODY_LIMIT + 3 * 1024 * 1024;

let srv: TestServer;
let base: string;

beforeAll(async () => {
  srv = await startTestServer({ bodyLimit: BODY_LIMIT });
  base = srv.baseUrl;
});

afterAll(async () => {
  await srv?.close();
});

/** 1,000 parameters that mean nothing to the server, as a cache-busting proxy or client might add. */
const noise = Array.from({ length: 1000 }, (_, i) => `k${i + 1}`).join('&');

describe('every query parameter is read, however many there are', () => {
  it('holds a poll whose after comes behind 1,000 other parameters, instead of answering it as a join', async () => {
    const room = newRoom('many');
    const first = await send(base, room, 'one');
    const { epoch } = await roomInfo(base, room);
    const held = request<PollBody>(base, `/api/rooms/${room}/messages?${noise}&after=1&epoch=${epoch}&timeout=10`);
    await waitParked(base, 1);
    const second = await send(base, room, 'two');
    const res = await held;
    expect(res.status, res.text).toBe(200);
    expect(res.body.messages).toEqual([second]);
    expect(res.body.messages).not.toContainEqual(first);
  });

  it.each(['GET', 'HEAD'])('refuses, on %s, an after given twice behind 1,000 other parameters with 400', async (method) => {
    const room = newRoom('many');
    const res = await request(base, `/api/rooms/${room}/messages?${noise}&after=1&after=2&timeout=0`, { method });
    expect(res.status).toBe(400);
    if (method === 'GET') expectError(res, 400, 'invalid_parameter');
    expect(await parkedPolls(base)).toBe(0);
  });

  it('reads every field of a form, refusing a text given twice behind 1,000 other fields', async () => {
    const room = newRoom('form');
    const form = (body: string): RequestInit => ({ method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
    const ok = await request<{ message: { text: string } }>(base, `/api/rooms/${room}/messages`, form(`${noise}&author=ann&text=hello`));
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.message.text).toBe('hello');
    expectError(await request(base, `/api/rooms/${room}/messages`, form(`author=ann&text=one&${noise}&text=two`)), 400, 'invalid_text');
    expect((await roomInfo(base, room)).head).toBe(1);
  });
});

describe('every header is read', () => {
  it('finds the Content-Type behind 2,100 other headers', async () => {
    const room = newRoom('headers');
    const headers: Record<string, string> = {};
    for (let i = 0; i < 2100; i++) headers[`x-h${i}`] = '1';
    const res = await post(room, { ...headers, 'Content-Type': 'application/json' }, JSON.stringify({ author: 'ann', text: 'behind the headers' }));
    expect(res.status, res.body).toBe(201);
  });

  it('refuses a Content-Type given twice with 400, storing nothing', async () => {
    const room = newRoom('headers');
    const res = await post(room, { 'Content-Type': ['application/json', 'text/plain'] }, JSON.stringify({ author: 'ann', text: 'which type?' }));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'bad_request' } });
    expect((await roomInfo(base, room)).head).toBe(0);
  });
});

/** A POST over node:http with exactly these headers (arrays repeat a header). */
function post(room: string, headers: http.OutgoingHttpHeaders, body: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/api/rooms/${room}/messages`, { method: 'POST', agent: false, headers: { ...headers, 'Content-Length': Buffer.byteLength(body) } });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.end(body);
  });
}

interface Upload {
  res: RawResponse;
  /** Bytes the client wrote before the answer came. */
  sent: number;
  /** Bytes the server read from the connection, all told. */
  serverRead: number;
  /** Whether the server sent 100 Continue. */
  continued: boolean;
}

/**
 * A request (a POST unless told otherwise) that writes zeros as fast as the
 * server takes them until its answer has arrived; then the client gives up.
 * With `Expect`, it waits for 100 Continue before writing, unless told not
 * to. Rejects if the connection fails before an answer (a reset instead of
 * the 413).
 */
function upload(path: string, headers: http.OutgoingHttpHeaders, method = 'POST', chunk = Buffer.alloc(64 * 1024), waitForContinue = headers.Expect !== undefined): Promise<Upload> {
  return new Promise((resolve, reject) => {
    let serverSocket: Socket | undefined;
    srv.server.once('connection', (socket: Socket) => (serverSocket = socket));
    const req = http.request(`${base}${path}`, { method, agent: false, headers });
    let sent = 0;
    let answered = false;
    let continued = false;
    const pump = (): void => {
      if (answered) return;
      sent += chunk.length;
      if (req.write(chunk)) setImmediate(pump);
      else req.once('drain', pump);
    };
    req.on('continue', () => {
      continued = true;
      pump();
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        req.destroy();
        const done = (): void => resolve({ res: { status: res.statusCode ?? 0, headers: res.headers, body }, sent, serverRead: serverSocket!.bytesRead, continued });
        if (serverSocket!.closed) done();
        else serverSocket!.once('close', done);
      });
    });
    if (waitForContinue) req.flushHeaders();
    else pump();
  });
}

function expect413(res: RawResponse): void {
  expect(res.status, res.body).toBe(413);
  expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'body_too_large' } });
  expect(res.headers.connection).toBe('close');
  expect(res.headers['cache-control']).toBe('no-store');
}

describe('no body makes the server read more than its limit', () => {
  it('answers a declared 10 GB body with 413 at once, which the client sees while sending, and reads about a megabyte of it', async () => {
    const room = newRoom('big');
    const up = await upload(`/api/rooms/${room}/messages`, { 'Content-Type': 'application/json', 'Content-Length': '10000000000' });
    expect413(up.res);
    expect(up.serverRead).toBeLessThan(READ_BOUND);
    expect((await roomInfo(base, room)).head).toBe(0);
  });

  it('answers an endless chunked body with 413 once past the limit, and reads about a megabyte more', async () => {
    const room = newRoom('big');
    const up = await upload(`/api/rooms/${room}/messages`, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    expect413(up.res);
    expect(up.sent).toBeGreaterThan(BODY_LIMIT);
    expect(up.serverRead).toBeLessThan(READ_BOUND);
    expect((await roomInfo(base, room)).head).toBe(0);
  });

  it('answers an endless gzip body that decodes to nothing with 413 once the bytes received pass the limit', async () => {
    const room = newRoom('big');
    // Empty gzip members, one after the other: a valid stream that never grows when decoded.
    const emptyMember = gzipSync(Buffer.alloc(0));
    const up = await upload(
      `/api/rooms/${room}/messages`,
      { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Transfer-Encoding': 'chunked' },
      'POST',
      Buffer.concat(Array.from({ length: 2048 }, () => emptyMember)),
    );
    expect413(up.res);
    expect(up.serverRead).toBeLessThan(READ_BOUND);
  });

  it('refuses a too large body announced with Expect: 100-continue before it is sent', async () => {
    const room = newRoom('big');
    const up = await upload(`/api/rooms/${room}/messages`, { 'Content-Type': 'application/json', 'Content-Length': '10000000000', Expect: '100-continue' });
    expect413(up.res);
    expect(up.continued).toBe(false);
    expect(up.sent).toBe(0);
  });

  it('answers a body refused before its 100 Continue, which the client sends anyway, without a reset', async () => {
    const room = newRoom('expect');
    const up = await upload(`/api/rooms/${room}/messages`, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked', Expect: '100-continue' }, 'POST', undefined, false);
    expect(up.res.status).toBe(415);
    expect(JSON.parse(up.res.body)).toMatchObject({ error: { code: 'unsupported_media_type' } });
    expect(up.continued).toBe(false);
    expect(up.serverRead).toBeLessThan(READ_BOUND);
  });

  it('sends 100 Continue for a body it will read', async () => {
    const room = newRoom('continue');
    const body = JSON.stringify({ author: 'ann', text: 'asked first' });
    const res = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      const req = http.request(`${base}/api/rooms/${room}/messages`, {
        method: 'POST',
        agent: false,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Expect: '100-continue' },
      });
      let continued = false;
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('error', reject);
      req.on('response', (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, continued }));
      });
      req.flushHeaders();
    });
    expect(res).toEqual({ status: 201, continued: true });
  });

  it('answers a 413 to a body declared too large on any route, before routing', async () => {
    const up = await upload('/api/nope', { 'Content-Type': 'application/json', 'Content-Length': '10000000000' });
    expect413(up.res);
    expect(up.serverRead).toBeLessThan(READ_BOUND);
  });

  it('refuses a GET with a body: 400, and an endless chunked one is not read', async () => {
    const room = newRoom('getbody');
    const small = await new Promise<RawResponse>((resolve, reject) => {
      const req = http.request(`${base}/api/rooms/${room}/messages?after=0&timeout=5`, { method: 'GET', agent: false, headers: { 'Content-Length': '5' } });
      req.on('error', reject);
      req.on('response', (r) => {
        let text = '';
        r.on('data', (c: Buffer) => (text += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: text }));
      });
      req.end('hello');
    });
    expect(small.status).toBe(400);
    expect(JSON.parse(small.body)).toMatchObject({ error: { code: 'bad_request' } });

    const endless = await upload('/healthz', { 'Transfer-Encoding': 'chunked' }, 'GET');
    expect(endless.res.status).toBe(400);
    expect(endless.res.headers.connection).toBe('close');
    expect(endless.serverRead).toBeLessThan(READ_BOUND);
    expect(await parkedPolls(base)).toBe(0);
  });
});
