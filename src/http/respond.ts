import type { ServerResponse } from 'node:http';
import { closeAfterAnswer } from './linger.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Writes already-serialized JSON; the poll path shares one buffer among many
 * responses. Every JSON answer says that nothing along the way may cache or
 * revalidate it (Pragma for HTTP/1.0 caches) and that it is never to be
 * sniffed as something else.
 *
 * A 413, and any answer given before a chunked body (whose end nobody knows)
 * or a body announced with `Expect: 100-continue` (whose connection Node
 * closes when no 100 was sent) has arrived, closes the connection after
 * lingering (closeAfterAnswer), so that no client can make the server read
 * an unbounded body, nor see a reset instead of its answer.
 */
export function sendBytes(res: ServerResponse, status: number, bytes: Buffer): void {
  const { req } = res;
  if (!req.complete && (status === 413 || req.headers['transfer-encoding'] !== undefined || req.headers.expect !== undefined)) closeAfterAnswer(req, res);
  res.writeHead(status, [
    'Content-Type', JSON_TYPE,
    'Content-Length', String(bytes.length),
    'Cache-Control', 'no-store',
    'Pragma', 'no-cache',
    'X-Content-Type-Options', 'nosniff',
  ]);
  res.end(bytes);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendBytes(res, status, Buffer.from(JSON.stringify(body)));
}
