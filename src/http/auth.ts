import type { IncomingMessage } from 'node:http';
import type { Tokens } from '../auth/tokens.js';
import type { Caller } from '../core/access.js';
import { ChatError } from '../core/errors.js';

/** `Authorization: Bearer <b64token>` (RFC 6750 §2.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** Anything that starts as the Bearer scheme is meant for this server: malformed, it is an invalid token, never none. */
const BEARER_SCHEME = /^\s*bearer(?![A-Za-z0-9_-])/i;

/**
 * The token a request carries: from `Authorization: Bearer`, or from the
 * body's `token` field (a form POST, `navigator.sendBeacon`: protocol
 * "Identity"). Other schemes in `Authorization` (Basic, for a gate in front
 * of the server) are not addressed to this server and are ignored. Throws
 * `invalid_token` for a malformed Bearer header or a `token` field that is
 * not a string, and `bad_request` for a token in both places.
 */
export function tokenOf(req: IncomingMessage, body?: unknown): string | undefined {
  const header = req.headers.authorization;
  let token: string | undefined;
  // Node keeps the first of two Authorization headers and drops the rest; a proxy might keep another.
  if (header !== undefined && given(req.rawHeaders, 'authorization') > 1) {
    throw new ChatError('bad_request', 'the Authorization header must be given once');
  }
  if (header !== undefined && BEARER_SCHEME.test(header)) {
    const match = BEARER.exec(header);
    if (!match) throw new ChatError('invalid_token', 'invalid token: the Authorization header must be "Bearer <token>"');
    token = match[1];
  }
  const field = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).token : undefined;
  if (field === undefined) return token;
  if (typeof field !== 'string') throw new ChatError('invalid_token', 'invalid token: the "token" field must be a string');
  if (token !== undefined) throw new ChatError('bad_request', 'send the token once: in the Authorization header or in the body, not both');
  return field;
}

/** How many times a header is given. */
function given(rawHeaders: string[], name: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
}

/**
 * The caller a request comes from, or undefined when it carries no token.
 * A token that does not verify is `invalid_token`, never taken for none.
 * Answers without waiting when the token was verified before.
 */
export function callerOf(tokens: Tokens, req: IncomingMessage, body?: unknown): Caller | undefined | Promise<Caller> {
  const token = tokenOf(req, body);
  if (token === undefined) return undefined;
  return tokens.known(token) ?? tokens.verify(token);
}
