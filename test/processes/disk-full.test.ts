// A real full disk under the SQLite store: posts get 503 store_unavailable,
// /healthz says 503, the log has one JSON line about it with the cause and
// no stack, and everything recovers once there is space again. The disk is a
// small tmpfs of the test's own, which needs root (as CI runs).
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/processes.js';
import { newRoom, post, request } from '../http/util.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? '' : 'mounting a tmpfs needs root';
if (skip && process.env.CI) throw new Error(`CI must run the disk-full test, but ${skip}`);
if (skip) console.warn(`\n*** Skipping the disk-full test: ${skip}.\n`);

const dir = mkdtempSync(join(tmpdir(), 'chat-disk-full-'));
const filler = join(dir, 'filler');
let server: ServerProcess | undefined;

beforeAll(() => {
  if (!skip) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
});

afterAll(async () => {
  await server?.kill('SIGKILL');
  if (!skip) execFileSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
});

/** Writes zeros until the file system says it is full. */
function fillDisk(): void {
  const fd = openSync(filler, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

/** The server's log, one parsed JSON object per line. */
function logLines(): { msg: string; level: number; cause?: string }[] {
  return server!.output().trim().split('\n').map((line) => JSON.parse(line) as { msg: string; level: number; cause?: string });
}

describe.skipIf(skip)('the SQLite store on a full disk', () => {
  it('answers posts and /healthz with 503, logs one line, and recovers when space is back', async () => {
    server = await startServerProcess(['--store', 'sqlite', '--sqlite-path', join(dir, 'chat.db')]);
    const room = newRoom('disk');
    expect((await post(server.url, room, { author: 'ann', text: 'before' })).status).toBe(201);
    expect((await request(server.url, '/healthz')).status).toBe(200);

    fillDisk();
    // The write-ahead log may still have room for a few; a message of 4,000 characters soon needs more.
    const text = 'x'.repeat(4000);
    let failed = 0;
    for (let i = 0; i < 500 && failed < 20; i++) {
      const res = await post(server.url, room, { author: 'ann', text });
      if (res.status === 503) {
        expect(res.body).toMatchObject({ error: { code: 'store_unavailable' } });
        failed++;
      } else {
        expect(res.status).toBe(201);
      }
    }
    expect(failed).toBe(20);
    expect((await request(server.url, '/healthz')).status).toBe(503);

    const lines = logLines();
    const unavailable = lines.filter((l) => l.msg.startsWith('message store unavailable'));
    expect(unavailable).toHaveLength(1);
    expect(unavailable[0]!.cause).toMatch(/full/i);
    expect(server.output()).not.toMatch(/\n\s+at /);

    unlinkSync(filler);
    expect((await post(server.url, room, { author: 'ann', text: 'space again' })).status).toBe(201);
    expect((await request(server.url, '/healthz')).status).toBe(200);
  });
});
