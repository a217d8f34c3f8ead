// Private rooms and direct messages on a real server (protocol "Private
// rooms"): members only, and for everyone else every route of the room
// answers exactly as for a room that does not exist.
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  expectError,
  getAs,
  parkedPolls,
  postAs,
  request,
  signIn,
  track,
  useServer,
  waitParked,
  type PollBody,
  type PostBody,
  type Res,
  type SessionBody,
} from './util.js';

const SECRET = 'the deployment secret, 32 bytes or more';
const server = useServer({ anonymousPosts: false, authSecret: SECRET });

interface Record {
  room: string;
  title: string;
  owner: { id: string; name: string };
  members: { id: string; name: string }[];
}

async function create(token: string, title?: string): Promise<Record> {
  const res = await postAs<Record>(server.base, '/api/rooms', token, title === undefined ? {} : { title });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function add(token: string, room: string, user: SessionBody['user']): Promise<Res<Record>> {
  return postAs<Record>(server.base, `/api/rooms/${room}/members`, token, { userId: user.id, name: user.name });
}

/** Every route of a room as `token` (or anonymous) sees it. */
function everyRoute(room: string, token: string | undefined): Promise<Res<unknown>>[] {
  const base = server.base;
  return [
    getAs(base, `/api/rooms/${room}/messages`, token),
    getAs(base, `/api/rooms/${room}/messages?after=0&timeout=30`, token),
    getAs(base, `/api/rooms/${room}/messages?before=10`, token),
    getAs(base, `/api/rooms/${room}`, token),
    postAs(base, `/api/rooms/${room}/messages`, token, { text: 'let me in', author: 'x' }),
    getAs(base, `/api/rooms/${room}/members`, token),
    postAs(base, `/api/rooms/${room}/members`, token, { userId: 'intruder' }),
    postAs(base, `/api/rooms/${room}/members/remove`, token, { userId: 'intruder' }),
    postAs(base, `/api/rooms/${room}/leave`, token),
  ];
}

describe('a private room', () => {
  it('is created with a server-chosen unguessable name, the caller its owner and first member', async () => {
    const ann = await signIn(server.base, 'Ann');
    const record = await create(ann.token, 'Plans');
    expect(record.room).toMatch(/^p_[A-Za-z0-9_-]{20,}$/);
    expect(record).toEqual({ room: record.room, title: 'Plans', owner: ann.user, members: [ann.user] });
    expect((await create(ann.token)).room).not.toBe(record.room);
  });

  it('needs a token to create', async () => {
    expectError(await postAs(server.base, '/api/rooms', undefined, {}), 401, 'unauthenticated');
  });

  it('answers non-members and anonymous readers on every route exactly as a room that does not exist', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = await create(ann.token);
    await postAs(server.base, `/api/rooms/${room}/messages`, ann.token, { text: 'secret' });
    const missing = 'p_doesNotExist0000000';
    for (const token of [bob.token, undefined]) {
      const [seen, none] = await Promise.all([Promise.all(everyRoute(room, token)), Promise.all(everyRoute(missing, token))]);
      for (const [i, res] of seen.entries()) {
        expectError(res, 404, 'not_found');
        expect(res.text.replaceAll(room, '')).toBe(none[i]!.text.replaceAll(missing, ''));
      }
    }
    expect(await parkedPolls(server.base)).toBe(0);
    // Nothing of theirs got in.
    const read = await getAs<PollBody>(server.base, `/api/rooms/${room}/messages`, ann.token);
    expect(read.body.messages.map((m) => m.text)).toEqual(['secret']);
    const members = await getAs<Record>(server.base, `/api/rooms/${room}/members`, ann.token);
    expect(members.body.members).toEqual([ann.user]);
  });

  it('lets a member add someone, who then reads, posts and sees it in their list', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = await create(ann.token, 'Team');
    const added = await add(ann.token, room, bob.user);
    expect(added.status, added.text).toBe(200);
    expect(added.body.members).toEqual([ann.user, bob.user]);
    const posted = await postAs<PostBody>(server.base, `/api/rooms/${room}/messages`, bob.token, { text: 'hi Ann' });
    expect(posted.status).toBe(201);
    const list = await getAs<{ rooms: Record[] }>(server.base, '/api/rooms', bob.token);
    expect(list.body.rooms.map((r) => r.room)).toContain(room);
  });

  it('lets only the owner remove a member (403 forbidden for anyone else), ending the removed member\'s held poll at once', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const cy = await signIn(server.base, 'Cy');
    const { room } = await create(ann.token);
    await add(ann.token, room, bob.user);
    await add(bob.token, room, cy.user);

    const refused = await postAs(server.base, `/api/rooms/${room}/members/remove`, bob.token, { userId: cy.user.id });
    expectError(refused, 403, 'forbidden');
    const still = await getAs<Record>(server.base, `/api/rooms/${room}/members`, cy.token);
    expect(still.body.members.map((m) => m.id)).toEqual([ann.user.id, bob.user.id, cy.user.id]);

    const before = await parkedPolls(server.base);
    const held = track(getAs(server.base, `/api/rooms/${room}/messages?after=0&timeout=60`, bob.token));
    await waitParked(server.base, before + 1);
    const removed = await postAs<Record>(server.base, `/api/rooms/${room}/members/remove`, ann.token, { userId: bob.user.id });
    expect(removed.status).toBe(200);
    expect(removed.body.members.map((m) => m.id)).toEqual([ann.user.id, cy.user.id]);
    expectError(await held.promise, 404, 'not_found');
    expect(await parkedPolls(server.base)).toBe(before);
    expectError(await getAs(server.base, `/api/rooms/${room}/messages`, bob.token), 404, 'not_found');
    const list = await getAs<{ rooms: Record[] }>(server.base, '/api/rooms', bob.token);
    expect(list.body.rooms.map((r) => r.room)).not.toContain(room);
  });

  it('keeps a member\'s held poll going when someone else is removed, and delivers the next message', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = await create(ann.token);
    await add(ann.token, room, bob.user);
    const before = await parkedPolls(server.base);
    const held = track(getAs<PollBody>(server.base, `/api/rooms/${room}/messages?after=0&timeout=60`, ann.token));
    await waitParked(server.base, before + 1);
    await postAs(server.base, `/api/rooms/${room}/members/remove`, ann.token, { userId: bob.user.id });
    await postAs(server.base, `/api/rooms/${room}/messages`, ann.token, { text: 'still here' });
    const res = await held.promise;
    expect(res.status).toBe(200);
    expect(res.body.messages.map((m) => m.text)).toEqual(['still here']);
  });

  it('lets a member leave; the owner leaving passes ownership to the next member', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = await create(ann.token);
    await add(ann.token, room, bob.user);
    const left = await postAs<Record>(server.base, `/api/rooms/${room}/leave`, ann.token);
    expect(left.status, left.text).toBe(200);
    expect(left.body.owner).toEqual(bob.user);
    expect(left.body.members).toEqual([bob.user]);
    expectError(await getAs(server.base, `/api/rooms/${room}/messages`, ann.token), 404, 'not_found');
  });

  it('lists a member invited without a name by their id until they use the room, then by their own name', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = await create(ann.token);
    const added = await postAs<Record>(server.base, `/api/rooms/${room}/members`, ann.token, { userId: bob.user.id });
    expect(added.body.members[1]).toEqual({ id: bob.user.id, name: bob.user.id });
    // Added again without a name: the name kept stays.
    await postAs(server.base, `/api/rooms/${room}/members`, ann.token, { userId: bob.user.id });
    await getAs(server.base, `/api/rooms/${room}/messages`, bob.token);
    const members = await getAs<Record>(server.base, `/api/rooms/${room}/members`, ann.token);
    expect(members.body.members).toEqual([ann.user, bob.user]);
  });

  it.each([
    ['a userId of the wrong shape', { userId: 'no spaces allowed' }],
    ['no userId', {}],
    ['a name with control characters', { userId: 'u1', name: 'a\nb' }],
  ])('refuses %s with 400, changing nothing', async (_what, body) => {
    const ann = await signIn(server.base, 'Ann');
    const { room } = await create(ann.token);
    expectError(await postAs(server.base, `/api/rooms/${room}/members`, ann.token, body), 400, 'invalid_body');
    const members = await getAs<Record>(server.base, `/api/rooms/${room}/members`, ann.token);
    expect(members.body.members).toEqual([ann.user]);
  });

  it('lets no one rename another member by adding them again', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = await create(ann.token);
    await add(ann.token, room, bob.user);
    const renamed = await postAs<Record>(server.base, `/api/rooms/${room}/members`, bob.token, { userId: ann.user.id, name: 'Fool' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.owner).toEqual(ann.user);
    expect(renamed.body.members).toEqual([ann.user, bob.user]);
  });

  it('lists the caller\'s rooms without their members, but for a direct message\'s two', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const { room } = await create(ann.token, 'Listed');
    await add(ann.token, room, bob.user);
    const dm = (await postAs<Record>(server.base, '/api/dms', ann.token, { userId: bob.user.id, name: 'Bob' })).body.room;
    const list = await getAs<{ rooms: unknown[] }>(server.base, '/api/rooms', ann.token);
    expect(list.body.rooms).toEqual(
      [
        { room, title: 'Listed', owner: ann.user, memberCount: 2 },
        { room: dm, title: '', owner: ann.user, memberCount: 2, members: [ann.user, bob.user] },
      ].sort((x, y) => (x.room < y.room ? -1 : 1)),
    );
  });

  it('treats the bare names p_ and dm_ as private rooms no one is a member of', async () => {
    const ann = await signIn(server.base, 'Ann');
    for (const room of ['p_', 'dm_']) {
      expectError(await postAs(server.base, `/api/rooms/${room}/messages`, ann.token, { text: 'mine?' }), 404, 'not_found');
      expectError(await getAs(server.base, `/api/rooms/${room}/messages`, undefined), 404, 'not_found');
    }
  });

  it('refuses a title too long with 400', async () => {
    const ann = await signIn(server.base, 'Ann');
    expectError(await postAs(server.base, '/api/rooms', ann.token, { title: 'x'.repeat(101) }), 400, 'invalid_body');
  });

  it('is open to a token whose rooms claim names it, with no stored membership', async () => {
    const room = 'p_appManagedRoom1';
    const token = await new SignJWT({ name: 'App user', rooms: [room] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('app-1')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const posted = await postAs<PostBody>(server.base, `/api/rooms/${room}/messages`, token, { text: 'granted' });
    expect(posted.status, posted.text).toBe(201);
    const read = await getAs<PollBody>(server.base, `/api/rooms/${room}/messages`, token);
    expect(read.body.messages.map((m) => m.text)).toEqual(['granted']);
    const bob = await signIn(server.base, 'Bob');
    expectError(await getAs(server.base, `/api/rooms/${room}/messages`, bob.token), 404, 'not_found');
  });
});

