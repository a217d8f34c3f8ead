import type { Router } from 'express';
import type { Tokens } from '../auth/tokens.js';
import type { Chat } from '../core/chat.js';
import { ChatError } from '../core/errors.js';
import type { SyncClient } from '../core/sync-clients.js';
import type { SyncResult, SyncRoom } from '../core/sync.js';
import { checkRoom } from '../core/validate.js';
import { callerOf } from './auth.js';
import { readBody } from './body.js';
import { cancelWhenGone, holdReading } from './held.js';
import { methodNotAllowed } from './errors.js';
import { DEFAULT_LIMIT, MAX_EPOCH_LENGTH, MAX_LIMIT, type PollLimits } from './params.js';
import { sendBytes } from './respond.js';

export interface SyncRouteOptions extends PollLimits {
  tokens: Tokens;
  bodyLimit: number;
  /** Rooms one sync may name. */
  maxRooms: number;
}

const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_STATE_LENGTH = 128;

interface SyncParams {
  rooms: Omit<SyncRoom, 'member' | 'denied'>[];
  limit: number;
  timeoutMs: number;
  /** The hold applied, in seconds, as the answer reports it. */
  timeout: number;
  client: SyncClient | undefined;
}

const badField = (message: string): ChatError => new ChatError('invalid_parameter', message);
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown, min: number, max: number): value is number => Number.isInteger(value) && (value as number) >= min && (value as number) <= max;

/**
 * Reads a sync's body (protocol "One poll for many rooms"); a malformed one
 * is refused whole: `invalid_body`, `too_many_rooms`, or the v1 code of the
 * faulty field (`invalid_room`, `invalid_parameter`).
 */
export function syncParams(body: unknown, options: SyncRouteOptions): SyncParams {
  if (!isObject(body)) throw new ChatError('invalid_body', 'body must be a JSON object with "rooms"');
  const { rooms, timeout = options.defaultTimeout, limit = DEFAULT_LIMIT, client, seq } = body;
  if (!isObject(rooms)) throw new ChatError('invalid_body', '"rooms" must be an object mapping room names to cursors');
  const names = Object.keys(rooms);
  if (names.length === 0) throw new ChatError('invalid_body', '"rooms" must name at least one room');
  if (names.length > options.maxRooms) throw new ChatError('too_many_rooms', `a sync may name at most ${options.maxRooms} rooms`);
  const cursors = names.map((room) => {
    checkRoom(room);
    const cursor = rooms[room];
    if (!isObject(cursor)) throw new ChatError('invalid_body', `the cursor of "${room}" must be an object, {} to join`);
    const { after, epoch, state } = cursor;
    if (after !== undefined && !isCount(after, 0, Number.MAX_SAFE_INTEGER)) throw badField(`"after" of "${room}" must be a whole number from 0 to 2^53-1`);
    if (epoch !== undefined && (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH)) {
      throw badField(`"epoch" of "${room}" must be the epoch a previous answer gave`);
    }
    if (state !== undefined && (typeof state !== 'string' || state.length > MAX_STATE_LENGTH)) throw badField(`"state" of "${room}" must be the state a previous answer gave`);
    return { room, after, epoch: epoch as string | undefined, state: state as string | undefined };
  });
  if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) throw badField('"timeout" must be a number of seconds such as 25 or 0.5');
  if (!isCount(limit, 1, MAX_LIMIT)) throw badField(`"limit" must be a whole number from 1 to ${MAX_LIMIT}`);
  if ((client === undefined) !== (seq === undefined)) throw new ChatError('invalid_body', '"client" and "seq" go together');
  if (client !== undefined && (typeof client !== 'string' || !CLIENT_ID.test(client))) {
    throw new ChatError('invalid_body', '"client" must be 1-64 characters of A-Z, a-z, 0-9, "_" or "-"');
  }
  if (seq !== undefined && !isCount(seq, 0, Number.MAX_SAFE_INTEGER)) throw new ChatError('invalid_body', '"seq" must be a whole number from 0 to 2^53-1');
  const applied = Math.min(timeout, options.maxTimeout);
  return {
    rooms: cursors,
    limit,
    timeoutMs: Math.round(applied * 1000),
    timeout: applied,
    client: client === undefined ? undefined : { id: client as string, seq: seq as number },
  };
}

const SUPERSEDED = Buffer.from('{"rooms":{},"superseded":true}');
const COMMA = Buffer.from(',');
const CLOSE_BRACE = Buffer.from('}');

/**
 * A sync's answer: each room's bytes as its v1 answer has them (serialized
 * once for every poll and sync at that cursor), followed by its presence
 * fields (serialized once per read of the room's lists), put together.
 */
function syncBytes(result: SyncResult, timeout: number): Buffer {
  const parts: Buffer[] = [Buffer.from('{"rooms":{')];
  let first = true;
  for (const [room, { answer, presence }] of result) {
    parts.push(Buffer.from(`${first ? '' : ','}${JSON.stringify(room)}:`));
    if (answer instanceof ChatError) parts.push(Buffer.from(JSON.stringify({ error: { code: answer.code, message: answer.message } })));
    else if (!presence) parts.push(answer.bytesInSync);
    else parts.push(answer.bytesInSync.subarray(0, -1), COMMA, presence.fields, CLOSE_BRACE);
    first = false;
  }
  parts.push(Buffer.from(`},"timeout":${timeout}}`));
  return Buffer.concat(parts);
}

/** `POST /api/sync`: one long poll for many rooms. */
export function syncRoute(router: Router, chat: Chat, options: SyncRouteOptions): void {
  router
    .route('/api/sync')
    .post(async (req, res, next) => {
      const body = await readBody(req, res, options.bodyLimit);
      const caller = await callerOf(options.tokens, req, body);
      const params = syncParams(body, options);
      const held = chat.sync(params, caller, params.client, (result, progress) => {
        if (result instanceof Error) return next(result);
        if (chat.isClosing) res.setHeader('Connection', 'close');
        sendBytes(res, 200, result === 'superseded' ? SUPERSEDED : syncBytes(result, params.timeout));
        if (progress) holdReading(req.socket, progress);
      });
      cancelWhenGone(chat, req, res, held);
    })
    .all(methodNotAllowed('POST'));
}
