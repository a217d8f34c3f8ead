import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PollAnswer } from '../../src/core/answer.js';
import { ChatError } from '../../src/core/errors.js';
import { MemoryStore } from '../../src/core/memory-store.js';
import { CACHED_ANSWERS_PER_ROOM, PRESENCE_FOLD_MS, PollHub, type PollHubOptions, type PollRequest } from '../../src/core/poll-hub.js';
import { SyncClients } from '../../src/core/sync-clients.js';
import { OnlineTracker, TYPING_MS, presenceView } from '../../src/core/presence.js';
import type { ChangeListener, Store } from '../../src/core/store.js';
import type { StreamEvent } from '../../src/core/stream.js';
import type { SyncResult, SyncRoom } from '../../src/core/sync.js';
import type { Draft, Slice, User } from '../../src/core/types.js';

const draft = (text: string) => ({ author: 'ann', text });
/** The state of a room where no one is online or typing. */
const NOBODY = presenceView({ online: [], onlineCount: 0, typing: [], nextExpiry: undefined }).state;

/**
 * A memory store that counts live subscriptions and can hold reads back. By
 * default it answers only asynchronously, as a networked store does; with
 * `now` it also answers at once (Store.readAfterNow), as the memory and
 * SQLite stores do, which the hub takes a way of its own for.
 */
class ProbeStore implements Store {
  private readonly inner: MemoryStore;
  subscriptions = 0;
  presenceReads = 0;
  /** When set, the next readAfter waits for it before reading. */
  gate?: Promise<void>;
  readAfterNow?: (room: string, after: number, limit: number) => Slice;

  constructor(retention = 100, { now = false } = {}) {
    this.inner = new MemoryStore({ retention, maxRooms: 100 });
    if (now) this.readAfterNow = (room, after, limit) => this.inner.readAfterNow(room, after, limit);
  }

  append(room: string, draft: Draft, ts: number) {
    return this.inner.append(room, draft, ts);
  }

  async readAfter(room: string, after: number, limit: number) {
    const gate = this.gate;
    this.gate = undefined;
    const slice = await this.inner.readAfter(room, after, limit);
    if (gate) await gate;
    return slice;
  }

  readBefore(room: string, before: number, limit: number) {
    return this.inner.readBefore(room, before, limit);
  }

  readTail(room: string, limit: number) {
    return this.inner.readTail(room, limit);
  }

  info(room: string) {
    return this.inner.info(room);
  }

  async subscribe(room: string, listener: ChangeListener): Promise<() => void> {
    const stop = await this.inner.subscribe(room, listener);
    this.subscriptions++;
    return () => {
      this.subscriptions--;
      stop();
    };
  }

  ping() {
    return this.inner.ping();
  }

  newEpoch() {
    return this.inner.newEpoch();
  }

  createRoom(room: string, title: string, owner: User) {
    return this.inner.createRoom(room, title, owner);
  }

  openDirect(room: string, caller: User, other: User) {
    return this.inner.openDirect(room, caller, other);
  }

  readRoom(room: string) {
    return this.inner.readRoom(room);
  }

  addMember(room: string, user: User, maxMembers: number) {
    return this.inner.addMember(room, user, maxMembers);
  }

  removeMember(room: string, userId: string) {
    return this.inner.removeMember(room, userId);
  }

  roomsOf(userId: string) {
    return this.inner.roomsOf(userId);
  }

  sharedSecret(candidate: string) {
    return this.inner.sharedSecret(candidate);
  }

  setOnline(room: string, user: User, until: number, now: number) {
    return this.inner.setOnline(room, user, until, now);
  }

  setTyping(room: string, user: User, until: number, now: number) {
    return this.inner.setTyping(room, user, until, now);
  }

  readPresence(room: string, now: number, limit: number) {
    this.presenceReads++;
    return this.inner.readPresence(room, now, limit);
  }

  close() {
    return this.inner.close();
  }
}

function setup(store: Store, capacity = 100, options: Partial<PollHubOptions> = {}) {
  const hub = new PollHub(store, { capacity, retryAfter: 3, ...options });
  const poll = (request: Partial<PollRequest> = {}) => {
    const results: (PollAnswer | Error)[] = [];
    const handle = hub.poll({ room: 'r', after: 0, limit: 100, timeoutMs: 60_000, ...request }, (r) => results.push(r));
    const answer = async () => {
      await vi.waitFor(() => expect(results.length).toBe(1));
      return results[0] as PollAnswer;
    };
    return { handle, results, answer };
  };
  return { hub, store, poll };
}

