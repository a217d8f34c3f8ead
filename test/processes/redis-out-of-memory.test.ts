// A Redis that still answers PING and reads but refuses every write (out of
// memory under `noeviction`, as the README asks it to be set): /healthz says
// 503 before any post has failed, posts get 503, and all is well again once
// Redis has room.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedisServer, startServerProcess, type RedisProcess, type ServerProcess } from '../helpers/processes.js';
import { expectError, poll, post, request, send } from '../http/util.js';

const env = inject('redis');

describe.skipIf(env.skipOwnServer)('a Redis out of memory', () => {
  let redis: RedisProcess;
  let admin: Redis;
  let server: ServerProcess;
  beforeAll(async () => {
    redis = await startRedisServer(['--maxmemory-policy', 'noeviction']);
    admin = new Redis(redis.url);
    server = await startServerProcess(['--store', 'redis', '--redis-url', redis.url]);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.kill();
    await redis?.kill();
  });

  it('fails /healthz although PING and reads still work, refuses posts, and recovers', async () => {
    const room = 'full';
    const before = await send(server.url, room, 'before');
    expect((await request(server.url, '/healthz')).status).toBe(200);

    // Any memory in use is now over the limit: Redis refuses writes and still serves reads.
    await admin.config('SET', 'maxmemory', '1');
    expect(await admin.ping()).toBe('PONG');
    const health = await request(server.url, '/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ ok: false, error: { code: 'store_unavailable' } });
    expect((await poll(server.url, room)).body.messages).toEqual([before]);
    expectError(await post(server.url, room, { author: 'ann', text: 'no room for me' }), 503, 'store_unavailable');

    await admin.config('SET', 'maxmemory', '0');
    expect((await post(server.url, room, { author: 'ann', text: 'room again' })).status).toBe(201);
    expect((await request(server.url, '/healthz')).status).toBe(200);
    expect(server.output()).toMatch(/OOM/);
  });
});
