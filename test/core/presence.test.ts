// OnlineTracker: who is online while their polls are held, written to the
// store sparingly, ended exactly a window after the last poll, and bounded
// however many rooms a user names.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../src/core/memory-store.js';
import { MAX_ROOMS_PER_USER, OnlineTracker } from '../../src/core/presence.js';

const ann = { id: 'u-ann', name: 'ann' };
const WINDOW_MS = 30_000;

afterEach(() => {
  vi.useRealTimers();
});

function setup() {
  vi.useFakeTimers();
  const store = new MemoryStore({ retention: 10, maxRooms: 10 });
  const writes = vi.spyOn(store, 'setOnline');
  const tracker = new OnlineTracker(store, { windowMs: WINDOW_MS });
  const onlineIn = async (room: string) => (await store.readPresence(room, Date.now(), 100)).online.map((u) => u.id);
  return { store, writes, tracker, onlineIn };
}

describe('OnlineTracker', () => {
  it('writes once for polls that follow each other, and ends the entry a window after the last one', async () => {
    const { writes, tracker, onlineIn } = setup();
    for (let i = 0; i < 20; i++) {
      const end = tracker.hold('r', ann, 25_000);
      await vi.advanceTimersByTimeAsync(100);
      end();
    }
    expect(writes).toHaveBeenCalledTimes(1);
    const lastEnded = Date.now();
    expect(await onlineIn('r')).toEqual([ann.id]);
    await vi.advanceTimersByTimeAsync(WINDOW_MS - 100);
    expect(await onlineIn('r')).toEqual([ann.id]);
    await vi.advanceTimersByTimeAsync(200);
    expect(await onlineIn('r')).toEqual([]);
    expect(writes.mock.calls.at(-1)![2]).toBe(lastEnded + WINDOW_MS);
    await vi.advanceTimersByTimeAsync(2000);
    expect(tracker.usersOnline).toBe(0);
  });

  it(`shows a user in at most ${MAX_ROOMS_PER_USER} rooms at once, and forgets them once their entries end`, async () => {
    const { store, tracker, onlineIn } = setup();
    for (let i = 0; i < MAX_ROOMS_PER_USER + 50; i++) tracker.hold(`r${i}`, ann, 0)();
    let shown = 0;
    for (let i = 0; i < MAX_ROOMS_PER_USER + 50; i++) if ((await onlineIn(`r${i}`)).length > 0) shown++;
    expect(shown).toBe(MAX_ROOMS_PER_USER);
    expect(tracker.usersOnline).toBe(1);
    await vi.advanceTimersByTimeAsync(WINDOW_MS + 3000);
    expect(tracker.usersOnline).toBe(0);
    // Room slots come back: a new room shows the user again.
    tracker.hold('later', ann, 0)();
    expect(await onlineIn('later')).toEqual([ann.id]);
    await store.close();
  });

  it('ends the entry at once when a poll ends because the user may no longer read the room', async () => {
    const { tracker, onlineIn } = setup();
    const end = tracker.hold('p_r', ann, 25_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(await onlineIn('p_r')).toEqual([ann.id]);
    end(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(await onlineIn('p_r')).toEqual([]);
  });
});
