// Every error of the protocol: status, exact {error:{code,message}} shape and
// no-cache headers; and after each bad request the server still answers, the
// room is unchanged and nothing is left parked.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import {
  expectError,
  expectRetryAfter,
  newRoom,
  parkedPolls,
  poll,
  post,
  postAs,
  rawRequest,
  request,
  roomInfo,
  sendMany,
  signIn,
  waitParked,
  type RawResponse,
  type RoomInfo,
  type TestServer,
} from './util.js';

const BODY_LIMIT = 2048;

let srv: TestServer;
let base: string;
const room = newRoom('err');
let before: RoomInfo;

beforeAll(async () => {
  srv = await startTestServer({ bodyLimit: BODY_LIMIT });
  base = srv.baseUrl;
  await sendMany(base, room, 3);
  before = await roomInfo(base, room);
});

afterAll(async () => {
  await srv?.close();
});

/** The server still answers, the room is as it was, and no poll is parked. */
async function expectUnharmed(): Promise<void> {
  expect(await roomInfo(base, room)).toEqual(before);
  expect(await parkedPolls(base)).toBe(0);
  expect(srv.chat.parked).toBe(0);
}

const messagesPath = `/api/rooms/${room}/messages`;
const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('400 for a bad query', () => {
  // Where a wrongly accepted poll would be held, timeout=0 makes it answer at
  // once (so the test fails on the status instead of hanging).
  const cases: [string, string][] = [
    ['after=-1', 'after=-1&timeout=0'],
    ['after=1.5', 'after=1.5&timeout=0'],
    ['after=1e3', 'after=1e3&timeout=0'],
    ['after=0x10', 'after=0x10&timeout=0'],
    ['after= (empty)', 'after=&timeout=0'],
    ['after=2^53', 'after=9007199254740992&timeout=0'],
    ['after given twice', 'after=3&after=3&timeout=0'],
    ['after and before together', 'after=1&before=2&timeout=0'],
    ['before=-1', 'before=-1'],
    ['limit=0', 'after=0&limit=0&timeout=0'],
    ['limit=1001', 'after=0&limit=1001&timeout=0'],
    ['limit=0 on a join', 'limit=0'],
    ['timeout=-1', 'after=3&timeout=-1'],
    ['timeout=abc', 'after=3&timeout=abc'],
    ['timeout given twice', 'after=3&timeout=0&timeout=0'],
  ];
  it.each(cases)('%s', async (_name, query) => {
    expectError(await request(base, `${messagesPath}?${query}`), 400, 'invalid_parameter');
    await expectUnharmed();
  });

  it('accepts the largest allowed after (2^53-1) as a cursor beyond the head', async () => {
    const res = await poll(base, room, { after: Number.MAX_SAFE_INTEGER, timeout: 0 });
    expect(res.status).toBe(200);
    expect(res.body.reset).toBe(true);
    await expectUnharmed();
  });
});

describe('400 for a bad room name', () => {
  const names: [string, string][] = [
    ['with a space', 'a%20b'],
    ['of 65 characters', 'r'.repeat(65)],
    ['with a non-ASCII letter', '%C3%A9'],
    ['with a dot', 'a.b'],
  ];
  it.each(names)('%s, when polling, posting and asking for room info', async (_name, encoded) => {
    expectError(await request(base, `/api/rooms/${encoded}/messages?after=0&timeout=0`), 400, 'invalid_room');
    expectError(await request(base, `/api/rooms/${encoded}/messages`), 400, 'invalid_room');
    expectError(await request(base, `/api/rooms/${encoded}/messages`, json({ author: 'a', text: 'x' })), 400, 'invalid_room');
    expectError(await request(base, `/api/rooms/${encoded}`), 400, 'invalid_room');
    await expectUnharmed();
  });

  it('with malformed percent-encoding (a client error, not a server error)', async () => {
    expectError(await request(base, '/api/rooms/%ZZ/messages?after=0&timeout=0'), 400);
    expectError(await request(base, '/api/rooms/%E0%A4%A/messages', json({ author: 'a', text: 'x' })), 400);
    await expectUnharmed();
  });
});

