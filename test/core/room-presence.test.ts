// RoomPresence: a room's lists as syncs watching it see them, and the hub
// telling every held sync when they change, whatever found the change.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../src/core/memory-store.js';
import { PRESENCE_FOLD_MS, PollHub } from '../../src/core/poll-hub.js';
import { presenceView } from '../../src/core/presence.js';
import { RoomPresence } from '../../src/core/room-presence.js';
import type { SyncResult, SyncRoom } from '../../src/core/sync.js';
import type { User } from '../../src/core/types.js';

const ann = { id: 'u-ann', name: 'ann' };
const bob = { id: 'u-bob', name: 'bob' };
const stateOf = (online: User[]) => presenceView({ online, onlineCount: online.length, typing: [], nextExpiry: undefined }).state;

afterEach(() => {
  vi.useRealTimers();
});

/** With fake timers: lets reads finish without moving the clock. */
const turns = async () => {
  for (let i = 0; i < 10; i++) await vi.advanceTimersByTimeAsync(0);
};

describe('RoomPresence', () => {
  function setup() {
    vi.useFakeTimers();
    const store = new MemoryStore({ retention: 10, maxRooms: 10 });
    const changed = vi.fn();
    const presence = new RoomPresence(store, 'a', Date.now, changed);
    return { store, changed, presence };
  }

  it('tells its owner when a read under the same signal finds that an entry has ended, before its timer fires', async () => {
    const { store, changed, presence } = setup();
    // The entry ends sooner than the least delay of the expiry timer.
    await store.setOnline('a', ann, Date.now() + 50, Date.now());
    expect((await presence.read(0)).state).toBe(stateOf([ann]));
    await vi.advanceTimersByTimeAsync(60);
    expect(changed).not.toHaveBeenCalled();
    expect((await presence.read(0)).state).toBe(stateOf([]));
    expect(changed).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(changed).toHaveBeenCalledTimes(1);
  });

  it('says nothing of a read that finds the same lists, nor of one after a signal (which tells the room already)', async () => {
    const { store, changed, presence } = setup();
    await store.setOnline('a', ann, Date.now() + 50, Date.now());
    await presence.read(0);
    // A longer online time is no change of the lists, so the store signals nothing.
    await store.setOnline('a', ann, Date.now() + 60_000, Date.now());
    await vi.advanceTimersByTimeAsync(60);
    expect((await presence.read(0)).state).toBe(stateOf([ann]));
    await store.setOnline('a', bob, Date.now() + 60_000, Date.now());
    expect((await presence.read(1)).state).toBe(stateOf([ann, bob]));
    expect(changed).not.toHaveBeenCalled();
  });
});

describe('PollHub, an entry ending while syncs come and go', () => {
  it('answers a held sync with the new lists when another sync reads them between the entry\'s end and the expiry timer', async () => {
    vi.useFakeTimers();
    const store = new MemoryStore({ retention: 10, maxRooms: 10 });
    const hub = new PollHub(store, { capacity: 10, retryAfter: 3 });
    const sync = (rooms: SyncRoom[]) => {
      const results: (SyncResult | Error)[] = [];
      hub.pollRooms({ rooms, limit: 10, timeoutMs: 60_000 }, (r) => results.push(r));
      return results;
    };
    // The entry ends sooner than the least delay of the expiry timer, so a read can come in between.
    await store.setOnline('a', ann, Date.now() + 50, Date.now());
    const held = sync([{ room: 'a', after: 0, state: stateOf([ann]) }]);
    await turns();
    expect(hub.parked).toBe(1);

    await vi.advanceTimersByTimeAsync(60);
    const late = sync([{ room: 'a', after: 0, state: stateOf([ann]) }]);
    await turns();
    expect(hub.parked).toBe(2);

    await vi.advanceTimersByTimeAsync(PRESENCE_FOLD_MS);
    expect(held).toHaveLength(1);
    const lists = JSON.parse(`{${(held[0] as SyncResult).get('a')!.presence!.fields}}`);
    expect(lists).toMatchObject({ state: stateOf([]), online: [], onlineCount: 0 });
    expect(late).toHaveLength(1);
    hub.close();
    await store.close();
  });
});
