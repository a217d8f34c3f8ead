// A store that cannot be used stops start-up with one clear line and exit code 2.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failedStart, freePort, startServerProcess } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'chat-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectOneLine(result: { code: number | null; output: string }, line: RegExp): void {
  expect(result.code, result.output).toBe(2);
  expect(result.output.trim().split('\n')).toHaveLength(1);
  expect(result.output.trim()).toMatch(line);
}

describe('start-up with an unusable store', () => {
  it('stops on an unreachable Redis', async () => {
    const port = await freePort();
    expectOneLine(
      await failedStart(['--store', 'redis', '--redis-url', `redis://127.0.0.1:${port}`]),
      new RegExp(`^cannot open the message store: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
    );
  });

  it('stops on a file that is not a SQLite database', async () => {
    const path = join(dir, 'garbage.db');
    writeFileSync(path, 'not a database, only text '.repeat(100));
    expectOneLine(await failedStart(['--sqlite-path', path]), /^cannot open the message store: .*garbage\.db is not a usable SQLite database/);
  });

  it('stops when another server process has the SQLite file', async () => {
    const path = join(dir, 'shared.db');
    const holder = await startServerProcess(['--sqlite-path', path]);
    try {
      expectOneLine(await failedStart(['--sqlite-path', path]), /^cannot open the message store: .*shared\.db is in use by another server process/);
    } finally {
      await holder.kill();
    }
  });

  it('stops on an unknown store', async () => {
    expectOneLine(await failedStart(['--store', 'mongo']), /^config error: --store must be one of memory, sqlite, redis; got "mongo"$/);
  });
});
