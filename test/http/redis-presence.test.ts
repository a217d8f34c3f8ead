// Presence and typing across two server instances sharing one Redis: who is
// online and who is typing is one list, whichever instance a user's sync or
// typing reaches, and a user who stops polling on one is reported gone on the
// other once the online window has passed.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { newRoom, postAs, signIn, track, waitParked, type Res, type TestServer } from './util.js';

const env = inject('redis');

interface User {
  id: string;
  name: string;
}

interface Entry {
  last: number;
  epoch: string;
  messages: { text: string }[];
  state: string;
  online: User[];
  onlineCount: number;
  typing: User[];
}

type SyncBody = { rooms: Record<string, Entry> };

describe.skipIf(env.skip)('presence and typing on two instances on one Redis', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    const config = { store: 'redis' as const, redisUrl: env.url, redisPrefix: `${env.prefix}presence:`, onlineWindow: 1, maxTimeout: 30 };
    a = await startTestServer(config);
    b = await startTestServer(config);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  const sync = (server: TestServer, token: string, rooms: Record<string, unknown>, timeout = 20): Promise<Res<SyncBody>> =>
    postAs<SyncBody>(server.baseUrl, '/api/sync', token, { rooms, timeout });
  const cursor = ({ last, epoch, state }: Entry) => ({ after: last, epoch, state });
  const byId = (users: User[]) => [...users].sort((x, y) => (x.id < y.id ? -1 : 1));

  it('share one online list and one typing list, and wake each other\'s syncs with their changes', async () => {
    const room = newRoom('presence');
    const ann = await signIn(a.baseUrl, 'Ann');
    const bob = await signIn(b.baseUrl, 'Bob');
    // ann's first sync marks her online through A.
    const annJoin = (await sync(a, ann.token, { [room]: {} }, 0)).body.rooms[room]!;
    expect(annJoin.online).toEqual([ann.user]);
    const annHeld = track(sync(a, ann.token, { [room]: cursor(annJoin) }));
    await waitParked(a.baseUrl, 1);

    // bob joins through B: he sees ann (written by A), and ann's sync on A is woken by him.
    await sync(b, bob.token, { [room]: {} }, 0);
    const seenByAnn = (await annHeld.promise).body.rooms[room]!;
    expect(seenByAnn.online).toEqual(byId([ann.user, bob.user]));
    const bobView = (await sync(b, bob.token, { [room]: {} }, 0)).body.rooms[room]!;
    expect(bobView.online).toEqual(byId([ann.user, bob.user]));
    // Both instances give the same lists the same state.
    expect(bobView.state).toBe(seenByAnn.state);

    // ann types through A; bob's sync held on B hears of it.
    const bobHeld = track(sync(b, bob.token, { [room]: cursor(bobView) }));
    await waitParked(b.baseUrl, 1);
    expect((await postAs(a.baseUrl, `/api/rooms/${room}/typing`, ann.token, { typing: true })).status).toBe(204);
    const typing = (await bobHeld.promise).body.rooms[room]!;
    expect(typing.typing).toEqual([ann.user]);
    expect(typing.messages).toEqual([]);

    // Her post through A ends her typing: bob gets the message and the empty list in one answer.
    const bobAgain = track(sync(b, bob.token, { [room]: cursor(typing) }));
    await waitParked(b.baseUrl, 1);
    expect((await postAs(a.baseUrl, `/api/rooms/${room}/messages`, ann.token, { text: 'hello from A' })).status).toBe(201);
    const posted = (await bobAgain.promise).body.rooms[room]!;
    expect(posted.messages.map((m) => m.text)).toEqual(['hello from A']);
    expect(posted.typing).toEqual([]);

    // ann stops polling on A: once the window (1 s) and the grace after her last poll pass, B reports her gone.
    const gone = (await sync(b, bob.token, { [room]: cursor(posted) })).body.rooms[room]!;
    expect(gone.online).toEqual([bob.user]);
    expect(gone.onlineCount).toBe(1);
  });
});
