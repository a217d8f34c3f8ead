// An operator puts an older copy of the SQLite file back while the server is
// stopped. Seqs the copy had not reached were handed out since, so the file
// must come back under a new epoch, or a client that saw them would take the
// new messages with the same seqs for ones it already has, and wait forever.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/processes.js';
import { poll, roomInfo, send } from '../http/util.js';

const dir = mkdtempSync(join(tmpdir(), 'chat-restore-'));
const running: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.kill('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

async function start(path: string): Promise<ServerProcess> {
  const server = await startServerProcess(['--store', 'sqlite', '--sqlite-path', path]);
  running.push(server);
  return server;
}

async function stop(server: ServerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const expected = signal === 'SIGTERM' ? { code: 0, signal: null } : { code: null, signal };
  expect(await server.kill(signal)).toEqual(expected);
}

async function sendTexts(url: string, room: string, texts: string[]): Promise<number[]> {
  const seqs = [];
  for (const text of texts) seqs.push((await send(url, room, text)).seq);
  return seqs;
}

describe('a SQLite file put back from an older copy', () => {
  it('comes back under a new epoch, and a client that had seen later seqs is reset', async () => {
    const path = join(dir, 'chat.db');
    const copy = join(dir, 'copy-of-chat.db');
    const room = 'lobby';

    const first = await start(path);
    expect(await sendTexts(first.url, room, ['m1', 'm2', 'm3'])).toEqual([1, 2, 3]);
    const { epoch } = await roomInfo(first.url, room);
    await stop(first);
    copyFileSync(path, copy);

    const second = await start(path);
    expect(await sendTexts(second.url, room, ['m4', 'm5', 'm6', 'm7', 'm8'])).toEqual([4, 5, 6, 7, 8]);
    await stop(second);
    copyFileSync(copy, path);

    const third = await start(path);
    expect(await sendTexts(third.url, room, ['n4', 'n5'])).toEqual([4, 5]);
    const info = await roomInfo(third.url, room);
    expect(info).toMatchObject({ head: 5, oldest: 1 });
    expect(info.epoch).not.toBe(epoch);
    expect(third.output()).toContain(`new epoch ${info.epoch}`);

    // The client saw m5 before the restore.
    const res = await poll(third.url, room, { after: 5, epoch, timeout: 0 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ epoch: info.epoch, last: 5, reset: true });
    expect(res.body.messages.map((m) => m.text)).toEqual(['m1', 'm2', 'm3', 'n4', 'n5']);
    await stop(third);
  });

  it('keeps its epoch across restarts after SIGKILL and SIGTERM, when nothing was put back', async () => {
    const path = join(dir, 'untouched.db');
    const room = 'lobby';
    const first = await start(path);
    await sendTexts(first.url, room, ['m1', 'm2']);
    const { epoch } = await roomInfo(first.url, room);
    await stop(first, 'SIGKILL');

    const second = await start(path);
    expect(await roomInfo(second.url, room)).toMatchObject({ epoch, head: 2 });
    await sendTexts(second.url, room, ['m3']);
    await stop(second, 'SIGKILL');

    const third = await start(path);
    expect(await roomInfo(third.url, room)).toMatchObject({ epoch, head: 3 });
    await stop(third);

    const fourth = await start(path);
    expect(await roomInfo(fourth.url, room)).toMatchObject({ epoch, head: 3 });
    expect(fourth.output()).not.toContain('went back in time');
    await stop(fourth);
  });
});