/** Lets the hub finish its reads and park (the memory store answers within a few microtasks). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe.each([
  ['answers later', false],
  ['answers at once', true],
])('PollHub with a store that %s', (_kind, now) => {
  const make = (retention = 100) => new ProbeStore(retention, { now });

  it('parks a poll at the head and wakes it with the new message', async () => {
    const { hub, store, poll } = setup(make());
    const p = poll();
    await settle();
    expect(hub.parked).toBe(1);
    expect(p.results).toEqual([]);
    await store.append('r', draft('hello'), 1);
    const answer = await p.answer();
    expect(answer.body).toMatchObject({ room: 'r', last: 1, more: false });
    expect(answer.body.messages.map((m) => m.text)).toEqual(['hello']);
    expect(answer.outcome).toBe('data');
    expect(hub.parked).toBe(0);
  });

  it('gives every poll at the same cursor the same answer object, serialized once', async () => {
    const { store, poll } = setup(make());
    const polls = [poll(), poll(), poll()];
    const elsewhere = poll({ after: 0, limit: 1 });
    await settle();
    await store.append('r', draft('a'), 1);
    await store.append('r', draft('b'), 1);
    const answers = await Promise.all(polls.map((p) => p.answer()));
    expect(answers[1]).toBe(answers[0]);
    expect(answers[2]).toBe(answers[0]);
    expect(answers[0]!.bytes).toBe(answers[1]!.bytes);
    // Both messages appended in the same tick went out in one answer.
    expect(answers[0]!.body.messages.map((m) => m.text)).toEqual(['a', 'b']);
    const limited = await elsewhere.answer();
    expect(limited).not.toBe(answers[0]);
    expect(limited.body).toMatchObject({ last: 1, more: true });
  });

  it('answers a woken group a slice at a time, so a post landing in between reaches the rest in the same answer', async () => {
    const counted: number[] = [];
    const observer = { answered: (_outcome: string, count: number) => counted.push(count), woke: () => {}, synced: () => {} };
    const { hub, store } = setup(make(), 100, { wakeSlice: 2, observer });
    const answers: PollAnswer[] = [];
    // When each answer's "wake-up over" callback ran: how many of the group had their answer by then.
    const resumedAt: number[] = [];
    for (let i = 0; i < 5; i++) {
      hub.poll({ room: 'r', after: 0, limit: 100, timeoutMs: 60_000 }, (answer, progress) => {
        answers.push(answer as PollAnswer);
        progress?.whenDone(() => resumedAt.push(answers.length));
        // The first slice is out: a post lands before the event loop comes back to the group.
        if (answers.length === 2) void store.append('r', draft('b'), 1);
      });
    }
    await settle();
    await store.append('r', draft('a'), 1);
    await vi.waitFor(() => expect(answers).toHaveLength(5));
    expect(answers.map((a) => a.body.messages.map((m) => m.text).join(''))).toEqual(['a', 'a', 'ab', 'ab', 'ab']);
    expect(answers.map((a) => a.body.last)).toEqual([1, 1, 2, 2, 2]);
    expect(answers[3]).toBe(answers[2]);
    expect(counted.reduce((sum, n) => sum + n, 0)).toBe(5);
    expect(resumedAt).toEqual([5, 5, 5, 5, 5]);
    expect(hub.parked).toBe(0);
  });

  it('says nothing of a wake-up in progress when a group is answered at once', async () => {
    const { hub, store } = setup(make(), 100, { wakeSlice: 3 });
    const progresses: unknown[] = [];
    for (let i = 0; i < 3; i++) hub.poll({ room: 'r', after: 0, limit: 100, timeoutMs: 60_000 }, (_answer, progress) => progresses.push(progress));
    await settle();
    await store.append('r', draft('a'), 1);
    await vi.waitFor(() => expect(progresses).toHaveLength(3));
    expect(progresses).toEqual([undefined, undefined, undefined]);
  });

  it('answers at once when messages after the cursor exist, with limit and more', async () => {
    const { store, poll } = setup(make());
    for (let i = 1; i <= 5; i++) await store.append('r', draft(`m${i}`), i);
    const answer = await poll({ after: 1, limit: 2 }).answer();
    expect(answer.body.messages.map((m) => m.seq)).toEqual([2, 3]);
    expect(answer.body).toMatchObject({ last: 3, more: true });
  });

  it('times out with no messages and the cursor unchanged', async () => {
    vi.useFakeTimers();
    const { hub, store, poll } = setup(make());
    await store.append('r', draft('x'), 1);
    const p = poll({ after: 1, timeoutMs: 25_000 });
    await vi.advanceTimersByTimeAsync(24_999);
    expect(p.results).toEqual([]);
    expect(hub.parked).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const answer = await p.answer();
    expect(answer.body).toEqual({ room: 'r', epoch: (await store.info('r')).epoch, messages: [], last: 1, more: false });
    expect(answer.outcome).toBe('timeout');
    expect(hub.parked).toBe(0);
  });

  it('answers a zero timeout at once', async () => {
    const { hub, poll } = setup(make());
    const answer = await poll({ timeoutMs: 0 }).answer();
    expect(answer.outcome).toBe('timeout');
    expect(hub.parked).toBe(0);
  });

  it('forgets a cancelled poll at once: no parked entry, no timer, no subscription', async () => {
    vi.useFakeTimers();
    const store = make();
    const { hub, poll } = setup(store);
    const p = poll();
    await vi.advanceTimersByTimeAsync(0);
    expect(hub.parked).toBe(1);
    expect(store.subscriptions).toBe(1);
    p.handle.cancel();
    expect(hub.parked).toBe(0);
    expect(store.subscriptions).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await store.append('r', draft('late'), 1);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(p.results).toEqual([]);
  });

  it('resets a cursor from another epoch or beyond the head, with the tail', async () => {
    const { store, poll } = setup(make());
    for (let i = 1; i <= 3; i++) await store.append('r', draft(`m${i}`), i);
    const stale = await poll({ after: 2, epoch: 'old-epoch', limit: 2 }).answer();
    expect(stale.body).toMatchObject({ reset: true, last: 3, more: false });
    expect(stale.body.messages.map((m) => m.seq)).toEqual([2, 3]);
    expect(stale.outcome).toBe('reset');
    const ahead = await poll({ after: 9 }).answer();
    expect(ahead.body).toMatchObject({ reset: true, last: 3 });
    const current = await poll({ after: 3, epoch: ahead.body.epoch, timeoutMs: 0 }).answer();
    expect(current.body.reset).toBeUndefined();
  });

  it('flags a gap when the cursor is older than what is retained', async () => {
    const { store, poll } = setup(make(3));
    for (let i = 1; i <= 6; i++) await store.append('r', draft(`m${i}`), i);
    const behind = await poll({ after: 1 }).answer();
    expect(behind.body).toMatchObject({ gap: true, last: 6 });
    expect(behind.body.messages.map((m) => m.seq)).toEqual([4, 5, 6]);
    expect(behind.outcome).toBe('gap');
    const justInside = await poll({ after: 3 }).answer();
    expect(justInside.body.gap).toBeUndefined();
  });

  it('refuses polls past its capacity with a retry hint', async () => {
    const { hub, poll } = setup(make(), 2);
    poll();
    poll();
    await settle();
    expect(() => poll()).toThrow(ChatError);
    try {
      poll();
    } catch (err) {
      expect(err).toMatchObject({ code: 'over_capacity', retryAfter: 3 });
    }
    expect(hub.parked).toBe(2);
  });

  it('answers every parked poll at close and refuses new ones', async () => {
    const { hub, poll } = setup(make());
    const polls = [poll(), poll({ after: 0, limit: 5 }), poll()];
    await settle();
    expect(hub.close()).toBe(3);
    for (const p of polls) expect((p.results[0] as PollAnswer).outcome).toBe('timeout');
    expect(hub.parked).toBe(0);
    expect(() => poll()).toThrow(expect.objectContaining({ code: 'shutting_down' }));
  });

  it('ends a poll with the error when the store fails', async () => {
    const store = make();
    store.readAfter = async () => {
      throw new Error('disk on fire');
    };
    if (store.readAfterNow) {
      store.readAfterNow = () => {
        throw new Error('disk on fire');
      };
    }
    const { hub, poll } = setup(store);
    const p = poll();
    await vi.waitFor(() => expect(p.results.length).toBe(1));
    expect(p.results[0]).toBeInstanceOf(Error);
    expect(hub.parked).toBe(0);
    await settle();
    expect(store.subscriptions).toBe(0);
  });
});

describe('PollHub with a store that answers later', () => {
  it('forgets a poll cancelled while its first read is in flight', async () => {
    const store = new ProbeStore();
    const { hub, poll } = setup(store);
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const p = poll();
    await settle();
    p.handle.cancel();
    open();
    await settle();
    expect(hub.parked).toBe(0);
    expect(store.subscriptions).toBe(0);
    expect(p.results).toEqual([]);
  });

  it('does not lose a message appended between its read and its parking', async () => {
    const store = new ProbeStore();
    const { hub, poll } = setup(store);
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const p = poll();
    await settle(); // the read has happened (room empty) and is held back
    await store.append('r', draft('racing'), 1); // the signal finds nobody parked
    open();
    const answer = await p.answer();
    expect(answer.body.messages.map((m) => m.text)).toEqual(['racing']);
    expect(hub.parked).toBe(0);
  });
});

describe('PollHub with a store that answers at once', () => {
  it('gives the polls that come back at one cursor the same answer, until the room changes', async () => {
    const store = new ProbeStore(100, { now: true });
    const { hub, poll } = setup(store);
    await store.append('r', draft('a'), 1);
    await store.append('r', draft('b'), 2);
    poll({ after: 2 }); // parked: the room is followed, so its change signals are seen
    expect(hub.parked).toBe(1);
    const first = await poll({ after: 0 }).answer();
    const second = await poll({ after: 0 }).answer();
    expect(second).toBe(first);
    expect(first.body.messages.map((m) => m.text)).toEqual(['a', 'b']);
    await store.append('r', draft('c'), 3);
    const third = await poll({ after: 0 }).answer();
    expect(third.body.messages.map((m) => m.text)).toEqual(['a', 'b', 'c']);
  });

  it('gives the polls answered at once the same answer while nobody waits in the room, until the room changes', async () => {
    const store = new ProbeStore(100, { now: true });
    const { hub, poll } = setup(store);
    await store.append('r', draft('a'), 1);
    const first = await poll({ after: 0 }).answer();
    const second = await poll({ after: 0 }).answer();
    expect(hub.parked).toBe(0);
    expect(second).toBe(first);
    await store.append('r', draft('b'), 2);
    const third = await poll({ after: 0 }).answer();
    expect(third).not.toBe(first);
    expect(third.body.messages.map((m) => m.text)).toEqual(['a', 'b']);
  });

  it('keeps only a few answers per room between changes, however many cursors are asked for', async () => {
    const store = new ProbeStore(100, { now: true });
    const { poll } = setup(store);
    for (let i = 1; i <= 30; i++) await store.append('r', draft(`m${i}`), i);
    poll({ after: 30 });
    const cursors = Array.from({ length: 20 }, (_, i) => i);
    const first = await Promise.all(cursors.map((after) => poll({ after }).answer()));
    const again = await Promise.all(cursors.map((after) => poll({ after }).answer()));
    const shared = cursors.filter((i) => again[i] === first[i]);
    expect(shared).toEqual(cursors.slice(0, CACHED_ANSWERS_PER_ROOM));
    expect(again.map((a) => a.body.messages.length)).toEqual(cursors.map((after) => 30 - after));
  });

  it('answers or parks a poll before poll() returns, leaving nothing behind an answered one', async () => {
    vi.useFakeTimers();
    const store = new ProbeStore(100, { now: true });
    const { hub, poll } = setup(store);
    await store.append('r', draft('a'), 1);
    const answered = poll({ after: 0 });
    expect(answered.results).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    const parked = poll({ after: 1 });
    expect(parked.results).toEqual([]);
    expect(hub.parked).toBe(1);
    parked.handle.cancel();
    expect(hub.parked).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe.each([
  ['answers later', false],
  ['answers at once', true],
])('PollHub, a poll resting on stored membership, with a store that %s', (_kind, now) => {
  const ann = { id: 'ann', name: 'Ann' };
  const bob = { id: 'bob', name: 'Bob' };

  it('is refused with not_found when the user is not a member, leaving nothing parked', async () => {
    const store = new ProbeStore(100, { now });
    await store.createRoom('p_r', '', ann);
    const { hub, poll } = setup(store);
    const p = poll({ room: 'p_r', member: 'bob' });
    await vi.waitFor(() => expect(p.results).toHaveLength(1));
    expect(p.results[0]).toMatchObject({ code: 'not_found' });
    expect(hub.parked).toBe(0);
    expect(store.subscriptions).toBe(0);
  });

  it('ends with not_found when the user is removed, while another member\'s poll stays parked and gets the next message', async () => {
    const store = new ProbeStore(100, { now });
    await store.createRoom('p_r', '', ann);
    await store.addMember('p_r', bob, 10);
    const { hub, poll } = setup(store);
    const bobs = poll({ room: 'p_r', member: 'bob' });
    const anns = poll({ room: 'p_r', member: 'ann' });
    await vi.waitFor(() => expect(hub.parked).toBe(2));
    await store.removeMember('p_r', 'bob');
    await vi.waitFor(() => expect(bobs.results).toHaveLength(1));
    expect(bobs.results[0]).toMatchObject({ code: 'not_found' });
    expect(hub.parked).toBe(1);
    await store.append('p_r', { author: 'Ann', authorId: 'ann', text: 'hi' }, 1);
    expect((await anns.answer()).body.messages.map((m) => m.text)).toEqual(['hi']);
    expect(bobs.results).toHaveLength(1);
    expect(hub.parked).toBe(0);
  });
});

describe.each([
  ['answers later', false],
  ['answers at once', true],
])('PollHub, a sync on several rooms, with a store that %s', (_kind, now) => {
  // Rooms with a cursor say they have the (empty) lists, so that presence does not answer them at once.
  function syncOf(hub: PollHub, rooms: SyncRoom[], timeoutMs = 60_000) {
    const results: (SyncResult | Error)[] = [];
    const withState = rooms.map((r) => (r.after === undefined ? r : { state: NOBODY, ...r }));
    const handle = hub.pollRooms({ rooms: withState, limit: 100, timeoutMs }, (r) => results.push(r));
    return { handle, results };
  }
  const texts = (result: SyncResult | Error | undefined, room: string) =>
    ((result as SyncResult).get(room)!.answer as PollAnswer).body.messages.map((m) => m.text);

  it('parks on every room, is woken by a message in any, answered once, and leaves every room', async () => {
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const s = syncOf(hub, [{ room: 'a', after: 0 }, { room: 'b', after: 0 }, { room: 'c', after: 0 }]);
    await vi.waitFor(() => expect(store.subscriptions).toBe(3));
    await settle();
    expect(hub.parked).toBe(1);
    await store.append('b', draft('in b'), 1);
    await vi.waitFor(() => expect(s.results).toHaveLength(1));
    expect([...(s.results[0] as SyncResult).keys()]).toEqual(['b']);
    expect(texts(s.results[0], 'b')).toEqual(['in b']);
    expect(hub.parked).toBe(0);
    await vi.waitFor(() => expect(store.subscriptions).toBe(0));
    await store.append('a', draft('in a'), 2);
    await settle();
    expect(s.results).toHaveLength(1);
  });

  it('answers at once with every room that has news, joins included, and a denied room as not_found', async () => {
    const store = new ProbeStore(100, { now });
    await store.append('a', draft('old a'), 1);
    await store.append('b', draft('b1'), 1);
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const s = syncOf(hub, [{ room: 'a' }, { room: 'b', after: 0 }, { room: 'c', after: 0 }, { room: 'p_x', denied: true }]);
    await vi.waitFor(() => expect(s.results).toHaveLength(1));
    const result = s.results[0] as SyncResult;
    expect([...result.keys()].sort()).toEqual(['a', 'b', 'p_x']);
    expect(texts(result, 'a')).toEqual(['old a']);
    expect(texts(result, 'b')).toEqual(['b1']);
    expect(result.get('p_x')!.answer).toMatchObject({ code: 'not_found' });
    expect(hub.parked).toBe(0);
    await vi.waitFor(() => expect(store.subscriptions).toBe(0));
  });

  it('times out with nothing, and a cancelled one leaves nothing behind', async () => {
    vi.useFakeTimers();
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 1, retryAfter: 3 });
    const s = syncOf(hub, [{ room: 'a', after: 0 }, { room: 'b', after: 0 }], 5000);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    // One sync is one poll against the capacity, however many rooms it has.
    expect(() => hub.poll({ room: 'z', after: 0, limit: 1, timeoutMs: 1 }, () => {})).toThrow(/too many polls/);
    await vi.advanceTimersByTimeAsync(5000);
    expect(s.results).toHaveLength(1);
    expect((s.results[0] as SyncResult).size).toBe(0);
    const c = syncOf(hub, [{ room: 'a', after: 0 }, { room: 'b', after: 0 }], 5000);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    c.handle.cancel();
    expect(hub.parked).toBe(0);
    await vi.waitFor(() => expect(store.subscriptions).toBe(0));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(c.results).toEqual([]);
  });

  it('is superseded by a newer sync of the same client and user, leaving every room; a late seq is superseded at once', async () => {
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const clients = new SyncClients();
    const start = (seq: number, user?: string) => {
      const results: unknown[] = [];
      clients.start({ id: 'browser-1', seq, user }, (r) => results.push(r), (end) =>
        hub.pollRooms({ rooms: [{ room: 'a', after: 0, state: NOBODY }, { room: 'b', after: 0, state: NOBODY }], limit: 100, timeoutMs: 60_000 }, end),
      );
      return results;
    };
    const first = start(10);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    const second = start(11);
    expect(first).toEqual(['superseded']);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    expect(start(9)).toEqual(['superseded']);
    // Another user on the same client id is someone else's sync: both are held.
    const other = start(1, 'u-other');
    await vi.waitFor(() => expect(hub.parked).toBe(2));
    await store.append('a', draft('news'), 1);
    await vi.waitFor(() => expect(second).toHaveLength(1));
    await vi.waitFor(() => expect(other).toHaveLength(1));
    expect(texts(second[0] as SyncResult, 'a')).toEqual(['news']);
    expect(hub.parked).toBe(0);
    await vi.waitFor(() => expect(store.subscriptions).toBe(0));
  });

  it('is answered at shutdown as if its hold ran out', async () => {
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const s = syncOf(hub, [{ room: 'a', after: 0 }, { room: 'b', after: 0 }]);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    hub.close();
    await vi.waitFor(() => expect(s.results).toHaveLength(1));
    expect((s.results[0] as SyncResult).size).toBe(0);
    expect(hub.parked).toBe(0);
  });
});

describe.each([
  ['answers later', false],
  ['answers at once', true],
])('PollHub, a stream (a sync answered many times), with a store that %s', (_kind, now) => {
  /** A stream whose batches are taken at once, unless `hold` keeps the next one waiting. */
  function streamOf(hub: PollHub, rooms: SyncRoom[], { maxAgeMs = 60_000, hold = false } = {}) {
    const batches: StreamEvent[][] = [];
    const ends: ('end' | Error)[] = [];
    const waiting: (() => void)[] = [];
    const handle = hub.stream({ rooms: rooms.map((r) => ({ state: NOBODY, ...r })), limit: 100, maxAgeMs }, (result, next) => {
      if (result === 'end' || result instanceof Error) return void ends.push(result);
      batches.push(result);
      if (hold) waiting.push(next);
      else next();
    });
    return { handle, batches, ends, waiting };
  }
  const textsOf = (batch: StreamEvent[]) => batch.flatMap((e) => ((e.report.answer as PollAnswer).body.messages ?? []).map((m) => `${e.room}:${m.text}`));

  it('is answered again and again, each event carrying every room\'s cursor, and counts as one poll all along', async () => {
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 1, retryAfter: 3 });
    const s = streamOf(hub, [{ room: 'a', after: 0 }, { room: 'b', after: 0 }]);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    expect(hub.streamsOpen).toBe(1);
    expect(() => hub.poll({ room: 'z', after: 0, limit: 1, timeoutMs: 1 }, () => {})).toThrow(/too many polls/);
    const { epoch } = await store.info('a');
    await store.append('a', draft('one'), 1);
    await vi.waitFor(() => expect(s.batches).toHaveLength(1));
    expect(s.batches[0]!.map((e) => e.id)).toEqual([`a:1:${epoch},b:0`]);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    await store.append('b', draft('two'), 2);
    await store.append('a', draft('three'), 3);
    await vi.waitFor(() => expect(s.batches.flatMap(textsOf)).toEqual(['a:one', 'b:two', 'a:three']));
    expect(s.batches.at(-1)!.at(-1)!.id).toMatch(new RegExp(`^a:\\d:${epoch},b:1:${epoch}$`));
    s.handle.cancel();
    expect(hub.streamsOpen).toBe(0);
    expect(hub.parked).toBe(0);
    await vi.waitFor(() => expect(store.subscriptions).toBe(0));
    expect(s.ends).toEqual([]);
  });

  it('waits for next() before reading more: a client that takes nothing holds one batch, not a growing backlog', async () => {
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const s = streamOf(hub, [{ room: 'a', after: 0 }], { hold: true });
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    await store.append('a', draft('one'), 1);
    await vi.waitFor(() => expect(s.batches).toHaveLength(1));
    for (let i = 0; i < 20; i++) await store.append('a', draft(`more ${i}`), 2);
    await settle();
    expect(s.batches).toHaveLength(1);
    expect(hub.parked).toBe(0);
    expect(store.subscriptions).toBe(0);
    s.waiting.shift()!();
    await vi.waitFor(() => expect(s.batches).toHaveLength(2));
    expect(textsOf(s.batches[1]!)).toHaveLength(20);
    s.handle.cancel();
  });

  it('in a sliced wake-up, parks again only once the whole group has its events, so no stream waits behind another\'s next read', async () => {
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3, wakeSlice: 2 });
    /** hub.parked as each stream got its event: none of those answered may be parked again yet. */
    const parkedAtDelivery: number[] = [];
    const streams = Array.from({ length: 5 }, () =>
      hub.stream({ rooms: [{ room: 'a', after: 0, state: NOBODY }], limit: 100, maxAgeMs: 60_000 }, (result, next) => {
        if (Array.isArray(result)) parkedAtDelivery.push(hub.parked);
        next();
      }),
    );
    await vi.waitFor(() => expect(hub.parked).toBe(5));
    await store.append('a', draft('one'), 1);
    await vi.waitFor(() => expect(parkedAtDelivery).toHaveLength(5));
    expect(parkedAtDelivery).toEqual([4, 3, 2, 1, 0]);
    await vi.waitFor(() => expect(hub.parked).toBe(5));
    await store.append('a', draft('two'), 2);
    await vi.waitFor(() => expect(parkedAtDelivery).toHaveLength(10));
    for (const stream of streams) stream.cancel();
    expect(hub.parked).toBe(0);
  });

  it('stops following a room reported not_found, and ends when none is left', async () => {
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const s = streamOf(hub, [{ room: 'p_x', after: 0, denied: true }]);
    await vi.waitFor(() => expect(s.ends).toEqual(['end']));
    expect(s.batches[0]!.map((e) => [e.room, e.id])).toEqual([['p_x', '']]);
    expect(hub.streamsOpen).toBe(0);
  });

  it('ends after its age, and at shutdown', async () => {
    vi.useFakeTimers();
    const store = new ProbeStore(100, { now });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const aged = streamOf(hub, [{ room: 'a', after: 0 }], { maxAgeMs: 5000 });
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    await vi.advanceTimersByTimeAsync(5000);
    expect(aged.ends).toEqual(['end']);
    expect(hub.streamsOpen).toBe(0);
    vi.useRealTimers();
    const closing = streamOf(hub, [{ room: 'a', after: 0 }]);
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    await store.append('a', draft('last'), 1);
    await vi.waitFor(() => expect(closing.batches.flatMap(textsOf)).toEqual(['a:last']));
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    hub.close();
    await vi.waitFor(() => expect(closing.ends).toEqual(['end']));
    expect(hub.streamsOpen).toBe(0);
    expect(hub.parked).toBe(0);
  });
});