describe('400 for a bad body', () => {
  const cases: [string, RequestInit, string | undefined][] = [
    ['missing text', json({ author: 'a' }), 'invalid_text'],
    ['missing author', json({ text: 'x' }), 'invalid_author'],
    ['empty author', json({ author: '', text: 'x' }), 'invalid_author'],
    ['whitespace-only text', json({ author: 'a', text: ' \n\t \r\n ' }), 'invalid_text'],
    ['empty text', json({ author: 'a', text: '' }), 'invalid_text'],
    ['a C0 control character in author', json({ author: 'a\u0007b', text: 'x' }), 'invalid_author'],
    ['a newline in author', json({ author: 'a\nb', text: 'x' }), 'invalid_author'],
    ['a C1 control character in author', json({ author: 'a\u0085b', text: 'x' }), 'invalid_author'],
    ['DEL in author', json({ author: 'a\u007fb', text: 'x' }), 'invalid_author'],
    ['\\u0001 in text', json({ author: 'a', text: 'x\u0001y' }), 'invalid_text'],
    ['a lone surrogate in text', json('{"author":"a","text":"x\\ud800y"}'), 'invalid_text'],
    ['text of the wrong type', json({ author: 'a', text: 5 }), 'invalid_text'],
    ['author of the wrong type', json({ author: ['a'], text: 'x' }), 'invalid_author'],
    ['clientMsgId: null', json({ author: 'a', text: 'x', clientMsgId: null }), 'invalid_client_msg_id'],
    ['clientMsgId of 65 characters', json({ author: 'a', text: 'x', clientMsgId: 'c'.repeat(65) }), 'invalid_client_msg_id'],
    ['clientMsgId with a space', json({ author: 'a', text: 'x', clientMsgId: 'a b' }), 'invalid_client_msg_id'],
    ['clientMsgId of the wrong type', json({ author: 'a', text: 'x', clientMsgId: 5 }), 'invalid_client_msg_id'],
    ['invalid JSON', json('{"author":"a","text":'), 'invalid_json'],
    ['a JSON array', json('[{"author":"a","text":"x"}]'), 'invalid_body'],
    ['a JSON string', json('"hello"'), 'invalid_json'],
    [
      'a form with text twice',
      { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'author=a&text=x&text=y' },
      'invalid_text',
    ],
    // The code is the server's choice; the protocol asks for a 400, not a 500.
    [
      'a gzip Content-Encoding over a body that is not gzip',
      { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: '{"author":"a","text":"x"}' },
      undefined,
    ],
  ];
  it.each(cases)('%s', async (_name, init, code) => {
    expectError(await request(base, messagesPath, init), 400, code);
    await expectUnharmed();
  });
});

describe('404 for an unknown route', () => {
  it.each([
    ['GET', '/api/nope'],
    ['GET', '/api/room'],
    ['GET', '/api/sessions/nope'],
    ['GET', `/api/rooms/${room}/messages/extra`],
    ['GET', '/nope'],
    ['POST', '/nope'],
  ])('%s %s', async (method, path) => {
    expectError(await request(base, path, { method }), 404, 'not_found');
    await expectUnharmed();
  });
});

describe('405 for a wrong method on a known path', () => {
  const allowOf = (res: { headers: Headers }) => (res.headers.get('allow') ?? '').split(/\s*,\s*/);

  it.each(['DELETE', 'PUT', 'PATCH'])('%s on /api/rooms/:room/messages', async (method) => {
    const res = await request(base, messagesPath, { method });
    expectError(res, 405, 'method_not_allowed');
    expect(allowOf(res)).toEqual(expect.arrayContaining(['GET', 'POST']));
    await expectUnharmed();
  });

  it('POST on /api/rooms/:room', async () => {
    const res = await request(base, `/api/rooms/${room}`, json({ author: 'a', text: 'x' }));
    expectError(res, 405, 'method_not_allowed');
    expect(allowOf(res)).toContain('GET');
    expect(allowOf(res)).not.toContain('POST');
    await expectUnharmed();
  });
});

