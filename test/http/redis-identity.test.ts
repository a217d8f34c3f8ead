// Identity and private rooms across two server instances sharing one Redis,
// as behind a load balancer with no sticky sessions: a token from one is good
// on the other, membership changed on one holds on the other at once, and the
// posting limit is one limit, not one per instance.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { expectError, getAs, newRoom, postAs, signIn, track, waitParked, type PollBody, type TestServer } from './util.js';

const env = inject('redis');

describe.skipIf(env.skip)('two instances on one Redis', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    // No --auth-secret: the first instance generates the secret and keeps it in Redis, the second finds it there.
    const config = { store: 'redis' as const, redisUrl: env.url, redisPrefix: `${env.prefix}identity:`, anonymousPosts: false, postRate: 1, postBurst: 4 };
    a = await startTestServer(config);
    b = await startTestServer(config);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('accept each other\'s tokens (one secret, kept in the store)', async () => {
    const ann = await signIn(a.baseUrl, 'Ann');
    const res = await postAs<{ message: { authorId: string } }>(b.baseUrl, `/api/rooms/${newRoom()}/messages`, ann.token, { text: 'hi' });
    expect(res.status, res.text).toBe(201);
    expect(res.body.message.authorId).toBe(ann.user.id);
  });

  it('see a member added on one read the room through the other, and a removed one refused there, ending their held poll', async () => {
    const ann = await signIn(a.baseUrl, 'Ann');
    const bob = await signIn(a.baseUrl, 'Bob');
    const created = await postAs<{ room: string }>(a.baseUrl, '/api/rooms', ann.token, { title: 'shared' });
    const { room } = created.body;
    expectError(await getAs(b.baseUrl, `/api/rooms/${room}/messages`, bob.token), 404, 'not_found');

    expect((await postAs(a.baseUrl, `/api/rooms/${room}/members`, ann.token, { userId: bob.user.id, name: 'Bob' })).status).toBe(200);
    const joined = await getAs<PollBody>(b.baseUrl, `/api/rooms/${room}/messages`, bob.token);
    expect(joined.status, joined.text).toBe(200);
    const list = await getAs<{ rooms: { room: string }[] }>(b.baseUrl, '/api/rooms', bob.token);
    expect(list.body.rooms.map((r) => r.room)).toContain(room);

    const held = track(getAs(b.baseUrl, `/api/rooms/${room}/messages?after=${joined.body.last}&epoch=${joined.body.epoch}&timeout=60`, bob.token));
    await waitParked(b.baseUrl, 1);
    expect((await postAs(a.baseUrl, `/api/rooms/${room}/members/remove`, ann.token, { userId: bob.user.id })).status).toBe(200);
    expectError(await held.promise, 404, 'not_found');
    expectError(await getAs(b.baseUrl, `/api/rooms/${room}/messages`, bob.token), 404, 'not_found');
    expectError(await postAs(b.baseUrl, `/api/rooms/${room}/messages`, bob.token, { text: 'still here?' }), 404, 'not_found');
  });

  it('count one posting limit for a user across both instances', async () => {
    const cy = await signIn(a.baseUrl, 'Cy');
    const room = newRoom();
    for (const [i, server] of [a, b, a, b].entries()) {
      expect((await postAs(server.baseUrl, `/api/rooms/${room}/messages`, cy.token, { text: `${i}` })).status).toBe(201);
    }
    // Each instance alone would allow a burst of 4; together they allow 4.
    expectError(await postAs(a.baseUrl, `/api/rooms/${room}/messages`, cy.token, { text: 'one too many' }), 429, 'rate_limited');
    expectError(await postAs(b.baseUrl, `/api/rooms/${room}/messages`, cy.token, { text: 'one too many' }), 429, 'rate_limited');
  });
});
