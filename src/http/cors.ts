import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * CORS for the API: allowed origins get Access-Control-Allow-Origin, and
 * their preflights are answered here. Plain node:http types, so that the
 * standalone server's fast path and the Express router share it.
 */
export function cors(origins: readonly string[]): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (!any) res.setHeader('Vary', 'Origin');
    if (origin === undefined || !(any || allowed.has(origin))) return next();
    res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
    if (req.method !== 'OPTIONS') return next();
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
    res.setHeader('Access-Control-Max-Age', '600');
    res.writeHead(204, { 'Cache-Control': 'no-store', Pragma: 'no-cache' }).end();
  };
}
