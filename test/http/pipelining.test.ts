// Requests pipelined on one connection are handled one at a time, in turn:
// answers go out in order, a pipelined poll does not park (nor outlive its
// client) before the answers ahead of it are out, and answers nobody reads
// yet are not built.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { newRoom, parkedPolls, roomInfo, sendMany, waitFor, waitParked, type TestServer } from './util.js';

let srv: TestServer;
let port: number;

beforeAll(async () => {
  srv = await startTestServer();
  port = Number(new URL(srv.baseUrl).port);
});

afterAll(async () => {
  await srv?.close();
});

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

/** A connection with `requests` written at once; collects what comes back. */
function pipeline(requests: string): { socket: net.Socket; received: () => string } {
  const socket = net.connect(port, '127.0.0.1', () => socket.write(requests));
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {});
  return { socket, received: () => text };
}

/** The answers in `text`, in order: status and body (each has a Content-Length). */
function answers(text: string): { status: number; body: string }[] {
  const out: { status: number; body: string }[] = [];
  for (let at = 0; ; ) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) return out;
    const head = text.slice(at, headEnd);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (text.length < headEnd + 4 + length) return out;
    out.push({ status: Number(head.split(' ')[1]), body: text.slice(headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
}

describe('pipelined requests', () => {
  it('are answered in order, each once', async () => {
    const room = newRoom('pipe');
    await sendMany(srv.baseUrl, room, 3);
    const { socket, received } = pipeline(
      [get(`/api/rooms/${room}/messages?limit=1`), get(`/api/rooms/${room}`), get(`/api/rooms/${room}/messages?after=1&timeout=0`)].join(''),
    );
    await waitFor(() => answers(received()).length === 3, 'three answers');
    socket.destroy();
    const [join, info, poll] = answers(received()).map((a) => JSON.parse(a.body) as unknown);
    expect(join).toMatchObject({ last: 3, messages: [{ seq: 3 }] });
    expect(info).toMatchObject({ room, head: 3 });
    expect(poll).toMatchObject({ last: 3, messages: [{ seq: 2 }, { seq: 3 }] });
  });

  it('park one at a time, and leave none parked when the client goes away', async () => {
    const room = newRoom('pipe');
    const poll = get(`/api/rooms/${room}/messages?after=0&timeout=30`);
    const { socket } = pipeline(poll.repeat(50));
    await waitParked(srv.baseUrl, 1);
    expect(srv.chat.parked).toBe(1);
    socket.resetAndDestroy();
    await waitParked(srv.baseUrl, 0);
    // The ones behind it never park, however long one waits for them.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await parkedPolls(srv.baseUrl)).toBe(0);
    expect((await roomInfo(srv.baseUrl, room)).head).toBe(0);
  });

  it('go on in turn once the poll ahead of them is answered', async () => {
    const room = newRoom('pipe');
    const { socket, received } = pipeline(get(`/api/rooms/${room}/messages?after=0&timeout=30`).repeat(3));
    await waitParked(srv.baseUrl, 1);
    await sendMany(srv.baseUrl, room, 1);
    // The first is woken; the two behind it find the message at once.
    await waitFor(() => answers(received()).length === 3, 'three answers');
    socket.destroy();
    for (const answer of answers(received())) expect(JSON.parse(answer.body)).toMatchObject({ last: 1, messages: [{ seq: 1 }] });
    expect(await parkedPolls(srv.baseUrl)).toBe(0);
  });
});
