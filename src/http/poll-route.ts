import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Tokens } from '../auth/tokens.js';
import type { PollAnswer } from '../core/answer.js';
import type { Chat } from '../core/chat.js';
import { callerOf } from './auth.js';
import { cancelWhenGone, holdReading } from './held.js';
import { pollParams, type PollLimits, type PollQuery } from './params.js';
import { sendBytes } from './respond.js';

/**
 * Serves GET /api/rooms/:room/messages (join, history page or long poll) on a
 * plain node:http request, so that the standalone server can take this, the
 * hottest route, without the Express stack, and the Express router can serve
 * it the same way. Errors thrown synchronously or rejected are the caller's to
 * answer, as are those that end a held poll, which go to `fail`.
 */
export type PollRoute = (
  req: IncomingMessage,
  res: ServerResponse,
  room: string,
  query: PollQuery,
  fail: (err: Error) => void,
) => Promise<void>;

export function pollRoute(chat: Chat, limits: PollLimits, tokens: Tokens): PollRoute {
  const sendAnswer = (res: ServerResponse, answer: PollAnswer): void => {
    // Answers sent while shutting down close the connection, so clients reconnect elsewhere.
    if (chat.isClosing) res.setHeader('Connection', 'close');
    sendBytes(res, 200, answer.bytes);
  };

  return async (req, res, room, query, fail) => {
    let caller = callerOf(tokens, req);
    // Not awaited when known: a token verified before costs one lookup, not a signature check nor a promise.
    if (caller instanceof Promise) caller = await caller;
    const { after, before, epoch, limit, timeoutMs } = pollParams(query, limits);
    if (after === undefined) {
      const answer = before === undefined ? await chat.join(room, limit, caller) : await chat.page(room, before, limit, epoch, caller);
      return sendAnswer(res, answer);
    }
    const held = chat.poll({ room, after, epoch, limit, timeoutMs }, caller, (result, progress) => {
      if (result instanceof Error) return fail(result);
      sendAnswer(res, result);
      if (progress) holdReading(req.socket, progress);
    });
    cancelWhenGone(chat, req, res, held);
  };
}
