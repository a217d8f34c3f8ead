import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/core/memory-store.js';
import { storeContract } from './store-contract.js';

storeContract('memory', async ({ retention }) => new MemoryStore({ retention, maxRooms: 1000 }));

describe('memory store', () => {
  it('gives a new epoch to each process lifetime', async () => {
    const a = new MemoryStore({ retention: 10, maxRooms: 10 });
    const b = new MemoryStore({ retention: 10, maxRooms: 10 });
    expect((await a.info('r')).epoch).not.toBe((await b.info('r')).epoch);
  });

  it('forgets the least recently posted-to room past maxRooms, and gives its next life a new epoch', async () => {
    const store = new MemoryStore({ retention: 10, maxRooms: 2 });
    const draft = { author: 'a', text: 't' };
    await store.append('one', draft, 1);
    const oldEpoch = (await store.info('one')).epoch;
    await store.append('two', draft, 1);
    await store.append('one', draft, 1); // "one" is now the most recent
    await store.append('three', draft, 1); // so "two" is forgotten
    expect((await store.info('two')).head).toBe(0);
    expect((await store.info('one'))).toMatchObject({ head: 2, epoch: oldEpoch });
    const { message } = await store.append('two', draft, 1);
    expect(message.seq).toBe(1);
    expect((await store.info('two')).epoch).not.toBe(oldEpoch);
  });

  it('keeps at most maxRooms private room records, forgetting the least recently changed one and its members\' index', async () => {
    const store = new MemoryStore({ retention: 10, maxRooms: 2 });
    const ann = { id: 'u-ann', name: 'Ann' };
    const bob = { id: 'u-bob', name: 'Bob' };
    await store.createRoom('p_one', '', ann);
    await store.createRoom('p_two', '', ann);
    await store.addMember('p_one', bob, 100); // "p_one" is now the most recently changed
    let signals = 0;
    await store.subscribe('p_two', () => signals++);
    await store.openDirect('dm_three', bob, ann); // so "p_two" is forgotten
    expect(await store.readRoom('p_two')).toBeUndefined();
    expect(signals).toBe(1);
    expect((await store.roomsOf(ann.id)).map((r) => r.room)).toEqual(['dm_three', 'p_one']);
    // Records and message rooms are counted apart.
    await store.append('a', { author: 'a', text: 't' }, 1);
    await store.append('b', { author: 'a', text: 't' }, 1);
    expect((await store.roomsOf(bob.id)).map((r) => r.room)).toEqual(['dm_three', 'p_one']);
  });

  it('forgets a clientMsgId once its message has left the buffer', async () => {
    const store = new MemoryStore({ retention: 2, maxRooms: 10 });
    await store.append('r', { author: 'a', text: 'x', clientMsgId: 'k' }, 1);
    await store.append('r', { author: 'a', text: 'y' }, 1);
    await store.append('r', { author: 'a', text: 'z' }, 1);
    const again = await store.append('r', { author: 'a', text: 'x', clientMsgId: 'k' }, 1);
    expect(again.duplicate).toBe(false);
    expect(again.message.seq).toBe(4);
  });
});
