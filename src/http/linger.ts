import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Bytes read and dropped after the answer: a client that reads the answer
 * only once it has sent its whole body can still finish a body somewhat over
 * the limit; past that, a client must read while it sends.
 */
const LINGER_BYTES = 1024 * 1024;
/** How long the connection stays open after the answer at most, for the client to read it. */
export const LINGER_MS = 2000;

/**
 * Answers a request whose body will not be read (refused as too large, or
 * answered before its unbounded chunked body arrived) and then closes the
 * connection without resetting it under the client's feet (RFC 9112 §9.6,
 * tear-down). The answer says `Connection: close`; once it is written, the
 * server closes its sending side, reads and drops up to LINGER_BYTES of what
 * the client still sends, then stops reading (the client's sending stalls),
 * and closes after LINGER_MS or as soon as the client does. Closing at once
 * would make the server's kernel answer the client's next bytes with a
 * reset, which destroys the answer if the client has not read it yet;
 * reading the whole body instead would let a client make the server read
 * gigabytes.
 *
 * Call before the answer's headers are written.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  const socket = req.socket as Socket & { destroySoon(): void };
  let answered = false;
  let left = LINGER_BYTES;
  // Consuming the body here also stops Node from reading all of it after the answer.
  req.on('data', (chunk: Buffer) => {
    if (answered && (left -= chunk.length) <= 0) req.pause();
  });
  req.resume();
  // Node calls this once an answer that says Connection: close is written (in
  // place of ending and destroying the socket itself).
  socket.destroySoon = () => {
    answered = true;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    socket.once('close', () => clearTimeout(timer));
  };
}
