// The reference: a minimal long-poll server on bare node:http, speaking the
// subset of the protocol the benchmark uses (join, poll with after, limit and
// timeout, JSON post, the protocol's no-cache headers) with rooms in memory.
// No framework, no validation beyond what keeps it running, one
// serialization per cursor when a post wakes its waiters: about what Node
// itself allows.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { nanoid } from 'nanoid';

interface Message {
  seq: number;
  id: string;
  room: string;
  author: string;
  text: string;
  ts: number;
}

interface Waiter {
  res: ServerResponse;
  after: number;
  limit: number;
  timer?: NodeJS.Timeout;
}

interface Room {
  messages: Message[];
  waiters: Set<Waiter>;
}

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const epoch = nanoid(12);
const rooms = new Map<string, Room>();
const PATH = /^\/api\/rooms\/([A-Za-z0-9_-]{1,64})\/messages(?:\?(.*))?$/;

function roomOf(name: string): Room {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = { messages: [], waiters: new Set() }));
  return room;
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
  });
  res.end(body);
}

/** Messages after `after` (seq = index + 1, nothing is ever dropped). */
function answer(name: string, room: Room, after: number, limit: number): string {
  const messages = room.messages.slice(after, after + limit);
  const last = messages.length > 0 ? messages[messages.length - 1]!.seq : after;
  return JSON.stringify({ room: name, epoch, messages, last, more: last < room.messages.length });
}

function poll(req: IncomingMessage, res: ServerResponse, name: string, query: URLSearchParams): void {
  const room = roomOf(name);
  const limit = Number(query.get('limit') ?? 100);
  const afterParam = query.get('after');
  if (afterParam === null) {
    const from = Math.max(0, room.messages.length - limit);
    return send(res, 200, answer(name, room, from, limit).replace(/"last":\d+/, `"last":${room.messages.length}`));
  }
  const after = Number(afterParam);
  if (after < room.messages.length) return send(res, 200, answer(name, room, after, limit));
  const waiter: Waiter = { res, after, limit };
  waiter.timer = setTimeout(() => {
    room.waiters.delete(waiter);
    send(res, 200, answer(name, room, after, limit));
  }, Number(query.get('timeout') ?? 25) * 1000);
  room.waiters.add(waiter);
  req.on('close', () => {
    clearTimeout(waiter.timer);
    room.waiters.delete(waiter);
  });
}

function post(req: IncomingMessage, res: ServerResponse, name: string): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let draft: { author?: unknown; text?: unknown };
    try {
      draft = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof draft;
    } catch {
      return send(res, 400, '{"error":{"code":"invalid_json","message":"body is not JSON"}}');
    }
    const room = roomOf(name);
    const message: Message = { seq: room.messages.length + 1, id: nanoid(), room: name, author: String(draft.author), text: String(draft.text), ts: Date.now() };
    room.messages.push(message);
    send(res, 201, JSON.stringify({ message }));
    const bodies = new Map<string, string>();
    for (const waiter of room.waiters) {
      const key = `${waiter.after}:${waiter.limit}`;
      let body = bodies.get(key);
      if (body === undefined) bodies.set(key, (body = answer(name, room, waiter.after, waiter.limit)));
      clearTimeout(waiter.timer);
      send(waiter.res, 200, body);
    }
    room.waiters.clear();
  });
}

const server = createServer((req, res) => {
  const match = PATH.exec(req.url ?? '');
  if (!match) return send(res, 404, '{"error":{"code":"not_found","message":"no such route"}}');
  if (req.method === 'GET') return poll(req, res, match[1]!, new URLSearchParams(match[2] ?? ''));
  if (req.method === 'POST') return post(req, res, match[1]!);
  send(res, 405, '{"error":{"code":"method_not_allowed","message":"GET or POST"}}');
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
