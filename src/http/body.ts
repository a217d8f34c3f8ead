import { parse as parseContentType } from 'content-type';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import getRawBody from 'raw-body';
import { ChatError } from '../core/errors.js';

const BODY_TYPES = ['application/json', 'application/x-www-form-urlencoded'] as const;

const DECODERS: Record<string, (() => Transform) | undefined> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/**
 * Requests whose `100 Continue` the server holds back until a handler is
 * about to read the body (see deferContinue), so that a client asking first
 * is refused (413, 415, 429…) before it sends anything.
 */
const continueDeferred = new WeakSet<IncomingMessage>();

/**
 * For node:http's `checkContinue` event: passes the request on without
 * sending `100 Continue`; readBody sends it when the body is wanted.
 * Without such a listener Node sends it before any handler runs.
 */
export function deferContinue(listener: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    continueDeferred.add(req);
    listener(req, res);
  };
}

/** The declared body length, or undefined for none or a chunked body; Node has already refused a malformed one. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  return value === undefined ? undefined : Number(value);
}

/** Whether the request carries a body at all (RFC 9112 §6.3: a length, or a transfer coding). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (declaredLength(req) ?? 0) > 0;
}

/**
 * Reads a POST body sent as `application/json` or
 * `application/x-www-form-urlencoded` (UTF-8; gzip, deflate or br content
 * coding allowed) and returns it parsed: the JSON value, or the form's
 * fields as strings (a field given twice as an array). The limit holds for
 * the bytes received and for the decoded body alike.
 *
 * Throws ChatError: `unsupported_media_type` (another type, charset or
 * coding), `bad_request` (Content-Type given twice), `body_too_large` (more
 * than `limit` bytes, declared or received, after decoding; thrown as soon as
 * it is known, leaving the rest of the body unread), `invalid_json`, or
 * `invalid_body` (a body that ends early or does not decode).
 */
export async function readBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<unknown> {
  const type = bodyType(req);
  const length = declaredLength(req);
  if (length !== undefined && length > limit) throw bodyTooLarge(limit);
  const coding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let decoder: Transform | undefined;
  if (coding !== 'identity') {
    const create = DECODERS[coding];
    if (!create) throw new ChatError('unsupported_media_type', `content coding "${coding}" is not supported; send gzip, deflate, br or none`);
    const inflating = (decoder = req.pipe(create()));
    // The limit holds for the bytes received too: an endless chunked stream that decodes to nothing would otherwise be read forever.
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      if ((received += chunk.length) > limit) inflating.destroy(bodyTooLarge(limit));
    });
  }
  if (continueDeferred.has(req)) res.writeContinue();

  let raw: string;
  try {
    raw = await getRawBody(decoder ?? req, { limit, length: decoder ? undefined : length, encoding: 'utf-8' });
  } catch (err) {
    if (decoder) {
      req.unpipe(decoder);
      decoder.destroy();
    }
    if (err instanceof ChatError) throw err;
    if ((err as { type?: unknown }).type === 'entity.too.large') throw bodyTooLarge(limit);
    throw new ChatError('invalid_body', decoder ? `request body is not valid ${coding}` : 'request body ended before its declared length');
  }
  return type === 'application/json' ? parseJson(raw) : parseQuery(raw, '&', '=', { maxKeys: 0 });
}

/** The 413 for a body over `limit` bytes. */
export function bodyTooLarge(limit: number): ChatError {
  return new ChatError('body_too_large', `request body is larger than this server accepts (${limit} bytes)`);
}

function bodyType(req: IncomingMessage): (typeof BODY_TYPES)[number] {
  // Node keeps the first of two Content-Type headers; which one the client meant is unknowable.
  if ((req.headersDistinct['content-type']?.length ?? 0) > 1) throw new ChatError('bad_request', 'Content-Type is given more than once');
  const header = req.headers['content-type'];
  if (header === undefined) throw unsupportedType();
  const { type, parameters } = parseContentType(header);
  const known = BODY_TYPES.find((t) => t === type.toLowerCase());
  const charset = parameters.charset?.toLowerCase();
  if (!known || (charset !== undefined && charset !== 'utf-8')) throw unsupportedType();
  return known;
}

/** Built only when thrown: an error's stack trace costs more than the rest of a POST's type check. */
function unsupportedType(): ChatError {
  return new ChatError('unsupported_media_type', 'send the body as application/json or application/x-www-form-urlencoded, in UTF-8');
}

/** An empty body is an empty object, so that the client hears which field is missing. */
function parseJson(raw: string): unknown {
  if (raw.trim() === '') return {};
  // Only objects and arrays, as RFC 8259 clients send for a request body; a bare string is most likely a mistake.
  if (!/^\s*[{[]/.test(raw)) throw new ChatError('invalid_json', 'request body must be a JSON object');
  try {
    return JSON.parse(raw);
  } catch {
    throw new ChatError('invalid_json', 'request body is not valid JSON');
  }
}

/** A body for routes whose fields are all optional: none sent is an empty object, so no Content-Type is needed. */
export async function readOptionalBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<unknown> {
  return hasBody(req) ? readBody(req, res, limit) : {};
}
