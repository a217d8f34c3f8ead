// `npm run new-epoch` (src/new-epoch.ts, run here through tsx as the other
// process tests run the server): starts a new epoch in the store the
// server's flags or environment name, prints one line, exits 0; refuses with
// one line and exit code 2 what it cannot do.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { safeUrl } from '../../src/stores/redis-connect.js';
import { RedisStore } from '../../src/stores/redis-store.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { startServerProcess } from '../helpers/processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const env = inject('redis');
const dir = mkdtempSync(join(tmpdir(), 'chat-new-epoch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const draft = (text: string) => ({ author: 'ann', text });

/** Runs the command with `args` and `extraEnv` on top of this process's environment: its exit code and the lines it printed. */
async function newEpoch(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/new-epoch.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, lines: output.trim().split('\n') };
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('npm run new-epoch', () => {
  it('starts a new epoch in a SQLite file, keeping every room and message', async () => {
    const path = join(dir, 'chat.db');
    const before = SqliteStore.open({ path, retention: 100, retentionAgeMs: 0 });
    for (const text of ['m1', 'm2', 'm3']) await before.append('r', draft(text), 1);
    await before.append('s', draft('s1'), 1);
    const { epoch: old } = await before.info('r');
    const messages = (await before.readTail('r', 10)).messages;
    await before.close();

    const { code, lines } = await newEpoch(['--sqlite-path', path]);
    expect(code, lines.join('\n')).toBe(0);
    expect(lines).toHaveLength(1);
    const match = new RegExp(`^new epoch (\\S+) in SQLite file ${escape(path)} \\(was ${escape(old)}\\): every client will reset at its next poll$`).exec(lines[0]!);
    expect(match, lines[0]).not.toBeNull();
    const epoch = match![1]!;
    expect(epoch).not.toBe(old);

    const after = SqliteStore.open({ path, retention: 100, retentionAgeMs: 0 });
    try {
      expect(await after.readTail('r', 10)).toEqual({ epoch, head: 3, oldest: 1, messages });
      expect(await after.info('s')).toEqual({ epoch, head: 1, oldest: 1 });
    } finally {
      await after.close();
    }
  });

  it('refuses, with one line and exit code 2, a SQLite file a running server holds', async () => {
    const path = join(dir, 'held.db');
    const server = await startServerProcess(['--store', 'sqlite', '--sqlite-path', path]);
    try {
      const { code, lines } = await newEpoch(['--sqlite-path', path]);
      expect(code, lines.join('\n')).toBe(2);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^cannot open the message store: ${escape(path)} is in use by another server process`));
    } finally {
      await server.kill();
    }
  });

  it('refuses, with one line and exit code 2, a SQLite file that is not there and the memory store', async () => {
    const missing = await newEpoch(['--sqlite-path', join(dir, 'typo.db')]);
    expect(missing).toEqual({ code: 2, lines: [`no SQLite database at ${join(dir, 'typo.db')} (see --sqlite-path)`] });
    const memory = await newEpoch(['--store', 'memory']);
    expect(memory.code).toBe(2);
    expect(memory.lines).toHaveLength(1);
  });

  it.skipIf(env.skip)("starts a new epoch in the Redis the environment names: the store's and every room's, heads unchanged", async () => {
    const prefix = `${env.prefix}cli:`;
    const before = await RedisStore.open({ url: env.url, prefix, retention: 100 });
    await before.append('r', draft('m1'), 1);
    await before.append('r', draft('m2'), 2);
    const { epoch: old } = await before.info('r');
    await before.close();

    const { code, lines } = await newEpoch([], { STORE: 'redis', REDIS_URL: env.url, REDIS_PREFIX: prefix });
    expect(code, lines.join('\n')).toBe(0);
    expect(lines).toHaveLength(1);
    const where = `Redis at ${safeUrl(env.url)} under prefix ${prefix}`;
    const match = new RegExp(`^new epoch (\\S+) in ${escape(where)} \\(was ${escape(old)}\\): every client will reset at its next poll$`).exec(lines[0]!);
    expect(match, lines[0]).not.toBeNull();
    const epoch = match![1]!;
    expect(epoch).not.toBe(old);

    const after = await RedisStore.open({ url: env.url, prefix, retention: 100 });
    try {
      expect(await after.info('r')).toEqual({ epoch, head: 2, oldest: 1 });
      expect(await after.info('empty')).toEqual({ epoch, head: 0, oldest: 0 });
    } finally {
      await after.close();
    }
  });
});
