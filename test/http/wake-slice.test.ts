// A server that answers woken polls a slice at a time, holding back the
// connections it has answered until the wake-up is over: every client still
// gets every message once and in order, and polls again on the connection it
// used before, which the server must read again after the wake-up.
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { newRoom, poll, range, send, useServer, waitParked, type PollBody } from './util.js';

const server = useServer({ wakeSlice: 2 });

/** A client with one keep-alive connection, reporting the local port each answer came on. */
function client() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (url: string) =>
    new Promise<{ body: PollBody; port: number }>((resolve, reject) => {
      const req = http.get(url, { agent, timeout: 20_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ body: JSON.parse(text) as PollBody, port: req.socket!.localPort! }));
      });
      req.on('timeout', () => req.destroy(new Error('no answer')));
      req.on('error', reject);
    });
  return { agent, get };
}

describe('a room woken a slice at a time', () => {
  const clients = range(1, 7).map(() => client());
  afterAll(() => clients.forEach((c) => c.agent.destroy()));

  it('reaches every poller with every message, on the connection each polled on, wake-up after wake-up', async () => {
    const room = newRoom('sliced');
    const join = await poll(server.base, room);
    const cursors = clients.map(() => join.body.last);
    const seen = clients.map((): string[] => []);
    const ports = clients.map(() => new Set<number>());
    for (const round of range(1, 3)) {
      const pending = clients.map((c, i) =>
        c.get(`${server.base}/api/rooms/${room}/messages?after=${cursors[i]}&epoch=${join.body.epoch}&timeout=20`),
      );
      await waitParked(server.base, clients.length);
      await send(server.base, room, `m${round}`);
      const answers = await Promise.all(pending);
      answers.forEach(({ body, port }, i) => {
        seen[i]!.push(...body.messages.map((m) => m.text));
        cursors[i] = body.last;
        ports[i]!.add(port);
      });
    }
    expect(seen).toEqual(clients.map(() => ['m1', 'm2', 'm3']));
    expect(ports.map((p) => p.size)).toEqual(clients.map(() => 1));
  });
});
