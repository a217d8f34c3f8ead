import type { IncomingMessage } from 'node:http';
import type { Request, Router } from 'express';
import type { Tokens } from '../auth/tokens.js';
import type { Caller } from '../core/access.js';
import type { Chat } from '../core/chat.js';
import { callerOf } from './auth.js';
import { readOptionalBody } from './body.js';
import { methodNotAllowed } from './errors.js';
import type { PostLimiter } from './rate-limit.js';
import { sendJson } from './respond.js';

export interface RoomRouteOptions {
  tokens: Tokens;
  bodyLimit: number;
  /** Counts creating rooms and adding members as posts are counted (leaving and removing are never refused for it). */
  limiter?: PostLimiter;
  /** Counts typing notices per user (TYPING_LIMIT). */
  typingLimiter?: PostLimiter;
}

type RoomParams = { room: string };

/** The key a sender's writes are counted under: the user when signed in, else the client address. */
export function senderKey(caller: Caller | undefined, req: IncomingMessage): string {
  return caller ? `user:${caller.id}` : `addr:${(req as Request).ip ?? 'unknown'}`;
}

/**
 * Private rooms and direct messages (protocol "Private rooms"): create,
 * list, members add / remove / leave, `/api/dms`. Each answers the room's
 * record `{ room, title, owner, members }`; the caller's rooms are
 * `{ rooms: [record…] }`.
 */
export function roomRoutes(router: Router, chat: Chat, { tokens, bodyLimit, limiter, typingLimiter }: RoomRouteOptions): void {
  const { rooms } = chat;
  /** The body and caller of a write; one that adds to what is stored is counted against the sender's rate. */
  const write = async (req: IncomingMessage, res: Parameters<typeof readOptionalBody>[1], counted = true) => {
    const body = await readOptionalBody(req, res, bodyLimit);
    const caller = await callerOf(tokens, req, body);
    chat.assertOpen();
    if (counted) await limiter?.consume(senderKey(caller, req));
    return { body, caller };
  };

  router
    .route('/api/rooms')
    .get(async (req, res) => sendJson(res, 200, { rooms: await rooms.list(await callerOf(tokens, req)) }))
    .post(async (req, res) => {
      const { body, caller } = await write(req, res);
      sendJson(res, 201, await rooms.create(caller, body));
    })
    .all(methodNotAllowed('GET, HEAD, POST'));

  router
    .route('/api/dms')
    .post(async (req, res) => {
      const { body, caller } = await write(req, res);
      const { record, created } = await rooms.openDirect(caller, body);
      sendJson(res, created ? 201 : 200, record);
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/api/rooms/:room/members')
    .get<RoomParams>(async (req, res) => sendJson(res, 200, await rooms.members(req.params.room, await callerOf(tokens, req))))
    .post<RoomParams>(async (req, res) => {
      const { body, caller } = await write(req, res);
      sendJson(res, 200, await rooms.add(req.params.room, caller, body));
    })
    .all(methodNotAllowed('GET, HEAD, POST'));

  router
    .route('/api/rooms/:room/members/remove')
    .post<RoomParams>(async (req, res) => {
      const { body, caller } = await write(req, res, false);
      sendJson(res, 200, await rooms.remove(req.params.room, caller, body));
    })
    .all(methodNotAllowed('POST'));

  // Not counted against the posting rate (a typist repeats it every few seconds, and it stores nothing lasting), but against one of its own.
  router
    .route('/api/rooms/:room/typing')
    .post<RoomParams>(async (req, res) => {
      const { body, caller } = await write(req, res, false);
      if (caller) await typingLimiter?.consume(senderKey(caller, req));
      await chat.typing(req.params.room, body, caller);
      res.status(204).end();
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/api/rooms/:room/leave')
    .post<RoomParams>(async (req, res) => {
      const { caller } = await write(req, res, false);
      sendJson(res, 200, await rooms.leave(req.params.room, caller));
    })
    .all(methodNotAllowed('POST'));
}
