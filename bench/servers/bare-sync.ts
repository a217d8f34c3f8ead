// The reference for syncs and presence: a minimal server on bare node:http
// speaking the subset of the protocol the sync scenarios use. Guest sessions
// (an opaque token, no signature), JSON posts, POST /api/sync with a cursor
// and a presence state per room, presence changes told to a held sync no
// sooner than a second after it started (the protocol's folding), the
// no-cache headers. Everything in memory, no validation beyond what keeps it
// running, no supersede by client id (every benchmark client has its own),
// one serialization per room and cursor when a post wakes its syncs: about
// what Node itself allows.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { nanoid } from 'nanoid';
import { OnlineSet } from './bare-presence.js';

interface Message {
  seq: number;
  id: string;
  room: string;
  author: string;
  text: string;
  ts: number;
}

interface User {
  id: string;
  name: string;
}

interface Room {
  name: string;
  messages: Message[];
  syncs: Set<Held>;
  online: OnlineSet;
  /** A presence change is to be told on the next turn of the event loop (changes in one turn fold into one). */
  telling: boolean;
}

/** One room of a held sync: its cursor and the presence state the client has. */
interface Part {
  room: Room;
  after: number;
  state: string | undefined;
}

interface Held {
  res: ServerResponse;
  user: User | undefined;
  parts: Part[];
  limit: number;
  timeout: number;
  startedAt: number;
  done: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Answers the sync a second after it started, for presence changes. */
  fold: NodeJS.Timeout | undefined;
}

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, 'online-window': { type: 'string', default: '30' } } });
const WINDOW_MS = Number(values['online-window']) * 1000;
const FOLD_MS = 1000;
const epoch = nanoid(12);
const rooms = new Map<string, Room>();
const users = new Map<string, User>();
const POST_PATH = /^\/api\/rooms\/([A-Za-z0-9_-]{1,64})\/messages$/;

