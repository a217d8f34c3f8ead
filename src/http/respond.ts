import type { ServerResponse } from 'node:http';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Writes already-serialized JSON; the poll path shares one buffer among many
 * responses. Every JSON answer says that nothing along the way may cache or
 * revalidate it (Pragma for HTTP/1.0 caches) and that it is never to be
 * sniffed as something else.
 */
export function sendBytes(res: ServerResponse, status: number, bytes: Buffer): void {
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
