import { afterEach, describe, expect, it } from 'vitest';
import type { PollAnswer } from '../../src/core/answer.js';
import { PollHub } from '../../src/core/poll-hub.js';
import type { Store } from '../../src/core/store.js';
import type { Draft, RoomRecord, User } from '../../src/core/types.js';

/** Builds a fresh, empty store keeping `retention` messages per room. */
export type StoreFactory = (options: { retention: number }) => Promise<Store>;

const draft = (text: string, extra: Partial<Draft> = {}): Draft => ({ author: 'ann', text, ...extra });

const ann: User = { id: 'u-ann', name: 'Ann' };
const bob: User = { id: 'u-bob', name: 'Bob' };
const cy: User = { id: 'u-cy', name: 'Cy' };
const record = (room: string, title: string, owner: User, members: User[]): RoomRecord => ({ room, title, owner, members });

/**
 * The Store contract (src/core/store.ts), written once and run against
 * every implementation.
 */
export function storeContract(name: string, factory: StoreFactory): void {
  describe(`${name} store contract`, () => {
    const open: Store[] = [];
    const make = async (retention = 100): Promise<Store> => {
      const store = await factory({ retention });
      open.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it('answers an empty room with head 0, oldest 0 and no messages', async () => {
      const store = await make();
      const info = await store.info('empty');
      expect(info).toMatchObject({ head: 0, oldest: 0 });
      expect(typeof info.epoch).toBe('string');
      expect(await store.readAfter('empty', 0, 10)).toMatchObject({ head: 0, oldest: 0, messages: [] });
      expect(await store.readBefore('empty', 5, 10)).toMatchObject({ messages: [] });
      expect(await store.readTail('empty', 10)).toMatchObject({ messages: [] });
    });

    it('gives seq 1, 2, 3 … and stores messages exactly as sent', async () => {
      const store = await make();
      const texts = ['first', '  spaced  \n\tline', '日本語 👋🏽 e\u0301 مرحبا'];
      const seqs = [];
      for (const [i, text] of texts.entries()) {
        const { message, duplicate } = await store.append('r', draft(text), 1000 + i);
        expect(duplicate).toBe(false);
        expect(message).toMatchObject({ room: 'r', author: 'ann', text, ts: 1000 + i });
        expect(typeof message.id).toBe('string');
        seqs.push(message.seq);
      }
      expect(seqs).toEqual([1, 2, 3]);
      const slice = await store.readAfter('r', 0, 10);
      expect(slice.messages.map((m) => m.text)).toEqual(texts);
      expect(slice).toMatchObject({ head: 3, oldest: 1 });
      expect(new Set(slice.messages.map((m) => m.id)).size).toBe(3);
    });

    it('reads back exactly what append returned', async () => {
      const store = await make();
      const appended = [
        (await store.append('r', draft('plain'), 1_700_000_000_123)).message,
        (await store.append('r', draft('with id', { clientMsgId: 'c-1' }), 1_700_000_000_456)).message,
      ];
      expect(appended[0]).not.toHaveProperty('clientMsgId');
      expect((await store.readAfter('r', 0, 10)).messages).toEqual(appended);
      expect((await store.readBefore('r', 3, 10)).messages).toEqual(appended);
      expect((await store.readTail('r', 1)).messages).toEqual([appended[1]]);
    });

    it('keeps rooms apart', async () => {
      const store = await make();
      await store.append('a', draft('a1'), 1);
      await store.append('b', draft('b1'), 1);
      await store.append('a', draft('a2'), 1);
      expect((await store.readAfter('a', 0, 10)).messages.map((m) => [m.seq, m.text])).toEqual([
        [1, 'a1'],
        [2, 'a2'],
      ]);
      expect((await store.info('b')).head).toBe(1);
      expect((await store.info('A')).head).toBe(0);
    });

    it('reads after a seq, oldest first, at most limit', async () => {
      const store = await make();
      for (let i = 1; i <= 10; i++) await store.append('r', draft(`m${i}`), i);
      expect((await store.readAfter('r', 3, 4)).messages.map((m) => m.seq)).toEqual([4, 5, 6, 7]);
      expect((await store.readAfter('r', 8, 100)).messages.map((m) => m.seq)).toEqual([9, 10]);
      expect((await store.readAfter('r', 10, 100)).messages).toEqual([]);
      expect((await store.readAfter('r', 50, 100)).messages).toEqual([]);
    });

    it('reads before a seq: the newest limit of them, oldest first', async () => {
      const store = await make();
      for (let i = 1; i <= 10; i++) await store.append('r', draft(`m${i}`), i);
      expect((await store.readBefore('r', 8, 3)).messages.map((m) => m.seq)).toEqual([5, 6, 7]);
      expect((await store.readBefore('r', 3, 10)).messages.map((m) => m.seq)).toEqual([1, 2]);
      expect((await store.readBefore('r', 1, 10)).messages).toEqual([]);
      expect((await store.readBefore('r', 1000, 2)).messages.map((m) => m.seq)).toEqual([9, 10]);
      expect((await store.readTail('r', 3)).messages.map((m) => m.seq)).toEqual([8, 9, 10]);
    });

    it('drops the oldest messages past its retention and says where the retained run starts', async () => {
      const store = await make(3);
      for (let i = 1; i <= 7; i++) await store.append('r', draft(`m${i}`), i);
      const slice = await store.readAfter('r', 0, 100);
      expect(slice.messages.map((m) => m.seq)).toEqual([5, 6, 7]);
      expect(slice).toMatchObject({ head: 7, oldest: 5 });
      expect((await store.readBefore('r', 6, 100)).messages.map((m) => m.seq)).toEqual([5]);
      expect(await store.info('r')).toMatchObject({ head: 7, oldest: 5 });
    });

    it('returns the original for a repeated clientMsgId, storing and signalling nothing', async () => {
      const store = await make();
      const first = await store.append('r', draft('hello', { clientMsgId: 'k1' }), 1);
      expect(first.message.clientMsgId).toBe('k1');
      let signals = 0;
      const stop = await store.subscribe('r', () => signals++);
      const again = await store.append('r', draft('different text', { clientMsgId: 'k1' }), 2);
      expect(again).toEqual({ message: first.message, duplicate: true });
      expect((await store.info('r')).head).toBe(1);
      const other = await store.append('other', draft('x', { clientMsgId: 'k1' }), 3);
      expect(other.duplicate).toBe(false);
      stop();
      expect(signals).toBe(0);
    });

    it('keeps the epoch handed out for an empty room once the room has messages', async () => {
      const store = await make();
      const before = (await store.info('fresh')).epoch;
      const { message } = await store.append('fresh', draft('x'), 1);
      expect((await store.readAfter('fresh', 0, 10)).epoch).toBe(before);
      expect((await store.readTail('fresh', 10)).epoch).toBe(before);
      expect(message.seq).toBe(1);
    });

    it('gives gap-free seqs to concurrent appends', async () => {
      const store = await make(1000);
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.append('r', draft(`m${i}`), i)));
      expect(results.map((r) => r.message.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    });

    it('signals a subscribed room after each append, until unsubscribed', async () => {
      const store = await make();
      let signals = 0;
      const stop = await store.subscribe('r', () => signals++);
      await store.append('r', draft('one'), 1);
      await expect.poll(() => signals).toBeGreaterThanOrEqual(1);
      const afterFirst = signals;
      await store.append('elsewhere', draft('x'), 1);
      await store.append('r', draft('two'), 2);
      await expect.poll(() => signals).toBeGreaterThan(afterFirst);
      stop();
      const seen = signals;
      await store.append('r', draft('three'), 3);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(signals).toBe(seen);
    });

    it('starts a new epoch on newEpoch: every room reports it, heads and messages unchanged, appends go on at head + 1', async () => {
      const store = await make(3);
      const kept = [];
      for (let i = 1; i <= 4; i++) kept.push((await store.append('r', draft(`m${i}`), i)).message);
      kept.shift(); // past the retention of 3
      const before = [(await store.info('r')).epoch, (await store.info('empty')).epoch];

      const epoch = await store.newEpoch();
      expect(typeof epoch).toBe('string');
      expect(before).not.toContain(epoch);
      expect(await store.info('r')).toEqual({ epoch, head: 4, oldest: 2 });
      expect(await store.readTail('r', 10)).toEqual({ epoch, head: 4, oldest: 2, messages: kept });
      expect(await store.readAfter('r', 2, 10)).toEqual({ epoch, head: 4, oldest: 2, messages: kept.slice(1) });
      expect(await store.readBefore('r', 4, 1)).toEqual({ epoch, head: 4, oldest: 2, messages: [kept[1]] });
      expect(await store.info('empty')).toEqual({ epoch, head: 0, oldest: 0 });
      expect(await store.readAfter('empty', 0, 10)).toEqual({ epoch, head: 0, oldest: 0, messages: [] });
      expect(await store.readTail('empty', 10)).toEqual({ epoch, head: 0, oldest: 0, messages: [] });

      expect((await store.append('r', draft('m5'), 5)).message.seq).toBe(5);
      expect(await store.info('r')).toEqual({ epoch, head: 5, oldest: 3 });
      expect((await store.append('later', draft('first'), 6)).message.seq).toBe(1);
      expect((await store.info('later')).epoch).toBe(epoch);
      expect(await store.newEpoch()).not.toBe(epoch);
    });

    it('resets a poll from the old epoch after newEpoch, parked or new, and signals rooms with messages', async () => {
      const store = await make();
      for (let i = 1; i <= 3; i++) await store.append('r', draft(`m${i}`), i);
      const { epoch } = await store.info('r');
      const hub = new PollHub(store, { capacity: 10, retryAfter: 1 });
      let signals = 0;
      const stop = await store.subscribe('r', () => signals++);
      const answers: (PollAnswer | Error)[] = [];
      hub.poll({ room: 'r', after: 3, epoch, limit: 10, timeoutMs: 20_000 }, (a) => answers.push(a));
      await expect.poll(() => hub.parked).toBe(1);

      const fresh = await store.newEpoch();
      await expect.poll(() => signals).toBeGreaterThan(0);
      await expect.poll(() => answers.length).toBe(1);
      expect((answers[0] as PollAnswer).body).toMatchObject({ epoch: fresh, last: 3, reset: true });
      expect((answers[0] as PollAnswer).body.messages.map((m) => m.seq)).toEqual([1, 2, 3]);

      // A cursor behind the head is reset too, not answered with what follows it: under the old epoch it may name other messages.
      hub.poll({ room: 'r', after: 2, epoch, limit: 10, timeoutMs: 0 }, (a) => answers.push(a));
      await expect.poll(() => answers.length).toBe(2);
      expect((answers[1] as PollAnswer).body).toMatchObject({ epoch: fresh, last: 3, reset: true });
      stop();
    });

    it('answers ping while healthy', async () => {
      const store = await make();
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('stores authorId with a message and returns it from every read, and leaves it out when absent', async () => {
      const store = await make();
      const signed = (await store.append('r', draft('signed', { authorId: 'u-ann', clientMsgId: 'k' }), 1)).message;
      const anonymous = (await store.append('r', draft('anonymous'), 2)).message;
      expect(signed.authorId).toBe('u-ann');
      expect(anonymous).not.toHaveProperty('authorId');
      expect((await store.readAfter('r', 0, 10)).messages).toEqual([signed, anonymous]);
      expect((await store.readTail('r', 10)).messages).toEqual([signed, anonymous]);
      expect((await store.readBefore('r', 2, 10)).messages).toEqual([signed]);
      expect((await store.readAfter('r', 1, 10)).messages[0]).not.toHaveProperty('authorId');
      expect(await store.append('r', draft('retry', { authorId: 'u-ann', clientMsgId: 'k' }), 3)).toEqual({ message: signed, duplicate: true });
    });

    describe('private rooms', () => {
      it('creates a record with the owner as first member, and refuses a name that is taken', async () => {
        const store = await make();
        const created = record('p_one', 'Plans', ann, [ann]);
        expect(await store.createRoom('p_one', 'Plans', ann)).toEqual(created);
        expect(await store.readRoom('p_one')).toEqual(created);
        expect(await store.createRoom('p_one', 'Other', bob)).toBeUndefined();
        expect(await store.readRoom('p_one')).toEqual(created);
        expect(await store.createRoom('p_untitled', '', bob)).toEqual(record('p_untitled', '', bob, [bob]));
      });

      it('has no record for a room never created, whether it has messages or not, and changes nothing there', async () => {
        const store = await make();
        await store.append('p_msgs', draft('x'), 1);
        for (const room of ['p_none', 'p_msgs']) {
          expect(await store.readRoom(room)).toBeUndefined();
          expect(await store.addMember(room, ann, 100)).toBeUndefined();
          expect(await store.removeMember(room, ann.id)).toBeUndefined();
          expect(await store.readRoom(room)).toBeUndefined();
        }
        expect(await store.roomsOf(ann.id)).toEqual([]);
        // A record is independent of the room's messages.
        await store.createRoom('p_msgs', 't', ann);
        expect(await store.info('p_msgs')).toMatchObject({ head: 1 });
      });

      it('adds members in joining order, each once; adding one again only updates their name', async () => {
        const store = await make();
        await store.createRoom('p_r', 't', ann);
        expect(await store.addMember('p_r', bob, 100)).toEqual(record('p_r', 't', ann, [ann, bob]));
        expect(await store.addMember('p_r', cy, 100)).toEqual(record('p_r', 't', ann, [ann, bob, cy]));
        expect(await store.addMember('p_r', bob, 100)).toEqual(record('p_r', 't', ann, [ann, bob, cy]));
        const bobby = { id: bob.id, name: 'Bobby' };
        expect(await store.addMember('p_r', bobby, 100)).toEqual(record('p_r', 't', ann, [ann, bobby, cy]));
        const annie = { id: ann.id, name: 'Annie' };
        expect(await store.addMember('p_r', annie, 100)).toEqual(record('p_r', 't', annie, [annie, bobby, cy]));
        expect(await store.readRoom('p_r')).toEqual(record('p_r', 't', annie, [annie, bobby, cy]));
      });

      it('never takes a room past maxMembers, even with adds racing, and still renames a member of a full room', async () => {
        const store = await make();
        await store.createRoom('p_full', 't', ann);
        const racing = Array.from({ length: 30 }, (_, i) => store.addMember('p_full', { id: `u${i}`, name: `U${i}` }, 10));
        const results = await Promise.all(racing);
        const final = await store.readRoom('p_full');
        expect(final!.members).toHaveLength(10);
        // Each call answers the record as it left it: with the user when added, without when the room was full.
        const added = results.filter((r, i) => r!.members.some((m) => m.id === `u${i}`)).length;
        expect(added).toBe(9);
        expect((await store.addMember('p_full', { id: 'late', name: 'Late' }, 10))!.members.map((m) => m.id)).not.toContain('late');
        const renamed = await store.addMember('p_full', { id: ann.id, name: 'Annie' }, 10);
        expect(renamed!.members[0]).toEqual({ id: ann.id, name: 'Annie' });
        expect(await store.roomsOf('late')).toEqual([]);
      });

      it('removes members: a non-member is a no-op, the owner passes the room to the earliest joined, the last one leaves an empty record', async () => {
        const store = await make();
        await store.createRoom('p_r', 't', ann);
        await store.addMember('p_r', bob, 100);
        await store.addMember('p_r', cy, 100);
        expect(await store.removeMember('p_r', 'u-stranger')).toEqual(record('p_r', 't', ann, [ann, bob, cy]));
        expect(await store.removeMember('p_r', ann.id)).toEqual(record('p_r', 't', bob, [bob, cy]));
        expect(await store.addMember('p_r', ann, 100)).toEqual(record('p_r', 't', bob, [bob, cy, ann]));
        expect(await store.removeMember('p_r', cy.id)).toEqual(record('p_r', 't', bob, [bob, ann]));
        expect(await store.removeMember('p_r', bob.id)).toEqual(record('p_r', 't', ann, [ann]));
        expect(await store.removeMember('p_r', ann.id)).toEqual(record('p_r', 't', ann, []));
        expect(await store.readRoom('p_r')).toEqual(record('p_r', 't', ann, []));
        expect(await store.removeMember('p_r', ann.id)).toEqual(record('p_r', 't', ann, []));
        expect(await store.createRoom('p_r', 't', bob)).toBeUndefined();
        // Whoever joins a room left empty owns it: the owner is always a member while there is one.
        expect(await store.addMember('p_r', cy, 100)).toEqual(record('p_r', 't', cy, [cy]));
      });

      it('opens a direct room once, then makes both members again, leaving the names of members as they are', async () => {
        const store = await make();
        expect(await store.openDirect('dm_ab', ann, bob)).toEqual({ record: record('dm_ab', '', ann, [ann, bob]), created: true });
        expect(await store.openDirect('dm_ab', bob, { id: ann.id, name: ann.id })).toEqual({ record: record('dm_ab', '', ann, [ann, bob]), created: false });
        await store.removeMember('dm_ab', ann.id);
        expect(await store.openDirect('dm_ab', bob, ann)).toEqual({ record: record('dm_ab', '', bob, [bob, ann]), created: false });
        await store.removeMember('dm_ab', ann.id);
        await store.removeMember('dm_ab', bob.id);
        expect(await store.readRoom('dm_ab')).toEqual(record('dm_ab', '', bob, []));
        expect(await store.openDirect('dm_ab', ann, bob)).toEqual({ record: record('dm_ab', '', ann, [ann, bob]), created: false });
        expect(await store.roomsOf(bob.id)).toEqual([record('dm_ab', '', ann, [ann, bob])]);
      });

      it('lists exactly the rooms a user is a member of, by room name', async () => {
        const store = await make();
        await store.createRoom('p_c', 'C', ann);
        await store.createRoom('p_a', 'A', bob);
        await store.createRoom('p_b', 'B', cy);
        await store.addMember('p_a', ann, 100);
        await store.addMember('p_b', ann, 100);
        await store.openDirect('dm_x', cy, ann);
        expect((await store.roomsOf(ann.id)).map((r) => r.room)).toEqual(['dm_x', 'p_a', 'p_b', 'p_c']);
        expect(await store.roomsOf(ann.id)).toEqual(await Promise.all(['dm_x', 'p_a', 'p_b', 'p_c'].map((room) => store.readRoom(room))));
        await store.removeMember('p_b', ann.id);
        await store.removeMember('p_c', ann.id);
        await store.removeMember('dm_x', ann.id);
        expect(await store.roomsOf(ann.id)).toEqual([record('p_a', 'A', bob, [bob, ann])]);
        expect(await store.roomsOf(cy.id)).toEqual([record('dm_x', '', cy, [cy]), record('p_b', 'B', cy, [cy])]);
        expect(await store.roomsOf('u-nobody')).toEqual([]);
      });

      it('signals the room after each change to its members', async () => {
        const store = await make();
        await store.createRoom('p_r', 't', ann);
        await store.openDirect('dm_ab', ann, bob);
        let signals = 0;
        const stops = [await store.subscribe('p_r', () => signals++), await store.subscribe('dm_ab', () => signals++)];
        const expectSignal = async (change: () => Promise<unknown>): Promise<void> => {
          const before = signals;
          await change();
          await expect.poll(() => signals).toBeGreaterThan(before);
        };
        await expectSignal(() => store.addMember('p_r', bob, 100));
        await expectSignal(() => store.addMember('p_r', { id: bob.id, name: 'Bobby' }, 100));
        await expectSignal(() => store.removeMember('p_r', bob.id));
        await expectSignal(() => store.removeMember('dm_ab', bob.id));
        await expectSignal(() => store.openDirect('dm_ab', ann, bob));
        for (const stop of stops) stop();
      });

      it('keeps the first shared secret it is given', async () => {
        const store = await make();
        expect(await store.sharedSecret('first-secret')).toBe('first-secret');
        expect(await store.sharedSecret('second-secret')).toBe('first-secret');
        const racing = await Promise.all(['x', 'y', 'z'].map((candidate) => store.sharedSecret(candidate)));
        expect(racing).toEqual(['first-secret', 'first-secret', 'first-secret']);
      });
    });

    describe('presence and typing', () => {
      /** Times are the callers' (ms since the epoch); the store reads no clock of its own for them. */
      const T = 1_000_000;
      const MIN = 60_000;
      const nobody = { online: [], onlineCount: 0, typing: [], nextExpiry: undefined };

      it('reads a room with no entries as no one online or typing', async () => {
        const store = await make();
        expect(await store.readPresence('r', T, 100)).toStrictEqual(nobody);
        await store.append('r', draft('x'), 1);
        expect(await store.readPresence('r', T, 100)).toStrictEqual(nobody);
      });

      it('counts an online entry while its time is after now, and reads it no more from then on', async () => {
        const store = await make();
        await store.setOnline('r', ann, T + MIN, T);
        const present = { online: [ann], onlineCount: 1, typing: [], nextExpiry: T + MIN };
        expect(await store.readPresence('r', T - MIN, 100)).toEqual(present);
        expect(await store.readPresence('r', T, 100)).toEqual(present);
        expect(await store.readPresence('r', T + MIN - 1, 100)).toEqual(present);
        expect(await store.readPresence('r', T + MIN, 100)).toEqual(nobody);
        expect(await store.readPresence('r', T + 2 * MIN, 100)).toEqual(nobody);
      });

      it('lists users by id in code unit order, at most limit of each list, and counts every user online', async () => {
        const store = await make();
        // Inserted with times in another order than the ids; code unit order is not a locale's ('B' < '_' < 'a' < 'a-b' < 'b').
        const ids = ['b', 'a-b', 'B', '_', 'a'];
        const users = ids.map((id) => ({ id, name: `name of ${id}` }));
        for (const [i, user] of users.entries()) {
          await store.setOnline('r', user, T + (i + 1) * MIN, T);
          if (user.id !== 'B') await store.setTyping('r', user, T + (i + 1) * MIN, T);
        }
        const byId = (...wanted: string[]): User[] => wanted.map((id) => users.find((u) => u.id === id)!);
        expect(await store.readPresence('r', T, 3)).toEqual({
          online: byId('B', '_', 'a'),
          onlineCount: 5,
          typing: byId('_', 'a', 'a-b'),
          nextExpiry: T + MIN,
        });
        expect(await store.readPresence('r', T, 100)).toEqual({
          online: byId('B', '_', 'a', 'a-b', 'b'),
          onlineCount: 5,
          typing: byId('_', 'a', 'a-b', 'b'),
          nextExpiry: T + MIN,
        });
        expect(await store.readPresence('r', T, 0)).toEqual({ online: [], onlineCount: 5, typing: [], nextExpiry: T + MIN });
        // 'b' (the first set) has ended: the rest move up.
        expect(await store.readPresence('r', T + MIN, 2)).toEqual({ online: byId('B', '_'), onlineCount: 4, typing: byId('_', 'a'), nextExpiry: T + 2 * MIN });
      });

      it("replaces a user's time, lower or higher, and their name", async () => {
        const store = await make();
        await store.setOnline('r', ann, T + 2 * MIN, T);
        await store.setOnline('r', ann, T + MIN, T);
        expect(await store.readPresence('r', T, 100)).toEqual({ online: [ann], onlineCount: 1, typing: [], nextExpiry: T + MIN });
        const annie = { id: ann.id, name: 'Annie' };
        await store.setOnline('r', annie, T + 3 * MIN, T);
        expect(await store.readPresence('r', T, 100)).toEqual({ online: [annie], onlineCount: 1, typing: [], nextExpiry: T + 3 * MIN });
        expect(await store.readPresence('r', T + 2 * MIN, 100)).toEqual({ online: [annie], onlineCount: 1, typing: [], nextExpiry: T + 3 * MIN });
        await store.setOnline('r', ann, T + 3 * MIN - 1, T + 2 * MIN);
        expect(await store.readPresence('r', T + 2 * MIN, 100)).toEqual({ online: [ann], onlineCount: 1, typing: [], nextExpiry: T + 3 * MIN - 1 });
        expect(await store.readPresence('r', T + 3 * MIN - 1, 100)).toEqual(nobody);
      });

      it('ends an entry given a time not after now, and stores nothing for a user who had none', async () => {
        const store = await make();
        await store.setOnline('r', ann, T + MIN, T);
        await store.setOnline('r', bob, T + 2 * MIN, T);
        await store.setOnline('r', ann, T + 10, T + 10);
        expect(await store.readPresence('r', T + 10, 100)).toEqual({ online: [bob], onlineCount: 1, typing: [], nextExpiry: T + 2 * MIN });
        await store.setOnline('r', bob, T, T + 10);
        expect(await store.readPresence('r', T + 10, 100)).toEqual(nobody);
        // Ended, not only hidden: an earlier now does not bring them back.
        expect(await store.readPresence('r', T, 100)).toEqual(nobody);
        await store.setOnline('r', cy, T, T);
        await store.setTyping('r', cy, T - MIN, T);
        expect(await store.readPresence('r', T - 2 * MIN, 100)).toEqual(nobody);
      });

      it('keeps typing apart from online', async () => {
        const store = await make();
        await store.setTyping('r', ann, T + MIN, T);
        expect(await store.readPresence('r', T, 100)).toEqual({ online: [], onlineCount: 0, typing: [ann], nextExpiry: T + MIN });
        await store.setOnline('r', bob, T + 2 * MIN, T);
        expect(await store.readPresence('r', T, 100)).toEqual({ online: [bob], onlineCount: 1, typing: [ann], nextExpiry: T + MIN });
        await store.setOnline('r', ann, T, T);
        await store.setTyping('r', bob, T, T);
        expect(await store.readPresence('r', T, 100)).toEqual({ online: [bob], onlineCount: 1, typing: [ann], nextExpiry: T + MIN });
        await store.setOnline('r', ann, T + 3 * MIN, T);
        await store.setTyping('r', ann, T, T);
        expect(await store.readPresence('r', T, 100)).toEqual({ online: [ann, bob], onlineCount: 2, typing: [], nextExpiry: T + 2 * MIN });
        await store.setTyping('r', cy, T + MIN, T);
        await store.setOnline('r', bob, T, T);
        expect(await store.readPresence('r', T, 100)).toEqual({ online: [ann], onlineCount: 1, typing: [cy], nextExpiry: T + MIN });
      });

      it('gives as nextExpiry the earliest time among the entries read, in either list, also past the limit', async () => {
        const store = await make();
        await store.setOnline('r', ann, T + 3 * MIN, T);
        await store.setOnline('r', bob, T + 4 * MIN, T);
        await store.setTyping('r', cy, T + 2 * MIN, T);
        await store.setOnline('r', cy, T + MIN, T);
        // cy is online past the limit of 1: their end still changes onlineCount, so it counts.
        expect(await store.readPresence('r', T, 1)).toEqual({ online: [ann], onlineCount: 3, typing: [cy], nextExpiry: T + MIN });
        expect((await store.readPresence('r', T + MIN, 1)).nextExpiry).toBe(T + 2 * MIN);
        expect((await store.readPresence('r', T + 2 * MIN, 1)).nextExpiry).toBe(T + 3 * MIN);
        await store.setOnline('r', ann, T, T + 2 * MIN);
        expect((await store.readPresence('r', T + 2 * MIN, 1)).nextExpiry).toBe(T + 4 * MIN);
        expect(await store.readPresence('r', T + 4 * MIN, 1)).toEqual(nobody);
      });

      it('signals the room when what readPresence returns changes or an end comes earlier, and not when a time only moves later', async () => {
        const store = await make();
        let signals = 0;
        const stop = await store.subscribe('r', () => signals++);
        let fenceSignals = 0;
        const stopFence = await store.subscribe('fence', () => fenceSignals++);
        const signalled = async (change: () => Promise<void>): Promise<void> => {
          const before = signals;
          await change();
          await expect.poll(() => signals).toBeGreaterThan(before);
        };
        // Signals may arrive after the call resolves (Redis), but in the order they were sent: once a signal
        // sent after `change` is in, one sent by `change` would be in too.
        const quiet = async (change: () => Promise<void>): Promise<void> => {
          const [before, fenced] = [signals, fenceSignals];
          await change();
          await store.append('fence', draft('fence'), T);
          await expect.poll(() => fenceSignals).toBeGreaterThan(fenced);
          expect(signals).toBe(before);
        };
        const annie = { id: ann.id, name: 'Annie' };

        await signalled(() => store.setOnline('r', ann, T + MIN, T)); // starts
        await quiet(() => store.setOnline('r', ann, T + MIN, T)); // the same again
        await quiet(() => store.setOnline('r', ann, T + 3 * MIN, T)); // later
        await signalled(() => store.setOnline('r', ann, T + 2 * MIN, T)); // earlier, still after now: readers' next expiry moves
        await signalled(() => store.setOnline('r', annie, T + 2 * MIN, T)); // a new name
        await quiet(() => store.setOnline('r', annie, T + 3 * MIN, T + MIN)); // time moves, same name
        await signalled(() => store.setTyping('r', ann, T + MIN, T)); // starts typing
        await quiet(() => store.setTyping('r', ann, T + 2 * MIN, T));
        await signalled(() => store.setTyping('r', ann, T, T)); // stops typing
        await quiet(() => store.setTyping('r', ann, T, T)); // stops again: nothing to end
        await signalled(() => store.setOnline('r', annie, T + MIN, T + MIN)); // ends
        await quiet(() => store.setOnline('r', annie, T, T + MIN));
        await quiet(() => store.setOnline('r', bob, T, T)); // never started
        await quiet(() => store.setOnline('elsewhere', bob, T + MIN, T)); // another room

        // An entry whose time had passed is gone: setting it again starts it, ending it changes nothing.
        await signalled(() => store.setOnline('r', bob, T + MIN, T));
        await signalled(() => store.setOnline('r', bob, T + 3 * MIN, T + 2 * MIN));
        await signalled(() => store.setTyping('r', cy, T + MIN, T));
        await quiet(() => store.setTyping('r', cy, T + 2 * MIN, T + 2 * MIN));
        stop();
        stopFence();
      });

      it('keeps rooms apart', async () => {
        const store = await make();
        await store.setOnline('a', ann, T + MIN, T);
        await store.setTyping('a', bob, T + MIN, T);
        await store.setOnline('b', cy, T + 2 * MIN, T);
        expect(await store.readPresence('a', T, 100)).toEqual({ online: [ann], onlineCount: 1, typing: [bob], nextExpiry: T + MIN });
        expect(await store.readPresence('b', T, 100)).toEqual({ online: [cy], onlineCount: 1, typing: [], nextExpiry: T + 2 * MIN });
        expect(await store.readPresence('A', T, 100)).toEqual(nobody);
        await store.setOnline('b', ann, T, T);
        expect((await store.readPresence('a', T, 100)).online).toEqual([ann]);
      });

      it("never touches a room's messages, seq, epoch or record", async () => {
        const store = await make();
        await store.append('r', draft('one'), 1);
        await store.createRoom('p_rec', 'Plans', bob);
        const before = { r: await store.readTail('r', 10), empty: await store.info('p_empty'), rec: await store.info('p_rec') };
        for (const room of ['r', 'p_empty', 'p_rec']) {
          await store.setOnline(room, ann, T + MIN, T);
          await store.setTyping(room, ann, T + MIN, T);
          await store.setOnline(room, { id: ann.id, name: 'Annie' }, T + 2 * MIN, T);
          await store.setTyping(room, ann, T, T);
          expect((await store.readPresence(room, T, 100)).online).toEqual([{ id: ann.id, name: 'Annie' }]);
        }
        expect(await store.readTail('r', 10)).toEqual(before.r);
        expect(await store.info('p_empty')).toEqual(before.empty);
        expect(before.empty).toMatchObject({ head: 0, oldest: 0 });
        expect(await store.readTail('p_empty', 10)).toEqual({ ...before.empty, messages: [] });
        expect(await store.info('p_rec')).toEqual(before.rec);
        expect(await store.readRoom('p_empty')).toBeUndefined();
        expect(await store.readRoom('p_rec')).toEqual(record('p_rec', 'Plans', bob, [bob]));
        expect(await store.roomsOf(ann.id)).toEqual([]);
        expect((await store.append('r', draft('two'), 2)).message.seq).toBe(2);
        expect((await store.append('p_empty', draft('first'), 3)).message).toMatchObject({ seq: 1, text: 'first' });
        expect((await store.info('p_empty')).epoch).toBe(before.empty.epoch);
      });

      it('leaves nothing readable of 2,000 users once their times have passed', async () => {
        const store = await make();
        const users = Array.from({ length: 2000 }, (_, i) => ({ id: `u${String(i).padStart(4, '0')}`, name: `User ${i}` }));
        await Promise.all(users.map((user, i) => store.setOnline('crowd', user, T + MIN + i, T)));
        await Promise.all(users.slice(0, 1500).map((user, i) => store.setTyping('crowd', user, T + MIN + i, T)));
        expect(await store.readPresence('crowd', T, 100)).toEqual({
          online: users.slice(0, 100),
          onlineCount: 2000,
          typing: users.slice(0, 100),
          nextExpiry: T + MIN,
        });
        expect((await store.readPresence('crowd', T + MIN + 999, 100)).onlineCount).toBe(1000);
        expect(await store.readPresence('crowd', T + MIN + 2000, 100)).toEqual(nobody);
        await store.setOnline('crowd', ann, T + 3 * MIN, T + 2 * MIN);
        expect(await store.readPresence('crowd', T + 2 * MIN, 100)).toEqual({ online: [ann], onlineCount: 1, typing: [], nextExpiry: T + 3 * MIN });
      });
    });
  });
}
