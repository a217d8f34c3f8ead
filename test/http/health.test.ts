// /healthz says whether the store can take messages, not only whether it
// answers; an expected failure that every request meets is logged as one
// line now and then, with its cause and no stack.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/core/memory-store.js';
import { StoreUnavailableError } from '../../src/core/store.js';
import type { Draft } from '../../src/core/types.js';
import { startTestServer } from '../helpers/server.js';
import { expectError, newRoom, post, request, type TestServer } from './util.js';

/** A memory store whose appends, or whose own write probe, fail on demand as a full disk makes them. */
class FailingStore extends MemoryStore {
  failAppends = false;
  failProbe = false;

  override append(room: string, draft: Draft, now: number) {
    if (this.failAppends) return Promise.reject(new StoreUnavailableError('SQLite: database or disk is full (SQLITE_FULL)', { refused: true }));
    return super.append(room, draft, now);
  }

  override async ping(): Promise<void> {
    if (this.failProbe) throw new StoreUnavailableError('SQLite: attempt to write a readonly database (SQLITE_READONLY)');
  }
}

const store = new FailingStore({ retention: 100, maxRooms: 100 });
let srv: TestServer;

beforeAll(async () => {
  srv = await startTestServer({}, { store });
});

afterAll(async () => {
  await srv?.close();
});

const health = () => request<{ ok: boolean; error?: { code: string } }>(srv.baseUrl, '/healthz');
const lines = (kind: string) => srv.logs.filter((line) => line.startsWith(kind));

describe('/healthz', () => {
  it('answers 503 while posts fail for want of space, and 200 once one succeeds again', async () => {
    const room = newRoom('full');
    expect((await health()).status).toBe(200);

    store.failAppends = true;
    for (let i = 0; i < 20; i++) expectError(await post(srv.baseUrl, room, { author: 'ann', text: `m${i}` }), 503, 'store_unavailable');
    const sick = await health();
    expect(sick.status).toBe(503);
    expect(sick.body).toMatchObject({ ok: false, error: { code: 'store_unavailable' } });

    store.failAppends = false;
    expect((await post(srv.baseUrl, room, { author: 'ann', text: 'space again' })).status).toBe(201);
    expect((await health()).status).toBe(200);
  });

  it('answers 503 when the store refuses its write probe although it reads', async () => {
    store.failProbe = true;
    try {
      expect((await health()).status).toBe(503);
      expect((await request(srv.baseUrl, `/api/rooms/${newRoom('reads')}`)).status).toBe(200);
    } finally {
      store.failProbe = false;
    }
    expect((await health()).status).toBe(200);
  });
});

describe('the log of an expected failure', () => {
  it('has one line for twenty failed posts, naming the cause, with no stack', () => {
    const unavailable = lines('message store unavailable');
    expect(unavailable).toHaveLength(1);
    expect(unavailable[0]).toContain('SQLITE_FULL');
    expect(lines('health check failed')).toHaveLength(1);
    for (const line of srv.logs) expect(line).not.toMatch(/\n\s+at /);
  });
});