describe('413 for a body over the limit', () => {
  it('as JSON and as a form', async () => {
    const text = 'x'.repeat(BODY_LIMIT + 100);
    expectError(await request(base, messagesPath, json({ author: 'a', text })), 413, 'body_too_large');
    const form = { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `author=a&text=${text}` };
    expectError(await request(base, messagesPath, form), 413, 'body_too_large');
    await expectUnharmed();
  });

  /**
   * Streams a body in chunks until the answer arrives or `total` bytes were
   * sent; resolves with the answer, rejects on a socket error (a reset).
   */
  async function streamBody(headers: Record<string, string>, total: number, chunkSize = 512): Promise<{ res: RawResponse; sent: number }> {
    const { req, response } = rawRequest(base, messagesPath, { method: 'POST', headers });
    let answered = false;
    response.then(() => (answered = true), () => (answered = true));
    let sent = 0;
    // The content does not matter: the answer comes before any parsing.
    const chunk = Buffer.alloc(chunkSize, 'x');
    while (sent < total && !answered) {
      const piece = chunk.subarray(0, Math.min(chunkSize, total - sent));
      if (!req.write(piece)) await new Promise((resolve) => req.once('drain', resolve));
      sent += piece.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    req.end();
    return { res: await response, sent };
  }

  const expectRaw413 = (res: RawResponse) => {
    expect(res.status).toBe(413);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(res.body) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('body_too_large');
    expect(body.error.message).not.toBe('');
  };

  it('seen by a client still sending a chunked body, not a reset', async () => {
    const { res } = await streamBody({ 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, 64 * 1024);
    expectRaw413(res);
    await expectUnharmed();
  });

  it('seen by a client still sending a body with a too large Content-Length, not a reset', async () => {
    const total = 64 * 1024;
    const { res } = await streamBody({ 'Content-Type': 'application/json', 'Content-Length': String(total) }, total);
    expectRaw413(res);
    await expectUnharmed();
  });

  it('415 is also seen by a client still sending its body', async () => {
    const total = BODY_LIMIT;
    const { res } = await streamBody({ 'Content-Type': 'text/plain', 'Content-Length': String(total) }, total);
    expect(res.status).toBe(415);
    await expectUnharmed();
  });
});

describe('415 for a POST without a supported content type', () => {
  it.each([
    ['missing', { method: 'POST', body: new TextEncoder().encode('{"author":"a","text":"x"}') }],
    ['missing, with no body', { method: 'POST' }],
    ['text/plain', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{"author":"a","text":"x"}' }],
    ['multipart/form-data', { method: 'POST', body: (() => { const f = new FormData(); f.set('author', 'a'); f.set('text', 'x'); return f; })() }],
  ] as [string, RequestInit][])('%s', async (_name, init) => {
    expectError(await request(base, messagesPath, init), 415, 'unsupported_media_type');
    await expectUnharmed();
  });
});

describe('429 when posting too fast', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({ postRate: 1, postBurst: 2 });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('answers the post past the burst with 429 and Retry-After, storing nothing', async () => {
    const r = newRoom();
    expect((await post(limited.baseUrl, r, { author: 'a', text: '1' })).status).toBe(201);
    expect((await post(limited.baseUrl, r, { author: 'a', text: '2' })).status).toBe(201);
    const third = await post(limited.baseUrl, r, { author: 'a', text: '3' });
    expectError(third, 429, 'rate_limited');
    expectRetryAfter(third.headers.get('retry-after'));
    expect((await roomInfo(limited.baseUrl, r)).head).toBe(2);
    // Reading is not limited.
    expect((await poll(limited.baseUrl, r)).status).toBe(200);
  });

  it('counts per user when signed in: two users behind one address each get their own budget', async () => {
    const other = await startTestServer({ postRate: 1, postBurst: 2 });
    try {
      const r = newRoom();
      // The two sessions take the address's budget; the users' posts have budgets of their own.
      const [ann, bob] = [await signIn(other.baseUrl, 'Ann'), await signIn(other.baseUrl, 'Bob')];
      for (const { token } of [ann, ann, bob, bob]) {
        expect((await postAs(other.baseUrl, `/api/rooms/${r}/messages`, token, { text: 'x' })).status).toBe(201);
      }
      expectError(await postAs(other.baseUrl, `/api/rooms/${r}/messages`, ann.token, { text: 'x' }), 429, 'rate_limited');
      expectError(await postAs(other.baseUrl, `/api/rooms/${r}/messages`, bob.token, { text: 'x' }), 429, 'rate_limited');
      expect((await roomInfo(other.baseUrl, r)).head).toBe(4);
    } finally {
      await other.close();
    }
  });

  it('counts new guest sessions against the address, so minting users does not multiply the rate', async () => {
    const other = await startTestServer({ postRate: 1, postBurst: 2 });
    try {
      await signIn(other.baseUrl, 'One');
      await signIn(other.baseUrl, 'Two');
      expectError(await postAs(other.baseUrl, '/api/sessions', undefined, { name: 'Three' }), 429, 'rate_limited');
    } finally {
      await other.close();
    }
  });

  it('never refuses leaving a room for the rate', async () => {
    const other = await startTestServer({ postRate: 1, postBurst: 3 });
    try {
      const ann = await signIn(other.baseUrl, 'Ann');
      const { room } = (await postAs<{ room: string }>(other.baseUrl, '/api/rooms', ann.token, {})).body;
      for (const text of ['x', 'y']) expect((await postAs(other.baseUrl, `/api/rooms/${room}/messages`, ann.token, { text })).status).toBe(201);
      expectError(await postAs(other.baseUrl, `/api/rooms/${room}/messages`, ann.token, { text: 'z' }), 429, 'rate_limited');
      expect((await postAs(other.baseUrl, `/api/rooms/${room}/leave`, ann.token)).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});

describe('503 over capacity', () => {
  let small: TestServer;
  const controllers: AbortController[] = [];
  beforeAll(async () => {
    small = await startTestServer({ capacity: 2 });
  });
  afterEach(() => {
    for (const c of controllers.splice(0)) c.abort();
  });
  afterAll(async () => {
    await small?.close();
  });

  it('refuses a poll past capacity with 503 over_capacity and Retry-After, and recovers', async () => {
    const r = newRoom();
    const held = [0, 1].map(() => {
      const c = new AbortController();
      controllers.push(c);
      const p = poll(small.baseUrl, r, { after: 0, timeout: 20 }, { signal: c.signal });
      p.catch(() => {});
      return p;
    });
    await waitParked(small.baseUrl, 2);

    const third = await poll(small.baseUrl, r, { after: 0, timeout: 20 });
    expectError(third, 503, 'over_capacity');
    expectRetryAfter(third.headers.get('retry-after'));
    expect(small.chat.parked).toBe(2);

    // Posting still works and answers the parked polls, which frees the places.
    const m = await post(small.baseUrl, r, { author: 'a', text: 'x' });
    expect(m.status).toBe(201);
    for (const res of await Promise.all(held)) expect(res.body.messages).toEqual([m.body.message]);
    await waitParked(small.baseUrl, 0);
    const again = await poll(small.baseUrl, r, { after: 0, timeout: 0 });
    expect(again.status).toBe(200);
  });
});
