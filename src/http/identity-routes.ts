import type { Router } from 'express';
import { nanoid } from 'nanoid';
import type { Tokens } from '../auth/tokens.js';
import { ChatError } from '../core/errors.js';
import { authorProblem } from '../core/validate.js';
import { callerOf } from './auth.js';
import { readBody, readOptionalBody } from './body.js';
import { methodNotAllowed } from './errors.js';
import type { PostLimiter } from './rate-limit.js';
import { sendJson } from './respond.js';
import { senderKey } from './room-routes.js';

export interface IdentityOptions {
  tokens: Tokens;
  /** Off when an application mints every token: sessions and refresh answer `guest_sessions_disabled`. */
  guestSessions: boolean;
  bodyLimit: number;
  /** Counts new guest sessions per client address, as anonymous posts are counted. */
  limiter?: PostLimiter;
}

function guestsOff(): ChatError {
  return new ChatError('guest_sessions_disabled', 'guest sessions are turned off here: sign in through the application that embeds this chat');
}

/**
 * `POST /api/sessions` (a guest session: a new user id and a token for the
 * name given) and `POST /api/sessions/refresh` (a new token for the caller,
 * same id and name), as protocol "Identity" says. A refreshed token is a
 * guest session's: it carries no `rooms` claim, so what an application
 * granted ends when the application's token does. New
 * sessions count against the posting limit of the client's address, so that
 * minting users does not multiply anyone's posting rate without bound.
 */
export function identityRoutes(router: Router, { tokens, guestSessions, bodyLimit, limiter }: IdentityOptions): void {
  router
    .route('/api/sessions')
    .post(async (req, res) => {
      const body = await readBody(req, res, bodyLimit);
      await callerOf(tokens, req, body);
      if (!guestSessions) throw guestsOff();
      await limiter?.consume(senderKey(undefined, req));
      const name = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).name : undefined;
      if (typeof name !== 'string') throw new ChatError('invalid_body', name === undefined ? '"name" is required' : '"name" must be a string');
      const problem = authorProblem(name);
      if (problem) throw new ChatError('invalid_body', `"name" ${problem}`);
      // 96 random bits: ids are public (shown on hover, used to invite), so they need not be secret, only unique.
      sendJson(res, 201, await tokens.issue({ id: `g_${nanoid(16)}`, name }));
    })
    .all(methodNotAllowed('POST'));

  router
    .route('/api/sessions/refresh')
    .post(async (req, res) => {
      const caller = await callerOf(tokens, req, await readOptionalBody(req, res, bodyLimit));
      if (!guestSessions) throw guestsOff();
      if (!caller) throw new ChatError('unauthenticated', 'send the token to refresh (Authorization: Bearer)');
      sendJson(res, 201, await tokens.issue(caller));
    })
    .all(methodNotAllowed('POST'));
}
