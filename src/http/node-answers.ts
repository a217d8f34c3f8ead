import { STATUS_CODES, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ChatError } from '../core/errors.js';
import { deferContinue } from './body.js';
import { EXPOSED_HEADERS } from './cors.js';
import { STATUS } from './errors.js';
import { LINGER_MS } from './linger.js';


/** What Node's HTTP parser reports, by its error code. */
function parserError(err: Error & { code?: string; reason?: string }): ChatError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ChatError('headers_too_large', 'the request line and headers are larger than this server accepts (16 KiB); shorten the URL or the headers');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new ChatError('body_too_large', 'the chunk extensions of the request body are too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ChatError('request_timeout', 'the request did not arrive in time');
    default:
      return new ChatError('bad_request', `malformed HTTP request${err.reason ? `: ${err.reason}` : ''}`);
  }
}

/**
 * A complete answer written straight to a socket, for requests that never
 * became a request object: the same JSON error and headers as every other
 * answer, and `Connection: close`. CORS can only be granted to any origin
 * here, as the request's Origin is not known.
 */
function rawAnswer(error: ChatError, anyOrigin: boolean, extra = ''): string {
  const status = STATUS[error.code];
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  const cors = anyOrigin ? `Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: ${EXPOSED_HEADERS}\r\n` : '';
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Cache-Control: no-store\r\nPragma: no-cache\r\nX-Content-Type-Options: nosniff\r\n' +
    `${extra}${cors}Connection: close\r\n\r\n${body}`
  );
}

/** Connections answered here: what the client sends meanwhile makes the parser complain again, to no one. */
const answered = new WeakSet<Duplex>();

/** Writes the answer, closes the sending side, and cuts the connection a little later (see closeAfterAnswer). */
function endWith(socket: Duplex, answer: string): void {
  answered.add(socket);
  socket.end(answer);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/**
 * Takes over the answers node:http would give on its own, so that every
 * answer is the protocol's JSON error:
 * - requests its parser refuses (malformed, request line and headers over
 *   16 KiB, headers or body too slow): Node's own are empty 400/431/408s;
 * - `Expect: 100-continue`: Node would send `100 Continue` before any
 *   handler runs; now it is sent only when a body is about to be read, so a
 *   too large or otherwise refused body is refused before it is sent;
 * - other expectations go to `listener`, which answers 417 (Node's own is empty);
 * - CONNECT, which Node answers by closing the connection.
 * `anyOrigin`: CORS is configured as `*`.
 */
export function answerAsJson(server: Server, listener: RequestListener, anyOrigin: boolean): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (answered.has(socket)) return;
    // A reset or broken pipe: nobody is there to answer.
    if (!err.code?.startsWith('HPE_') && err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') return void socket.destroy();
    // Already answered, or in the middle of an answer whose bytes must not be mixed with ours (Node's own check).
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || inFlight?.headersSent) return void socket.destroy();
    endWith(socket, rawAnswer(parserError(err), anyOrigin));
  });
  server.on('checkContinue', deferContinue(listener));
  server.on('checkExpectation', listener);
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    endWith(socket, rawAnswer(new ChatError('method_not_allowed', 'CONNECT is not served here'), anyOrigin, 'Allow: GET, HEAD, POST\r\n'));
  });
}
