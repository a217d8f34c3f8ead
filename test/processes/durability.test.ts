// The SQLite store keeps what it acknowledged: a server killed with SIGKILL
// while posts are in flight comes back with every 201 it gave, same seq, same
// epoch, and still knows their clientMsgIds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/processes.js';
import { poll, post, range, waitFor, type Message } from '../http/util.js';

const dir = mkdtempSync(join(tmpdir(), 'chat-durability-'));
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

describe('the SQLite store, killed with SIGKILL mid-stream', () => {
  it('has every acknowledged message after a restart, with its seq, epoch and clientMsgId', async () => {
    const path = join(dir, 'chat.db');
    const room = 'durable';
    const first = await start(path);
    const { epoch } = (await poll(first.url, room)).body;

    const acked: Message[] = [];
    let killed = false;
    const posters = range(1, 4).map(async (p) => {
      for (let i = 1; !killed; i++) {
        try {
          const res = await post(first.url, room, { author: `p${p}`, text: `p${p} m${i}`, clientMsgId: `p${p}-${i}` });
          if (res.status === 201) acked.push(res.body.message);
        } catch {
          return; // the server is gone
        }
      }
    });
    await waitFor(() => acked.length >= 300, '300 acknowledged posts');
    killed = true;
    expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    await Promise.all(posters);

    const second = await start(path);
    const after = await poll(second.url, room, { limit: 1000 });
    expect(after.body.epoch).toBe(epoch);
    const stored = after.body.messages;
    // Posts cut off by the kill may or may not have landed; what is there has no gap.
    expect(stored.map((m) => m.seq)).toEqual(range(1, after.body.last));
    const bySeq = new Map(stored.map((m) => [m.seq, m]));
    for (const m of acked) expect(bySeq.get(m.seq)).toEqual(m);

    const retry = await post(second.url, room, { author: 'p1', text: 'retried', clientMsgId: acked[0]!.clientMsgId });
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual({ message: acked[0], duplicate: true });
  });
});
