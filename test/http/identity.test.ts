// Identity on a real server (protocol "Identity"): guest sessions, refresh,
// posting as the token's user only, and every kind of bad token refused as
// 401 invalid_token on every route, never taken for no token, changing no
// room and leaving no poll parked.
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPublicKeys } from '../../src/auth/keys.js';
import { Tokens } from '../../src/auth/tokens.js';
import { startTestServer } from '../helpers/server.js';
import {
  bearer,
  expectError,
  getAs,
  newRoom,
  parkedPolls,
  postAs,
  rawRequest,
  request,
  roomInfo,
  signIn,
  type PollBody,
  type PostBody,
  type SessionBody,
  type TestServer,
} from './util.js';

const SECRET = 'the deployment secret, 32 bytes or more';
const enc = new TextEncoder();
const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

let srv: TestServer;
let base: string;
let dir: string;
let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
let ed: Awaited<ReturnType<typeof generateKeyPair>>;
let rsaPem: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chat-keys-'));
  rsa = await generateKeyPair('RS256', { extractable: true });
  ed = await generateKeyPair('EdDSA', { extractable: true });
  rsaPem = await exportSPKI(rsa.publicKey);
  const file = join(dir, 'app-keys.pem');
  await writeFile(file, `${rsaPem}\n${await exportSPKI(ed.publicKey)}`);
  srv = await startTestServer({ anonymousPosts: false, authSecret: SECRET, authPublicKey: file });
  base = srv.baseUrl;
});

afterAll(async () => {
  await srv?.close();
});

/** A token signed with the deployment's secret, claims as given. */
function ownToken(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(enc.encode(secret));
}

describe('guest sessions', () => {
  it('give a token, a new user id and the expiry, 24 hours on', async () => {
    const before = Date.now();
    const session = await signIn(base, 'Ann');
    expect(session.user.name).toBe('Ann');
    expect(session.user.id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(session.token.split('.')).toHaveLength(3);
    expect(session.expiresAt).toBeGreaterThanOrEqual(before + 24 * 3600_000 - 1000);
    expect(session.expiresAt).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
    expect((await signIn(base, 'Ann')).user.id).not.toBe(session.user.id);
  });

  it('take the name as a form too', async () => {
    const res = await request<SessionBody>(base, '/api/sessions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'name=Bo%20B',
    });
    expect(res.status).toBe(201);
    expect(res.body.user.name).toBe('Bo B');
  });

  it.each([[{}], [{ name: '' }], [{ name: 'a\u0000b' }], [{ name: 'x'.repeat(65) }], [{ name: 7 }]])('refuse a bad name %j with 400', async (body) => {
    expectError(await postAs(base, '/api/sessions', undefined, body), 400, 'invalid_body');
  });

  it('refresh to a new token for the same user', async () => {
    const session = await signIn(base, 'Cy');
    const res = await postAs<SessionBody>(base, '/api/sessions/refresh', session.token);
    expect(res.status, res.text).toBe(201);
    expect(res.body.user).toEqual(session.user);
    const posted = await postAs<PostBody>(base, `/api/rooms/${newRoom()}/messages`, res.body.token, { text: 'hi' });
    expect(posted.body.message.authorId).toBe(session.user.id);
  });

  it('refresh a token the application minted to one for the same user, without the rooms it granted', async () => {
    const appToken = await new SignJWT({ name: 'app user', rooms: ['p_teamRoom'] })
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('app-9')
      .setExpirationTime('1m')
      .sign(rsa.privateKey);
    expect((await getAs(base, '/api/rooms/p_teamRoom/messages', appToken)).status).toBe(200);
    const refreshed = await postAs<SessionBody>(base, '/api/sessions/refresh', appToken);
    expect(refreshed.status, refreshed.text).toBe(201);
    expect(refreshed.body.user).toEqual({ id: 'app-9', name: 'app user' });
    expectError(await getAs(base, '/api/rooms/p_teamRoom/messages', refreshed.body.token), 404, 'not_found');
  });

  it('refresh needs a token', async () => {
    const res = await postAs(base, '/api/sessions/refresh', undefined);
    expectError(res, 401, 'unauthenticated');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="chat"');
  });

  it('answer 403 guest_sessions_disabled when turned off, for sessions and refresh', async () => {
    const off = await startTestServer({ guestSessions: false, authSecret: SECRET });
    try {
      expectError(await postAs(off.baseUrl, '/api/sessions', undefined, { name: 'Ann' }), 403, 'guest_sessions_disabled');
      const token = await ownToken({ sub: 'u1', name: 'Ann', exp: inAnHour() });
      expectError(await postAs(off.baseUrl, '/api/sessions/refresh', token), 403, 'guest_sessions_disabled');
      // Tokens an application mints with the shared secret still work.
      const res = await postAs<PostBody>(off.baseUrl, `/api/rooms/${newRoom()}/messages`, token, { text: 'hi' });
      expect(res.status, res.text).toBe(201);
    } finally {
      await off.close();
    }
  });
});

