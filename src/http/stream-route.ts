import type { Router } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { StreamTickets } from '../auth/tickets.js';
import type { Tokens } from '../auth/tokens.js';
import type { Caller } from '../core/access.js';
import type { Chat } from '../core/chat.js';
import { ChatError } from '../core/errors.js';
import { MAX_EVENT_ID_LENGTH, parseCursorList, type ListedCursor, type StreamEvent } from '../core/stream.js';
import { callerOf, tokenOf } from './auth.js';
import { readOptionalBody } from './body.js';
import { methodNotAllowed } from './errors.js';
import { cancelWhenGone } from './held.js';
import { DEFAULT_LIMIT, MAX_EPOCH_LENGTH, MAX_LIMIT, searchOf } from './params.js';
import type { PostLimiter } from './rate-limit.js';
import { sendJson } from './respond.js';
import { senderKey } from './room-routes.js';

export interface StreamRouteOptions {
  tokens: Tokens;
  /** Without them, `POST /api/stream-tickets` is not offered and `ticket=` is refused. */
  tickets: StreamTickets | undefined;
  bodyLimit: number;
  /** Rooms one stream may follow (as a sync). */
  maxRooms: number;
  /** How long a stream lives before the server ends it, in ms. */
  maxAgeMs: number;
  /** Silence on a stream before a comment is sent, in ms. */
  heartbeatMs: number;
  /**
   * How long a stream may wait for its client to take what was written
   * before it is cut, in ms (default STALL_MS).
   */
  stallMs?: number;
  /** Counts tickets issued per user, as posts are. */
  limiter?: PostLimiter;
}

/**
 * What a client that reads nothing may cost: while the socket has not taken
 * the last batch of events (Node's buffer past its high-water mark), no new
 * batch is read for it, so at most one batch waits in memory; and if the
 * socket takes nothing for this long, the stream is cut. Twice the default
 * heartbeat: a client that is merely slow (a phone on a bad link) drains a
 * batch well within it.
 */
export const STALL_MS = 30_000;

/**
 * The delay EventSource waits before reconnecting (the `retry:` field), in
 * ms. The server ends every stream after its max age, and the client must
 * come back soon: what was posted meanwhile is in the first batch it gets.
 */
const RETRY_MS = 1000;

/** Lines of an SSE event (WHATWG HTML §9.2, "Server-sent events"); JSON has no raw newline in it. */
const EVENT_HEAD = 'event: room\nid: ';
const DATA = Buffer.from('\ndata: ');
const EVENT_END = Buffer.from('\n\n');
const HEARTBEAT = Buffer.from(':\n\n');
const COMMA = Buffer.from(',');
const CLOSE_BRACE = Buffer.from('}');

interface StreamParams {
  rooms: ListedCursor[];
  limit: number;
}

/** One query parameter, given at most once (protocol "Errors": a parameter given twice is a 400). */
function single(query: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new ChatError('invalid_parameter', `"${name}" must be given once`);
  return value;
}

/**
 * Reads a stream's parameters (protocol "Streams"): `rooms` as
 * `name[:after[:epoch]]`, comma-separated, 1..maxRooms; `limit`; and the
 * cursors of `Last-Event-ID` (the header, or `lastEventId` in the query
 * when there is no header), which override the rooms' own. An id that is
 * not one of this server's, or names a room the stream does not follow (it
 * was another stream's), is a 400: resuming from it would skip or repeat.
 */
export function streamParams(query: Record<string, string | string[] | undefined>, header: string | undefined, maxRooms: number): StreamParams {
  const list = single(query, 'rooms');
  if (list === undefined || list === '') throw new ChatError('invalid_parameter', '"rooms" is required: rooms=lobby,design or rooms=lobby:41:EPOCH');
  const rooms = parseCursorList(list, '"rooms"', MAX_EPOCH_LENGTH);
  if (rooms.length > maxRooms) throw new ChatError('too_many_rooms', `a stream may follow at most ${maxRooms} rooms`);
  const rawLimit = single(query, 'limit');
  const limit = rawLimit === undefined ? DEFAULT_LIMIT : /^[0-9]{1,4}$/.test(rawLimit) ? Number(rawLimit) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new ChatError('invalid_parameter', `"limit" must be a whole number from 1 to ${MAX_LIMIT}`);
  const id = header ?? single(query, 'lastEventId');
  if (id === undefined || id === '') return { rooms, limit };
  if (id.length > MAX_EVENT_ID_LENGTH) throw new ChatError('invalid_parameter', 'Last-Event-ID is too long to be one of this server\'s');
  const resumed = parseCursorList(id, 'Last-Event-ID', MAX_EPOCH_LENGTH);
  const byRoom = new Map(rooms.map((cursor) => [cursor.room, cursor]));
  for (const cursor of resumed) {
    if (cursor.after === undefined) throw new ChatError('invalid_parameter', `Last-Event-ID has no seq for "${cursor.room}"; it is not an id this server sent`);
    if (!byRoom.has(cursor.room)) {
      throw new ChatError('invalid_parameter', `Last-Event-ID names room "${cursor.room}", which this stream does not follow: it comes from another stream`);
    }
    byRoom.set(cursor.room, cursor);
  }
  return { rooms: [...byRoom.values()], limit };
}

