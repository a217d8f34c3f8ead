import type { ErrorRequestHandler } from 'express';
import type { ServerResponse } from 'node:http';
import { ChatError, type ErrorCode } from '../core/errors.js';
import { StoreUnavailableError } from '../core/store.js';
import { warnRepeated, type Log } from '../log.js';
import { sendJson } from './respond.js';

/** The HTTP status of every error code: the one place that says it. */
export const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_room: 400,
  invalid_parameter: 400,
  invalid_json: 400,
  invalid_body: 400,
  invalid_author: 400,
  invalid_text: 400,
  invalid_client_msg_id: 400,
  unauthenticated: 401,
  invalid_token: 401,
  invalid_ticket: 401,
  forbidden: 403,
  guest_sessions_disabled: 403,
  not_found: 404,
  room_exists: 409,
  too_many_rooms: 400,
  method_not_allowed: 405,
  request_timeout: 408,
  body_too_large: 413,
  precondition_failed: 412,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  expectation_failed: 417,
  rate_limited: 429,
  headers_too_large: 431,
  over_capacity: 503,
  shutting_down: 503,
  store_unavailable: 503,
  internal_error: 500,
  not_implemented: 501,
};

/** Seconds a client is told to wait after a store failure. */
const STORE_RETRY_AFTER = 2;

/** Turns anything thrown into the error a client is shown; bugs are logged with their stack. */
export function toChatError(err: unknown, log: Log): ChatError {
  if (err instanceof ChatError) return err;
  if (err instanceof StoreUnavailableError) {
    warnRepeated(log, 'message store unavailable; answering 503', err);
    return new ChatError('store_unavailable', 'message store is unavailable; retry later', STORE_RETRY_AFTER);
  }
  // The only decoded path parameter is the room.
  if (err instanceof URIError) return new ChatError('invalid_room', 'room is not valid percent-encoded UTF-8');
  // The page's files (express.static) answer ranges and preconditions; other client errors of Express's are a 400.
  const status = (err as { status?: unknown } | null)?.status;
  if (status === 412) return new ChatError('precondition_failed', 'the condition of the request (If-Match, If-Unmodified-Since) does not hold');
  if (status === 416) return new ChatError('range_not_satisfiable', 'the range asked for is not within the file');
  if (typeof status === 'number' && status >= 400 && status < 500) return new ChatError('bad_request', 'malformed request');
  log.error({ err }, 'unexpected error; answered 500');
  return new ChatError('internal_error', 'internal server error');
}

/**
 * The Bearer challenge of a 401 (RFC 6750 §3): with no token, only the
 * scheme; with a bad one, `error="invalid_token"` and why, in the characters
 * an `error_description` may hold (no quote or backslash).
 */
function challenge(err: ChatError): string | undefined {
  // A refused ticket says nothing of the token it came from: get a new ticket, as for no token.
  if (err.code === 'unauthenticated' || err.code === 'invalid_ticket') return 'Bearer realm="chat"';
  if (err.code !== 'invalid_token') return undefined;
  const description = err.message.replace(/[^\x20-\x7e]|["\\]/g, "'");
  return `Bearer realm="chat", error="invalid_token", error_description="${description}"`;
}

export function sendError(res: ServerResponse, err: ChatError, extraHeaders?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err.retryAfter !== undefined) res.setHeader('Retry-After', String(err.retryAfter));
  const authenticate = challenge(err);
  if (authenticate) res.setHeader('WWW-Authenticate', authenticate);
  if (extraHeaders) for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
  sendJson(res, STATUS[err.code], { error: { code: err.code, message: err.message } });
}

/** Answers anything thrown with the client's JSON error. */
export function answerError(log: Log): (err: unknown, res: ServerResponse) => void {
  return (err, res) => {
    const error = toChatError(err, log);
    // A client turned away at shutdown should reconnect, to another instance if there is one.
    sendError(res, error, error.code === 'shutting_down' ? { Connection: 'close' } : undefined);
  };
}

export function errorHandler(log: Log): ErrorRequestHandler {
  const answer = answerError(log);
  return (err, _req, res, _next) => answer(err, res);
}

/** For a known path asked with a method it does not serve. */
export function methodNotAllowed(allow: string) {
  return (_req: unknown, res: ServerResponse): void => {
    sendError(res, new ChatError('method_not_allowed', `this path accepts ${allow}`), { Allow: allow });
  };
}
