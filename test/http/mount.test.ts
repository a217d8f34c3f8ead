// The chat router mounted under a path of another Express app.
import express from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokens } from '../../src/auth/tokens.js';
import { Chat } from '../../src/core/chat.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import { createChatRouter } from '../../src/http/router.js';
import { silentLog } from '../../src/log.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { expectError, expectNoCache, newRoom, request, waitFor, type PollBody, type PostBody } from './util.js';

let server: Server;
let chat: Chat;
let base: string;
const store = new MemoryStore({ retention: 100, maxRooms: 100 });
const tokens = new Tokens({ secret: new TextEncoder().encode('a test secret of at least 32 bytes'), lifetimeMs: 3_600_000 });

beforeAll(async () => {
  chat = new Chat(store, { maxTextLength: 4000, capacity: 100, retryAfter: 2, anonymousPosts: true, requireAuthToRead: false, onlineWindowMs: 30_000, directKey: new Uint8Array(32) });
  const app = express();
  app.get('/', (_req, res) => {
    res.type('text/plain').send('outer app');
  });
  app.use('/chat', createChatRouter(chat, { defaultTimeout: 25, maxTimeout: 60, bodyLimit: 64 * 1024, corsOrigins: [], tokens, guestSessions: true, syncMaxRooms: 100, log: silentLog }));
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  chat?.shutdown();
  if (!server) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
});

describe('the router mounted at /chat', () => {
  it('posts and joins under /chat/api', async () => {
    const room = newRoom();
    const posted = await request<PostBody>(base, `/chat/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ author: 'a', text: 'mounted' }),
    });
    expect(posted.status).toBe(201);
    expect(posted.body.message).toMatchObject({ seq: 1, room, text: 'mounted' });

    const join = await request<PollBody>(base, `/chat/api/rooms/${room}/messages`);
    expect(join.status).toBe(200);
    expect(join.body.messages).toEqual([posted.body.message]);
    expect(join.body.last).toBe(1);
    expectNoCache(join);
  });

  it('holds and wakes a poll under /chat/api', async () => {
    const room = newRoom();
    const held = request<PollBody>(base, `/chat/api/rooms/${room}/messages?after=0&timeout=10`);
    await waitFor(() => chat.parked === 1, 'the poll to park');
    const posted = await request<PostBody>(base, `/chat/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'author=a&text=wake',
    });
    expect((await held).body.messages).toEqual([posted.body.message]);
  });

  it('answers its own JSON errors under /chat/api', async () => {
    expectError(await request(base, '/chat/api/nope'), 404, 'not_found');
    expectError(await request(base, '/chat/api/rooms/x/messages?after=-1'), 400, 'invalid_parameter');
    expectError(await request(base, '/chat/api/rooms/x/messages', { method: 'DELETE' }), 405, 'method_not_allowed');
  });

  it('redirects /chat to /chat/ with 308, keeping the query', async () => {
    const res = await fetch(`${base}/chat`, { redirect: 'manual' });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe('/chat/');
    const withQuery = await fetch(`${base}/chat?room=lobby`, { redirect: 'manual' });
    expect(withQuery.status).toBe(308);
    expect(withQuery.headers.get('location')).toBe('/chat/?room=lobby');
  });

  it('serves the page at /chat/ and leaves the outer app its own routes', async () => {
    const page = await fetch(`${base}/chat/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const outer = await fetch(`${base}/`);
    expect(await outer.text()).toBe('outer app');
  });
});

describe('the standalone server, which serves polls without Express, and the mounted router', () => {
  let standalone: TestServer;
  beforeAll(async () => {
    standalone = await startTestServer({}, { store });
  });
  afterAll(async () => {
    await standalone?.close();
  });

  it('answer the same poll requests with the same status and body', async () => {
    const room = newRoom('same');
    for (const text of ['one', 'two', 'three']) await chat.post(room, { author: 'a', text }, undefined);
    const queries = [
      '', '?limit=2', '?after=1&timeout=0', '?after=3&timeout=0', '?after=99&timeout=0', '?before=3', '?before=3&limit=1',
      '?after=1&timeout=0&t=123', '?after=1&before=2', '?after=-1', '?after=1&after=2', '?epoch=', '?limit=0', '?timeout=x&after=0',
      '?after=0&epoch=other&timeout=0',
    ];
    const paths = [...queries.map((q) => `/api/rooms/${room}/messages${q}`), '/api/rooms/%ZZ/messages', '/api/rooms/bad!room/messages?after=0'];
    for (const path of paths) {
      const [direct, mounted] = await Promise.all([request(standalone.baseUrl, path), request(base, `/chat${path}`)]);
      expect({ path, status: direct.status, body: direct.body }).toEqual({ path, status: mounted.status, body: mounted.body });
    }
  });
});
