import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PollHub } from '../../src/core/poll-hub.js';
import type { PollAnswer } from '../../src/core/answer.js';
import { StoreOpenError } from '../../src/core/store.js';
import { SqliteStore, type SqliteStoreOptions } from '../../src/stores/sqlite-store.js';
import { storeContract } from './store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'chat-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newPath = (): string => join(dir, `store-${++files}.db`);

storeContract('sqlite', async ({ retention }) => SqliteStore.open({ path: newPath(), retention, retentionAgeMs: 0 }));

describe('sqlite store', () => {
  const open: SqliteStore[] = [];
  const make = (options: Partial<SqliteStoreOptions> = {}): SqliteStore => {
    const store = SqliteStore.open({ path: newPath(), retention: 100, retentionAgeMs: 0, ...options });
    open.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  const draft = (text: string, clientMsgId?: string) => ({ author: 'ann', text, ...(clientMsgId ? { clientMsgId } : {}) });

  it('keeps messages, seqs, the epoch and clientMsgIds across close and reopen', async () => {
    const path = newPath();
    const first = make({ path });
    const a = (await first.append('r', draft('one', 'k1'), 1)).message;
    const b = (await first.append('r', draft('two'), 2)).message;
    const { epoch } = await first.info('r');
    await first.close();

    const again = make({ path });
    expect(await again.readAfter('r', 0, 10)).toMatchObject({ epoch, head: 2, oldest: 1, messages: [a, b] });
    expect(await again.append('r', draft('retry of one', 'k1'), 3)).toEqual({ message: a, duplicate: true });
    expect((await again.append('r', draft('three'), 3)).message.seq).toBe(3);
    expect((await again.info('empty')).epoch).toBe(epoch);
  });

  it('refuses a second opener of the same file while the first has it', async () => {
    const path = newPath();
    make({ path });
    expect(() => SqliteStore.open({ path, retention: 10, retentionAgeMs: 0 })).toThrow(/is in use by another server process/);
  });

  it('refuses a file that is not a SQLite database, and a path it cannot create, with one line each', () => {
    const bad = join(dir, 'not-a-database.db');
    writeFileSync(bad, 'just some text, not a database '.repeat(200));
    expect(() => SqliteStore.open({ path: bad, retention: 10, retentionAgeMs: 0 })).toThrow(StoreOpenError);
    expect(() => SqliteStore.open({ path: bad, retention: 10, retentionAgeMs: 0 })).toThrow(/is not a usable SQLite database/);
    const underAFile = join(bad, 'chat.db');
    expect(() => SqliteStore.open({ path: underAFile, retention: 10, retentionAgeMs: 0 })).toThrow(/cannot create the directory/);
  });

  it('refuses a database written by a newer version', () => {
    const path = newPath();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => SqliteStore.open({ path, retention: 10, retentionAgeMs: 0 })).toThrow(/newer version of this server \(schema 99/);
  });

  it('drops messages past the age limit, keeping each room its newest and a contiguous run', async () => {
    const hour = 3600_000;
    const store = make({ retentionAgeMs: hour });
    for (let i = 1; i <= 5; i++) await store.append('old', draft(`o${i}`), i);
    for (let i = 1; i <= 4; i++) await store.append('mixed', draft(`m${i}`), i <= 2 ? 10 : 2 * hour);
    await store.readAfter('mixed', 0, 10); // cached before the sweep: the sweep must not leave it stale

    expect(await store.sweep(2 * hour + 1)).toBe(2);
    expect(await store.readAfter('old', 0, 10)).toMatchObject({ head: 5, oldest: 5 });
    expect((await store.readAfter('old', 0, 10)).messages.map((m) => m.text)).toEqual(['o5']);
    expect(await store.readAfter('mixed', 0, 10)).toMatchObject({ head: 4, oldest: 3 });
    expect((await store.readBefore('mixed', 10, 10)).messages.map((m) => m.seq)).toEqual([3, 4]);
    // Once no longer the newest, an expired message goes at the next sweep.
    expect((await store.append('old', draft('o6'), 3 * hour)).message.seq).toBe(6);
    expect(await store.sweep(2 * hour + 1)).toBe(1);
    expect(await store.info('old')).toMatchObject({ head: 6, oldest: 6 });
    expect(await store.sweep(2 * hour + 1)).toBe(0);
  });

  it('answers polls at the head from memory: 1,000 polls and their wake-up read nothing from the database', async () => {
    const store = make();
    await store.append('r', draft('first'), 1);
    const hub = new PollHub(store, { capacity: 2000, retryAfter: 1 });
    await store.readAfter('r', 1, 100); // the room is read once, then cached
    const readsBefore = store.reads;
    const answers: (PollAnswer | Error)[] = [];
    for (let i = 0; i < 1000; i++) hub.poll({ room: 'r', after: 1, limit: 100, timeoutMs: 10_000 }, (a) => answers.push(a));
    await expect.poll(() => hub.parked).toBe(1000);
    await store.append('r', draft('second'), 2);
    await expect.poll(() => answers.length).toBe(1000);
    expect(new Set(answers).size).toBe(1);
    expect((answers[0] as PollAnswer).body.messages.map((m) => m.text)).toEqual(['second']);
    expect(store.reads).toBe(readsBefore);
  });

  it('reads history older than what it keeps in memory from the database', async () => {
    const store = make({ retention: 1000 });
    for (let i = 1; i <= 300; i++) await store.append('long', draft(`t${i}`), i);
    const readsBefore = store.reads;
    const page = await store.readBefore('long', 51, 50);
    expect(page.messages.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await store.readAfter('long', 0, 1000)).messages.map((m) => m.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(store.reads).toBeGreaterThan(readsBefore);
  });

  it('commits appends made in the same tick together, each with its own seq', async () => {
    const store = make();
    const results = await Promise.all([
      store.append('r', draft('a', 'same'), 1),
      store.append('r', draft('b', 'same'), 1),
      store.append('r', draft('c'), 1),
      store.append('s', draft('d'), 1),
    ]);
    expect(results.map((r) => [r.message.seq, r.duplicate])).toEqual([
      [1, false],
      [1, true],
      [2, false],
      [1, false],
    ]);
    expect(results[1]!.message).toEqual(results[0]!.message);
  });

  it('fails appends and reads with StoreUnavailableError once closed', async () => {
    const store = make();
    await store.close();
    await expect(store.append('r', draft('late'), 1)).rejects.toThrow(/closed/);
    await expect(store.readAfter('r', 0, 1)).rejects.toThrow(/closed/);
    await expect(store.ping()).rejects.toThrow(/closed/);
  });
});
