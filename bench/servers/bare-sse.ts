// The stream reference: a minimal Server-Sent Events server on bare
// node:http, speaking the subset of the protocol the stream benchmark uses
// (GET /api/stream?rooms=NAME joining one room with its tail, events with
// `id:` and `data:` lines carrying the chat server's event data, JSON post,
// the protocol's no-cache headers) with rooms in memory. A post serializes
// its event once and writes the same bytes to every open stream of the room,
// with no backpressure and no validation beyond what keeps it running:
// about what Node itself allows.
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

interface Room {
  messages: Message[];
  streams: Set<ServerResponse>;
}

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, heartbeat: { type: 'string', default: '15' } } });
const epoch = nanoid(12);
const rooms = new Map<string, Room>();
const STREAM = /^\/api\/stream\?rooms=([A-Za-z0-9_-]{1,64})$/;
const POST = /^\/api\/rooms\/([A-Za-z0-9_-]{1,64})\/messages$/;
/** The join's tail, as the chat server's default `limit`. */
const TAIL = 100;
const HEARTBEAT = Buffer.from(':\n\n');

function roomOf(name: string): Room {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = { messages: [], streams: new Set() }));
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

/** An event as the chat server frames one: its id is the room's cursor, its data the room's messages from `from` on. */
function event(name: string, room: Room, from: number): Buffer {
  const last = room.messages.length;
  const data = JSON.stringify({ room: name, epoch, messages: room.messages.slice(from), last, more: false });
  return Buffer.from(`event: room\nid: ${name}:${last}:${epoch}\ndata: ${data}\n\n`);
}

function stream(req: IncomingMessage, res: ServerResponse, name: string): void {
  const room = roomOf(name);
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store, no-transform',
    Pragma: 'no-cache',
    'X-Accel-Buffering': 'no',
  });
  res.write(Buffer.concat([Buffer.from(': 1 room(s)\nretry: 1000\n\n'), event(name, room, Math.max(0, room.messages.length - TAIL))]));
  room.streams.add(res);
  req.on('close', () => room.streams.delete(res));
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
    const bytes = event(name, room, message.seq - 1);
    for (const stream of room.streams) stream.write(bytes);
  });
}

const server = createServer((req, res) => {
  const url = req.url ?? '';
  let match;
  if (req.method === 'GET' && (match = STREAM.exec(url))) return stream(req, res, match[1]!);
  if (req.method === 'POST' && (match = POST.exec(url))) return post(req, res, match[1]!);
  send(res, 404, '{"error":{"code":"not_found","message":"no such route"}}');
});
server.keepAliveTimeout = 65_000;
// One timer for every stream, where the chat server keeps one per stream and beats only on silence: the cheapest way to keep proxies from cutting idle streams.
setInterval(() => {
  for (const room of rooms.values()) for (const stream of room.streams) stream.write(HEARTBEAT);
}, Number(values.heartbeat) * 1000).unref();
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