describe('direct messages', () => {
  it('open one room per pair: 201 first, then 200 and the same room from either side', async () => {
    const ann = await signIn(server.base, 'Ann');
    const bob = await signIn(server.base, 'Bob');
    const first = await postAs<Record>(server.base, '/api/dms', ann.token, { userId: bob.user.id, name: 'Bob' });
    expect(first.status, first.text).toBe(201);
    expect(first.body.room).toMatch(/^dm_[A-Za-z0-9_-]{20,}$/);
    expect(first.body.room).not.toContain(ann.user.id);
    expect(first.body.members.map((m) => m.id).sort()).toEqual([ann.user.id, bob.user.id].sort());
    const again = await postAs<Record>(server.base, '/api/dms', bob.token, { userId: ann.user.id });
    expect(again.status).toBe(200);
    expect(again.body.room).toBe(first.body.room);
    // Bob left and is brought back by Ann, who gives no name: he is listed by his own name once he opens it.
    await postAs(server.base, `/api/rooms/${first.body.room}/leave`, bob.token);
    await postAs(server.base, '/api/dms', ann.token, { userId: bob.user.id });
    const reopened = await postAs<Record>(server.base, '/api/dms', bob.token, { userId: ann.user.id });
    expect(reopened.body.members).toEqual(expect.arrayContaining([ann.user, bob.user]));

    const { room } = first.body;
    await postAs(server.base, `/api/rooms/${room}/messages`, ann.token, { text: 'psst' });
    const read = await getAs<PollBody>(server.base, `/api/rooms/${room}/messages`, bob.token);
    expect(read.body.messages.map((m) => [m.author, m.text])).toEqual([['Ann', 'psst']]);

    const cy = await signIn(server.base, 'Cy');
    expectError(await getAs(server.base, `/api/rooms/${room}/messages`, cy.token), 404, 'not_found');
    const list = await getAs<{ rooms: Record[] }>(server.base, '/api/rooms', cy.token);
    expect(list.body.rooms).toEqual([]);
    expectError(await add(ann.token, room, cy.user), 403, 'forbidden');
    expectError(await postAs(server.base, `/api/rooms/${room}/members/remove`, ann.token, { userId: bob.user.id }), 403, 'forbidden');
  });

  it('refuses a DM with yourself or with a malformed id', async () => {
    const ann = await signIn(server.base, 'Ann');
    expectError(await postAs(server.base, '/api/dms', ann.token, { userId: ann.user.id }), 400, 'invalid_body');
    expectError(await postAs(server.base, '/api/dms', ann.token, { userId: '' }), 400, 'invalid_body');
    expectError(await postAs(server.base, '/api/dms', undefined, { userId: 'x' }), 401, 'unauthenticated');
  });

  it('answers the known methods only', async () => {
    const res = await request(server.base, '/api/dms');
    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('POST');
  });
});