/**
 * Who a stream is for: the token in `Authorization`, or the user of a
 * `ticket` (spent by this). Both at once is a 400, as a token in two places is.
 */
async function streamCaller(options: StreamRouteOptions, req: IncomingMessage, ticket: string | undefined): Promise<Caller | undefined> {
  if (ticket === undefined) return callerOf(options.tokens, req);
  if (tokenOf(req) !== undefined) throw new ChatError('bad_request', 'send a ticket or a token (Authorization), not both');
  if (!options.tickets) throw new ChatError('invalid_ticket', 'invalid stream ticket: this server issues none; send a token (Authorization: Bearer)');
  return options.tickets.redeem(ticket);
}

/** An event's bytes: the room's v1 answer (with `room`, serialized once for every client at that cursor), its presence fields, the id. */
function eventBytes({ room, id, report }: StreamEvent): Buffer[] {
  const { answer, presence } = report;
  const head = Buffer.from(EVENT_HEAD + id);
  if (answer instanceof ChatError) {
    return [head, DATA, Buffer.from(JSON.stringify({ room, error: { code: answer.code, message: answer.message } })), EVENT_END];
  }
  if (!presence) return [head, DATA, answer.bytes, EVENT_END];
  return [head, DATA, answer.bytes.subarray(0, -1), COMMA, presence.fields, CLOSE_BRACE, EVENT_END];
}

/**
 * A stream's connection: it owns its heartbeat and stall timers, so that a
 * stream ending in any way (its age, shutdown, the client gone, the store
 * failing) leaves none behind.
 */
class StreamConnection {
  private readonly heartbeat: NodeJS.Timeout;
  private stall: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    heartbeatMs: number,
    private readonly stallMs: number,
  ) {
    this.heartbeat = setTimeout(() => this.beat(), heartbeatMs);
    res.on('close', () => this.stop());
  }

  /** Writes a batch, then calls `next` once the socket has taken it (or cuts a client that takes nothing for stallMs). */
  send(events: StreamEvent[], next: () => void): void {
    const parts: Buffer[] = [];
    for (const event of events) parts.push(...eventBytes(event));
    if (this.write(Buffer.concat(parts))) return next();
    this.stall = setTimeout(() => this.res.destroy(), this.stallMs);
    this.res.once('drain', () => {
      clearTimeout(this.stall);
      next();
    });
  }

  /** Ends the stream: after its age, at shutdown, or when no room is left. */
  end(): void {
    this.stop();
    this.res.end();
  }

  private write(bytes: Buffer): boolean {
    this.heartbeat.refresh();
    return this.res.write(bytes);
  }

  /** A comment while idle, so that proxies counting silence keep the connection; not while the client lags behind. */
  private beat(): void {
    if (!this.res.writableNeedDrain) this.res.write(HEARTBEAT);
    this.heartbeat.refresh();
  }

  private stop(): void {
    clearTimeout(this.heartbeat);
    clearTimeout(this.stall);
  }
}

/**
 * `GET /api/stream` (Server-Sent Events) and `POST /api/stream-tickets`, as
 * protocol "Streams" says. A stream is the hub's (Chat.stream); this only
 * frames its events and keeps its connection.
 */
export function streamRoutes(router: Router, chat: Chat, options: StreamRouteOptions): void {
  router
    .route('/api/stream')
    .get(async (req, res) => {
      const query = parseQuery(searchOf(req.url), '&', '=', { maxKeys: 0 });
      const ticket = single(query, 'ticket');
      const header = req.headers['last-event-id'];
      if (Array.isArray(header)) throw new ChatError('invalid_parameter', 'Last-Event-ID must be given once');
      const params = streamParams(query, header, options.maxRooms);
      const caller = await streamCaller(options, req, ticket);
      let connection: StreamConnection | undefined;
      const held = chat.stream({ rooms: params.rooms, limit: params.limit, maxAgeMs: options.maxAgeMs }, caller, (result, next) => {
        if (result === 'end') return connection!.end();
        // Headers are out: nothing but the end of the stream can tell the client; it reconnects with its last id.
        if (result instanceof Error) return void res.destroy();
        connection!.send(result, next);
      });
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store, no-transform',
        Pragma: 'no-cache',
        'X-Accel-Buffering': 'no',
        'X-Content-Type-Options': 'nosniff',
      });
      connection = new StreamConnection(res, options.heartbeatMs, options.stallMs ?? STALL_MS);
      res.write(`: ${params.rooms.length} room(s)\nretry: ${RETRY_MS}\n\n`);
      cancelWhenGone(chat, req, res, held);
    })
    // Express would answer HEAD with the GET handler: a stream with nothing to show, held for minutes.
    .head(methodNotAllowed('GET'))
    .all(methodNotAllowed('GET'));

  const { tickets } = options;
  if (!tickets) return;
  router
    .route('/api/stream-tickets')
    .post(async (req, res) => {
      const body = await readOptionalBody(req, res, options.bodyLimit);
      const caller = await callerOf(options.tokens, req, body);
      if (!caller) throw new ChatError('unauthenticated', 'a ticket carries a token: send one (Authorization: Bearer); streams of public rooms need none');
      await options.limiter?.consume(senderKey(caller, req));
      sendJson(res, 201, await tickets.issue(caller));
    })
    .all(methodNotAllowed('POST'));
}