describe.each([
  ['answers later', false],
  ['answers at once', true],
])('PollHub, presence and typing, with a store that %s', (_kind, now) => {
  const ann = { id: 'u-ann', name: 'ann' };
  const bob = { id: 'u-bob', name: 'bob' };
  const WINDOW_MS = 30_000;
  const stateOf = (online: User[], typing: User[] = []) => presenceView({ online, onlineCount: online.length, typing, nextExpiry: undefined }).state;

  function setupPresence() {
    const store = new ProbeStore(100, { now });
    const online = new OnlineTracker(store, { windowMs: WINDOW_MS });
    const hub = new PollHub(store, { capacity: 100, retryAfter: 3, online });
    const sync = (rooms: SyncRoom[], user?: User, timeoutMs = 60_000) => {
      const results: (SyncResult | Error)[] = [];
      const handle = hub.pollRooms({ rooms, limit: 100, timeoutMs, user }, (r) => results.push(r));
      const result = async () => {
        await vi.waitFor(() => expect(results).toHaveLength(1));
        return results[0] as SyncResult;
      };
      return { handle, results, result };
    };
    return { store, hub, online, sync };
  }
  const listsIn = (result: SyncResult, room: string) => JSON.parse(`{${result.get(room)!.presence!.fields}}`);
  /** With fake timers: lets the hub read and park without moving the clock (vi.waitFor would). */
  const turns = async () => {
    for (let i = 0; i < 10; i++) await vi.advanceTimersByTimeAsync(0);
  };

  it('reports the lists at once to a sync without a state (its user among them), parks one that has them, and folds an outdated one', async () => {
    vi.useFakeTimers();
    const { hub, sync } = setupPresence();
    const first = sync([{ room: 'a', after: 0 }], ann);
    await turns();
    expect(first.results).toHaveLength(1);
    const lists = listsIn(first.results[0] as SyncResult, 'a');
    expect(lists).toEqual({ state: stateOf([ann]), online: [ann], onlineCount: 1, typing: [] });
    expect((first.results[0] as SyncResult).get('a')!.answer).toMatchObject({ outcome: 'timeout', body: { messages: [], last: 0 } });

    const anns = sync([{ room: 'a', after: 0, state: lists.state }], ann);
    await turns();
    expect(hub.parked).toBe(1);
    // bob comes with ann's state: the lists (now with him) are news to him, and to ann,
    // but only once each sync is a second old.
    const bobs = sync([{ room: 'a', after: 0, state: lists.state }], bob);
    await vi.advanceTimersByTimeAsync(PRESENCE_FOLD_MS - 10);
    expect(bobs.results).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(10);
    expect(bobs.results).toHaveLength(1);
    expect(listsIn(bobs.results[0] as SyncResult, 'a').online).toEqual([ann, bob]);
    expect(anns.results).toHaveLength(1);
    expect(listsIn(anns.results[0] as SyncResult, 'a').online).toEqual([ann, bob]);
  });

  it('folds presence-only changes: a sync is answered no sooner than a second after it started, with every change by then', async () => {
    vi.useFakeTimers();
    const { store, hub, sync } = setupPresence();
    const s = sync([{ room: 'a', after: 0, state: NOBODY }]);
    await turns();
    expect(hub.parked).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    await store.setOnline('a', ann, Date.now() + 60_000, Date.now());
    await vi.advanceTimersByTimeAsync(300);
    await store.setTyping('a', bob, Date.now() + TYPING_MS, Date.now());
    await vi.advanceTimersByTimeAsync(PRESENCE_FOLD_MS - 500);
    expect(s.results).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(s.results).toHaveLength(1);
    expect(listsIn(s.results[0] as SyncResult, 'a')).toMatchObject({ online: [ann], onlineCount: 1, typing: [bob] });
    expect(hub.parked).toBe(0);
  });

  it('answers a change after a quiet spell at once, and a message with a change at once with both', async () => {
    vi.useFakeTimers();
    const { store, hub, sync } = setupPresence();
    const quiet = sync([{ room: 'a', after: 0, state: NOBODY }]);
    await turns();
    expect(hub.parked).toBe(1);
    await vi.advanceTimersByTimeAsync(5000);
    await store.setOnline('a', ann, Date.now() + 60_000, Date.now());
    await turns();
    expect(quiet.results).toHaveLength(1);
    expect(listsIn(quiet.results[0] as SyncResult, 'a').online).toEqual([ann]);

    const busy = sync([{ room: 'a', after: 0, state: stateOf([ann]) }]);
    await turns();
    expect(hub.parked).toBe(1);
    await store.setTyping('a', ann, Date.now() + TYPING_MS, Date.now());
    await store.append('a', draft('hello'), 1);
    await turns();
    expect(busy.results).toHaveLength(1);
    const result = busy.results[0] as SyncResult;
    expect((result.get('a')!.answer as PollAnswer).body.messages.map((m) => m.text)).toEqual(['hello']);
    expect(listsIn(result, 'a').typing).toEqual([ann]);
  });

  it('ends typing after 6 s without a signal: a held sync gets the empty list', async () => {
    vi.useFakeTimers();
    const { store, hub, sync } = setupPresence();
    await store.setTyping('a', ann, Date.now() + TYPING_MS, Date.now());
    const s = sync([{ room: 'a', after: 0, state: stateOf([], [ann]) }]);
    await turns();
    expect(hub.parked).toBe(1);
    await vi.advanceTimersByTimeAsync(TYPING_MS - 10);
    expect(s.results).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(20);
    expect(s.results).toHaveLength(1);
    expect(listsIn(s.results[0] as SyncResult, 'a')).toMatchObject({ online: [], typing: [] });
  });

  it('keeps a user online while their sync is held and for the window after it ended, then reports them gone', async () => {
    vi.useFakeTimers();
    const { hub, online, sync } = setupPresence();
    const anns = sync([{ room: 'a', after: 0, state: stateOf([ann]) }, { room: 'b', after: 0, state: stateOf([ann]) }], ann, 10_000);
    await turns();
    expect(hub.parked).toBe(1);
    expect(online.usersOnline).toBe(1);
    const bobs = sync([{ room: 'a', after: 0, state: stateOf([ann]) }], undefined, 120_000);
    await turns();
    expect(hub.parked).toBe(2);
    // ann's hold runs out and she polls no more (her tab closed).
    await vi.advanceTimersByTimeAsync(10_000);
    expect(anns.results).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(WINDOW_MS - 1000);
    expect(bobs.results).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1000 + 200);
    expect(bobs.results).toHaveLength(1);
    expect(listsIn(bobs.results[0] as SyncResult, 'a').online).toEqual([]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS);
    expect(online.usersOnline).toBe(0);
  });

  it('shows a user in a private room only once their membership is confirmed', async () => {
    const { store, hub, sync } = setupPresence();
    await store.createRoom('p_r', '', bob);
    const mallory = { id: 'u-mal', name: 'mallory' };
    const denied = await sync([{ room: 'p_r', after: 0, member: mallory.id }], mallory).result();
    expect(denied.get('p_r')!.answer).toMatchObject({ code: 'not_found' });
    expect(denied.get('p_r')!.presence).toBeUndefined();
    const bobs = await sync([{ room: 'p_r', after: 0, member: bob.id }], bob).result();
    expect(listsIn(bobs, 'p_r').online).toEqual([bob]);
    expect(hub.parked).toBe(0);
  });

  it('counts a plain poll of a signed-in user as online, and reads presence only for syncs', async () => {
    const { store, hub, sync } = setupPresence();
    hub.poll({ room: 'a', after: 0, limit: 10, timeoutMs: 60_000, user: ann }, () => {});
    await vi.waitFor(() => expect(hub.parked).toBe(1));
    expect(store.presenceReads).toBe(0);
    const result = await sync([{ room: 'a', after: 0 }]).result();
    expect(listsIn(result, 'a').online).toEqual([ann]);
  });
});
