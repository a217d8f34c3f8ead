import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PollHub } from '../../src/core/poll-hub.js';
import type { PollAnswer } from '../../src/core/answer.js';
import { StoreOpenError } from '../../src/core/store.js';
import type { Log } from '../../src/log.js';
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

  it('keeps private room records and the secret across close and reopen', async () => {
    const path = newPath();
    const first = make({ path });
    const ann = { id: 'u-ann', name: 'Ann' };
    const bob = { id: 'u-bob', name: 'Bob' };
    await first.createRoom('p_r', 'Plans', ann);
    await first.addMember('p_r', bob, 100);
    await first.removeMember('p_r', ann.id);
    await first.addMember('p_r', ann, 100);
    const { record } = await first.openDirect('dm_ab', ann, bob);
    expect(await first.sharedSecret('s3cret')).toBe('s3cret');
    await first.close();

    const again = make({ path });
    const plans = { room: 'p_r', title: 'Plans', owner: bob, members: [bob, ann] };
    expect(await again.readRoom('p_r')).toEqual(plans);
    expect(await again.roomsOf(ann.id)).toEqual([record, plans]);
    expect(await again.sharedSecret('another')).toBe('s3cret');
    // Join order goes on from where it was.
    const cy = { id: 'u-cy', name: 'Cy' };
    expect((await again.addMember('p_r', cy, 100))?.members).toEqual([bob, ann, cy]);
  });

  it('upgrades a database of schema version 1 in place, keeping its messages, epoch and clientMsgIds', async () => {
    const path = newPath();
    const old = new Database(path);
    // The schema as version 1 of this server created it.
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE rooms (room TEXT PRIMARY KEY, head INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE messages (
        room TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        author TEXT NOT NULL,
        text TEXT NOT NULL,
        ts INTEGER NOT NULL,
        client_msg_id TEXT,
        PRIMARY KEY (room, seq)
      ) WITHOUT ROWID;
      CREATE UNIQUE INDEX messages_client_msg_id ON messages (room, client_msg_id) WHERE client_msg_id IS NOT NULL;
      CREATE INDEX messages_ts ON messages (ts);
      INSERT INTO meta (key, value) VALUES ('epoch', 'old-epoch');
      INSERT INTO rooms (room, head) VALUES ('r', 2);
      INSERT INTO messages VALUES ('r', 1, 'id-1', 'ann', 'from before', 100, 'k1');
      INSERT INTO messages VALUES ('r', 2, 'id-2', 'bob', 'also from before', 200, NULL);
    `);
    old.pragma('user_version = 1');
    old.close();

    const store = make({ path });
    const before = [
      { seq: 1, id: 'id-1', room: 'r', author: 'ann', text: 'from before', ts: 100, clientMsgId: 'k1' },
      { seq: 2, id: 'id-2', room: 'r', author: 'bob', text: 'also from before', ts: 200 },
    ];
    expect(await store.readAfter('r', 0, 10)).toEqual({ epoch: 'old-epoch', head: 2, oldest: 1, messages: before });
    expect(await store.append('r', draft('retry', 'k1'), 300)).toEqual({ message: before[0], duplicate: true });
    const signed = (await store.append('r', { author: 'Ann', authorId: 'u-ann', text: 'signed' }, 300)).message;
    expect(signed).toMatchObject({ seq: 3, authorId: 'u-ann' });
    expect(await store.createRoom('p_new', '', { id: 'u-ann', name: 'Ann' })).toBeDefined();
    await store.close();

    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    db.close();
    const reopened = make({ path });
    expect((await reopened.readTail('r', 10)).messages).toEqual([...before, signed]);
    expect(await reopened.readRoom('p_new')).toMatchObject({ owner: { id: 'u-ann' } });
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

  describe('a file that went back in time', () => {
    /** A Log that keeps the messages of its warnings and errors. */
    const recording = (): { log: Log; lines: string[] } => {
      const lines: string[] = [];
      const keep = (_fields: object, message: string): void => void lines.push(message);
      return { log: { info() {}, warn: keep, error: keep }, lines };
    };
    const appendTexts = async (store: SqliteStore, room: string, texts: string[]): Promise<void> => {
      for (const text of texts) await store.append(room, draft(text), 1);
    };

    it('gets a new epoch, with one warning, when the file is replaced by an older copy', async () => {
      const path = newPath();
      const first = make({ path });
      await appendTexts(first, 'r', ['m1', 'm2', 'm3']);
      const { epoch } = await first.info('r');
      await first.close();
      copyFileSync(path, `${path}.copy`);
      const second = make({ path });
      await appendTexts(second, 'r', ['m4', 'm5', 'm6', 'm7', 'm8']);
      await second.close();
      copyFileSync(`${path}.copy`, path);

      const { log, lines } = recording();
      const restored = make({ path, log });
      const info = await restored.info('r');
      expect(info).toMatchObject({ head: 3, oldest: 1 });
      expect(info.epoch).not.toBe(epoch);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`new epoch ${info.epoch}`);
      expect((await restored.append('r', draft('m4 again'), 2)).message.seq).toBe(4);
      await restored.close();

      // The new epoch is the file's from now on: reopening it finds nothing amiss.
      const again = make({ path, log });
      expect((await again.info('r')).epoch).toBe(info.epoch);
      expect(lines).toHaveLength(1);
    });

    it('gets a new epoch when a room was deleted by hand', async () => {
      const path = newPath();
      const first = make({ path });
      await appendTexts(first, 'r', ['r1', 'r2']);
      await appendTexts(first, 's', ['s1']);
      const { epoch } = await first.info('r');
      await first.close();
      const db = new Database(path);
      db.prepare("DELETE FROM messages WHERE room = 's'").run();
      db.prepare("DELETE FROM rooms WHERE room = 's'").run();
      db.close();

      const reopened = make({ path });
      expect((await reopened.info('r')).epoch).not.toBe(epoch);
      expect(await reopened.info('s')).toMatchObject({ head: 0 });
    });

    it('keeps its epoch when the mark is missing, behind, unreadable or of another file', async () => {
      const path = newPath();
      const mark = `${path}-mark`;
      const { log, lines } = recording();
      const first = make({ path, log });
      await appendTexts(first, 'r', ['m1', 'm2']);
      const { epoch } = await first.info('r');
      const behind = readFileSync(mark);
      await appendTexts(first, 'r', ['m3']);
      await first.close();
      const otherPath = newPath();
      const other = make({ path: otherPath, log });
      await appendTexts(other, 'r', ['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8']);
      await other.close();

      // Behind: as after a crash between a commit and the mark's update.
      const marks = {
        missing: () => rmSync(mark),
        behind: () => writeFileSync(mark, behind),
        unreadable: () => writeFileSync(mark, 'not a mark at all\n'),
        'of another file': () => copyFileSync(`${otherPath}-mark`, mark),
      };
      for (const [what, prepare] of Object.entries(marks)) {
        prepare();
        const store = make({ path, log });
        expect((await store.info('r')).epoch, `mark ${what}`).toBe(epoch);
        await store.close();
        expect(existsSync(mark), `mark ${what}`).toBe(true);
      }
      expect(lines).toEqual([]);
    });

    it('keeps the epoch started by newEpoch across reopening', async () => {
      const path = newPath();
      const { log, lines } = recording();
      const first = make({ path, log });
      await appendTexts(first, 'r', ['m1']);
      const epoch = await first.newEpoch();
      await first.close();
      const again = make({ path, log });
      expect(await again.info('r')).toEqual({ epoch, head: 1, oldest: 1 });
      expect(lines).toEqual([]);
    });

    it('refuses to start, with one line, when the mark cannot be written', () => {
      const path = newPath();
      mkdirSync(`${path}-mark`);
      expect(() => SqliteStore.open({ path, retention: 10, retentionAgeMs: 0 })).toThrow(StoreOpenError);
      expect(() => SqliteStore.open({ path, retention: 10, retentionAgeMs: 0 })).toThrow(new RegExp(`^cannot use ${path}-mark`));
    });
  });

  it('fails appends and reads with StoreUnavailableError once closed', async () => {
    const store = make();
    await store.close();
    await expect(store.append('r', draft('late'), 1)).rejects.toThrow(/closed/);
    await expect(store.readAfter('r', 0, 1)).rejects.toThrow(/closed/);
    await expect(store.ping()).rejects.toThrow(/closed/);
  });
});