describe('--require-auth-to-read', () => {
  it('makes reading a public room need a token: 401 unauthenticated without one, parking nothing', async () => {
    const closed = await startTestServer({ requireAuthToRead: true, authSecret: SECRET });
    try {
      const room = newRoom();
      for (const path of [`/api/rooms/${room}/messages`, `/api/rooms/${room}/messages?after=0&timeout=30`, `/api/rooms/${room}`]) {
        const res = await getAs(closed.baseUrl, path, undefined);
        expectError(res, 401, 'unauthenticated');
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="chat"');
      }
      expect(await parkedPolls(closed.baseUrl)).toBe(0);
      const { token } = await signIn(closed.baseUrl, 'Reader');
      expect((await getAs(closed.baseUrl, `/api/rooms/${room}/messages`, token)).status).toBe(200);
    } finally {
      await closed.close();
    }
  });
});

describe('posting', () => {
  it('takes author and authorId from the token, ignoring the body\'s author', async () => {
    const { token, user } = await signIn(base, 'Dee');
    const room = newRoom();
    const res = await postAs<PostBody>(base, `/api/rooms/${room}/messages`, token, { text: 'hello', author: 'Mallory' });
    expect(res.status, res.text).toBe(201);
    expect(res.body.message).toMatchObject({ author: 'Dee', authorId: user.id, text: 'hello' });
    const read = await getAs<PollBody>(base, `/api/rooms/${room}/messages`, undefined);
    expect(read.body.messages[0]).toMatchObject({ author: 'Dee', authorId: user.id });
  });

  it('takes the token as a form field (navigator.sendBeacon, HTML forms)', async () => {
    const { token, user } = await signIn(base, 'Eve');
    const room = newRoom();
    const res = await request<PostBody>(base, `/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, text: 'by form' }).toString(),
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.message.authorId).toBe(user.id);
  });

  it('refuses a token in both the header and the body', async () => {
    const { token } = await signIn(base, 'Fay');
    const room = newRoom();
    expectError(await postAs(base, `/api/rooms/${room}/messages`, token, { token, text: 'x' }), 400, 'bad_request');
    expect((await roomInfo(base, room)).head).toBe(0);
  });

  it('is 401 unauthenticated without a token, storing nothing', async () => {
    const room = newRoom();
    const res = await postAs(base, `/api/rooms/${room}/messages`, undefined, { author: 'ann', text: 'hi' });
    expectError(res, 401, 'unauthenticated');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="chat"');
    expect((await roomInfo(base, room)).head).toBe(0);
  });

  it('ignores an Authorization scheme other than Bearer (a Basic-auth gate in front)', async () => {
    const room = newRoom();
    const res = await request(base, `/api/rooms/${room}/messages`, { headers: { Authorization: 'Basic YTpi' } });
    expect(res.status).toBe(200);
  });
});

describe('application-minted tokens (--auth-public-key)', () => {
  it('accepts RS256 and EdDSA tokens signed with the configured keys', async () => {
    for (const [alg, key] of [['RS256', rsa.privateKey], ['EdDSA', ed.privateKey]] as const) {
      const token = await new SignJWT({ name: `app ${alg}` }).setProtectedHeader({ alg }).setSubject('app-user-1').setExpirationTime('1h').sign(key);
      const res = await postAs<PostBody>(base, `/api/rooms/${newRoom()}/messages`, token, { text: 'from the app' });
      expect(res.status, res.text).toBe(201);
      expect(res.body.message).toMatchObject({ author: `app ${alg}`, authorId: 'app-user-1' });
    }
  });

  it('reads ES256 keys from a JSON Web Key Set', async () => {
    const es = await generateKeyPair('ES256', { extractable: true });
    const file = join(dir, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [{ ...(await exportJWK(es.publicKey)), kid: 'k1' }] }));
    const tokens = new Tokens({ secret: enc.encode(SECRET), publicKeys: await loadPublicKeys(file), lifetimeMs: 60_000 });
    const token = await new SignJWT({ name: 'Gil' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject('g1').setExpirationTime('1h').sign(es.privateKey);
    expect(await tokens.verify(token)).toMatchObject({ id: 'g1', name: 'Gil' });
  });

  it('refuses key files that hold a private key or nothing usable', async () => {
    const privateFile = join(dir, 'private.json');
    await writeFile(privateFile, JSON.stringify({ keys: [await exportJWK(rsa.privateKey)] }));
    await expect(loadPublicKeys(privateFile)).rejects.toThrow(/private key/);
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'hello');
    await expect(loadPublicKeys(junk)).rejects.toThrow(/neither/);
  });
});

describe('bad tokens', () => {
  const claims = () => ({ sub: 'user-1', name: 'Ann', exp: inAnHour() });
  const cases: [string, () => Promise<string>][] = [
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`],
    [
      'HS256 signed with the configured RS256 public key (algorithm confusion)',
      () => new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(enc.encode(rsaPem)),
    ],
    ['expired', () => ownToken({ ...claims(), exp: Math.floor(Date.now() / 1000) - 60 })],
    ['nbf in the future', () => ownToken({ ...claims(), nbf: Math.floor(Date.now() / 1000) + 600 })],
    ['signed with another secret', () => ownToken(claims(), 'another secret, also 32 bytes long!')],
    ['20 kB long', () => ownToken({ ...claims(), pad: 'x'.repeat(20_000) })],
    ['a sub that is not a user id', () => ownToken({ ...claims(), sub: '../etc/passwd' })],
    ['no exp', () => ownToken({ sub: 'user-1', name: 'Ann' })],
    ['no name', () => ownToken({ sub: 'user-1', exp: inAnHour() })],
    ['a rooms claim that is not a list of p_ rooms', () => ownToken({ ...claims(), rooms: ['lobby'] })],
    ['not a JWT', async () => 'not-a-jwt'],
    ['RS256 signed with a key not configured', async () => {
      const other = await generateKeyPair('RS256');
      return new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(other.privateKey);
    }],
  ];

  /** Every route a token reaches, with the token in the body where the route reads one. */
  const routes = (room: string): [string, (token: string) => Promise<Awaited<ReturnType<typeof request>>>][] => [
    ['post (header)', (t) => postAs(base, `/api/rooms/${room}/messages`, t, { text: 'x' })],
    ['post (form field)', (t) => request(base, `/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t, text: 'x' }).toString(),
    })],
    ['join', (t) => getAs(base, `/api/rooms/${room}/messages`, t)],
    ['long poll', (t) => getAs(base, `/api/rooms/${room}/messages?after=0&timeout=30`, t)],
    ['history', (t) => getAs(base, `/api/rooms/${room}/messages?before=5`, t)],
    ['info', (t) => getAs(base, `/api/rooms/${room}`, t)],
    ['refresh', (t) => postAs(base, '/api/sessions/refresh', t)],
    ['sessions', (t) => postAs(base, '/api/sessions', t, { name: 'x' })],
    ['rooms list', (t) => getAs(base, '/api/rooms', t)],
    ['create room', (t) => postAs(base, '/api/rooms', t, { title: 't' })],
    ['dms', (t) => postAs(base, '/api/dms', t, { userId: 'someone' })],
    ['members', (t) => getAs(base, '/api/rooms/p_x/members', t)],
  ];

  it.each(cases)('a token %s is 401 invalid_token on every route, changing nothing, parking nothing', async (_name, make) => {
    const token = await make();
    const room = newRoom('bad-token');
    for (const [route, call] of routes(room)) {
      // A 20 kB header is past Node's 16 KiB limit on a request head: refused (431) before any route sees it.
      if (token.length > 16_000 && !route.includes('form')) {
        expectError(await call(token), 431, 'headers_too_large');
        continue;
      }
      const res = await call(token);
      expectError(res, 401, 'invalid_token');
      expect(res.headers.get('www-authenticate'), route).toMatch(/^Bearer realm="chat", error="invalid_token", error_description="[^"\\]+"$/);
    }
    expect((await roomInfo(base, room)).head).toBe(0);
    expect(await parkedPolls(base)).toBe(0);
    const list = await getAs<{ rooms: unknown[] }>(base, '/api/rooms', (await signIn(base, 'Probe')).token);
    expect(list.body.rooms).toEqual([]);
  });

  it.each(['Bearer two words', 'Bearer\tabc.def.ghi', 'bearer', '  Bearer   '])('a malformed Bearer header %j is 401 invalid_token, never no token', async (header) => {
    const res = await request(base, `/api/rooms/${newRoom()}/messages`, { headers: { Authorization: header } });
    expectError(res, 401, 'invalid_token');
  });

  it('an Authorization header given twice is 400 bad_request, whichever comes first', async () => {
    const { token } = await signIn(base, 'Twice');
    const room = newRoom();
    for (const second of [`Bearer ${token}`, 'Bearer expired.or.bad', 'Basic YTpi']) {
      const { req, response } = rawRequest(base, `/api/rooms/${room}/messages`, { method: 'POST', setHost: true });
      req.setHeader('Content-Type', 'application/json');
      req.setHeader('Authorization', [`Bearer ${token}`, second]);
      req.end(JSON.stringify({ text: 'x' }));
      const res = await response;
      expect(res.status, res.body).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe('bad_request');
    }
    expect((await roomInfo(base, room)).head).toBe(0);
  });

  it('an expired token is refused even after it was verified and cached while valid', async () => {
    let now = Date.now();
    const tokens = new Tokens({ secret: enc.encode(SECRET), lifetimeMs: 60_000, now: () => now });
    const { token } = await tokens.issue({ id: 'u', name: 'U' });
    expect((await tokens.verify(token)).id).toBe('u');
    expect(tokens.known(token)?.id).toBe('u');
    now += 120_000;
    expect(tokens.known(token)).toBeUndefined();
    await expect(tokens.verify(token)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('a token is verified once and then served from the cache', async () => {
    const token = await ownToken({ sub: 'cached-1', name: 'Hal', exp: inAnHour() });
    expect(srv.tokens.known(token)).toBeUndefined();
    const res = await request(base, `/api/rooms/${newRoom()}/messages`, { headers: bearer(token) });
    expect(res.status).toBe(200);
    expect(srv.tokens.known(token)).toMatchObject({ id: 'cached-1', name: 'Hal' });
  });
});