function roomOf(name: string): Room {
  let room = rooms.get(name);
  if (!room) {
    const created: Room = { name, messages: [], syncs: new Set(), online: new OnlineSet(WINDOW_MS, () => presenceChanged(created)), telling: false };
    rooms.set(name, (room = created));
  }
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

/** A room's v1 answer without `room`, for messages after `after` (seq = index + 1, nothing is ever dropped). */
function roomAnswer(room: Room, after: number, limit: number): string {
  const messages = room.messages.slice(after, after + limit);
  const last = messages.length > 0 ? messages[messages.length - 1]!.seq : after;
  return JSON.stringify({ epoch, messages, last, more: last < room.messages.length });
}

/** Bodies made during one wake-up, by room and cursor: every sync at that cursor gets the same bytes. */
let woken: Map<string, string> | undefined;

/** What a part has to report now, or undefined; `state` differing adds the room's lists. */
function report(part: Part, limit: number): string | undefined {
  const { room } = part;
  const view = part.state === undefined || part.state !== room.online.current().state ? room.online.current() : undefined;
  if (part.after >= room.messages.length && !view) return undefined;
  const key = `${room.name}:${part.after}:${limit}`;
  let body = woken?.get(key);
  if (body === undefined) {
    body = roomAnswer(room, part.after, limit);
    woken?.set(key, body);
  }
  return view ? `${body.slice(0, -1)},${view.fields}}` : body;
}

/** Ends a held sync: no longer in its rooms, its user's holds released. */
function end(held: Held): void {
  held.done = true;
  clearTimeout(held.timer);
  clearTimeout(held.fold);
  const now = Date.now();
  for (const { room } of held.parts) {
    room.syncs.delete(held);
    if (held.user) room.online.release(held.user.id, now);
  }
}

function answer(held: Held): void {
  if (held.done) return;
  const entries: string[] = [];
  for (const part of held.parts) {
    const body = report(part, held.limit);
    if (body !== undefined) entries.push(`${JSON.stringify(part.room.name)}:${body}`);
  }
  end(held);
  send(held.res, 200, `{"rooms":{${entries.join(',')}},"timeout":${held.timeout}}`);
}

/** Tells the room's held syncs whose state is now outdated, each no sooner than FOLD_MS after it started. */
function presenceChanged(room: Room): void {
  if (room.telling) return;
  room.telling = true;
  setImmediate(() => {
    room.telling = false;
    const { state } = room.online.current();
    const now = Date.now();
    for (const held of room.syncs) {
      if (held.fold || held.parts.find((p) => p.room === room)!.state === state) continue;
      held.fold = setTimeout(() => answer(held), Math.max(0, held.startedAt + FOLD_MS - now));
    }
  });
}

function sync(res: ServerResponse, user: User | undefined, body: { rooms: Record<string, { after?: number; state?: string }>; timeout?: number; limit?: number }): void {
  const held: Held = {
    res,
    user,
    parts: [],
    limit: body.limit ?? 100,
    timeout: Math.min(body.timeout ?? 25, 60),
    startedAt: Date.now(),
    done: false,
    timer: undefined,
    fold: undefined,
  };
  let now = false;
  for (const [name, cursor] of Object.entries(body.rooms)) {
    const room = roomOf(name);
    if (user) room.online.hold(user.id, user.name);
    // A join reports the room's tail, at once.
    if (cursor.after === undefined) now = true;
    const after = cursor.after ?? Math.max(0, room.messages.length - held.limit);
    held.parts.push({ room, after, state: cursor.state });
    if (after < room.messages.length || cursor.state === undefined) now = true;
  }
  if (now) return answer(held);
  let outdated = false;
  for (const part of held.parts) {
    part.room.syncs.add(held);
    if (part.state !== part.room.online.current().state) outdated = true;
  }
  held.timer = setTimeout(() => answer(held), held.timeout * 1000);
  if (outdated) held.fold = setTimeout(() => answer(held), FOLD_MS);
  res.on('close', () => {
    if (!held.done) end(held);
  });
}

function post(res: ServerResponse, name: string, draft: { author?: unknown; text?: unknown }): void {
  const room = roomOf(name);
  const message: Message = { seq: room.messages.length + 1, id: nanoid(), room: name, author: String(draft.author), text: String(draft.text), ts: Date.now() };
  room.messages.push(message);
  send(res, 201, JSON.stringify({ message }));
  woken = new Map();
  for (const held of [...room.syncs]) answer(held);
  woken = undefined;
}

function session(res: ServerResponse, draft: { name?: unknown }): void {
  const user: User = { id: `g_${nanoid(16)}`, name: String(draft.name) };
  const token = nanoid(32);
  users.set(token, user);
  send(res, 201, JSON.stringify({ token, user, expiresAt: Date.now() + 86_400_000 }));
}

function route(req: IncomingMessage, res: ServerResponse, body: unknown): void {
  const url = req.url ?? '';
  const user = users.get(req.headers.authorization?.slice('Bearer '.length) ?? '');
  if (url === '/api/sync') return sync(res, user, body as Parameters<typeof sync>[2]);
  if (url === '/api/sessions') return session(res, body as { name?: unknown });
  const match = POST_PATH.exec(url);
  if (match) return post(res, match[1]!, body as { author?: unknown; text?: unknown });
  send(res, 404, '{"error":{"code":"not_found","message":"no such route"}}');
}

const server = createServer((req, res) => {
  if (req.method !== 'POST') return send(res, 405, '{"error":{"code":"method_not_allowed","message":"POST"}}');
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(res, 400, '{"error":{"code":"invalid_json","message":"body is not JSON"}}');
    }
    route(req, res, body);
  });
});
// Users whose time ran out leave the lists within a quarter of a second.
setInterval(() => {
  const now = Date.now();
  for (const room of rooms.values()) room.online.sweep(now);
}, 250);
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
