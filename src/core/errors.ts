/**
 * Every error code the service answers with. The HTTP layer maps each to its
 * status in one table (src/http/errors.ts); the README lists them all.
 */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_room'
  | 'invalid_parameter'
  | 'invalid_json'
  | 'invalid_body'
  | 'invalid_author'
  | 'invalid_text'
  | 'invalid_client_msg_id'
  | 'unauthenticated'
  | 'invalid_token'
  | 'invalid_ticket'
  | 'forbidden'
  | 'guest_sessions_disabled'
  | 'not_found'
  | 'room_exists'
  | 'too_many_rooms'
  | 'method_not_allowed'
  | 'request_timeout'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'precondition_failed'
  | 'range_not_satisfiable'
  | 'expectation_failed'
  | 'rate_limited'
  | 'headers_too_large'
  | 'over_capacity'
  | 'shutting_down'
  | 'store_unavailable'
  | 'not_implemented'
  | 'internal_error';

/** An error meant for the client: its message is shown to users as is. */
export class ChatError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Seconds the client should wait before retrying (429, 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ChatError';
  }
}
