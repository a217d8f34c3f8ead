// Redis going away under a running server process, and coming back empty (it
// keeps nothing on disk here): nothing hangs, nothing is acknowledged that was
// not stored, the process stays up and recovers by itself.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedisServer, startServerProcess, type RedisProcess, type ServerProcess } from '../helpers/processes.js';
import { expectError, expectRetryAfter, parkedPolls, poll, post, request, send, waitFor, waitParked } from '../http/util.js';

const env = inject('redis');

describe.skipIf(env.skipOwnServer)('a Redis that goes away and comes back', () => {
  let redis: RedisProcess;
  let server: ServerProcess;
  beforeAll(async () => {
    redis = await startRedisServer();
    server = await startServerProcess(['--store', 'redis', '--redis-url', redis.url]);
  });
  afterAll(async () => {
    await server?.kill();
    await redis?.kill();
  });

  it('answers parked polls, refuses posts with 503, says so in /healthz, and recovers without a restart', async () => {
    const room = 'outage';
    const before = await send(server.url, room, 'before');
    const { epoch } = (await poll(server.url, room)).body;

    const held = poll(server.url, room, { after: before.seq, epoch, timeout: 30 });
    await waitParked(server.url, 1);
    await redis.kill();

    const answered = await held;
    expectError(answered, 503, 'store_unavailable');
    expectRetryAfter(answered.headers.get('retry-after'));
    expect(await parkedPolls(server.url)).toBe(0);

    const health = await request(server.url, '/healthz');
    expect(health.status).toBe(503);
    const refused = await post(server.url, room, { author: 'ann', text: 'while down' });
    expectError(refused, 503, 'store_unavailable');
    expectRetryAfter(refused.headers.get('retry-after'));
    expectError(await poll(server.url, room, { after: before.seq, timeout: 5 }), 503, 'store_unavailable');
    expect(server.child.exitCode).toBeNull();

    await redis.restart();
    await waitFor(async () => (await request(server.url, '/healthz')).status === 200, '/healthz to answer 200 again', 15_000);

    // Redis came back empty: the room starts again at seq 1 under a new epoch, and the old cursor is reset.
    const again = await send(server.url, room, 'after');
    expect(again.seq).toBe(1);
    const reset = await poll(server.url, room, { after: before.seq, epoch, timeout: 5 });
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ reset: true, messages: [again], last: 1 });
    expect(reset.body.epoch).not.toBe(epoch);

    // Change signals work again.
    const parked = poll(server.url, room, { after: 1, epoch: reset.body.epoch, timeout: 30 });
    await waitParked(server.url, 1);
    const woken = await send(server.url, room, 'woken');
    expect((await parked).body.messages).toEqual([woken]);

    expect(server.output()).toMatch(/Redis connection \(commands\) lost/);
    expect(server.output()).toMatch(/Redis connection \(commands\) restored/);
  });
});
