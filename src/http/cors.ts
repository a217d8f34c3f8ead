import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Answer headers a page on another origin must be able to read: the wait
 * before retrying a 429 or 503, and (with signed-in users) why a token was
 * refused. Browsers hide every other header from cross-origin scripts.
 */
export const EXPOSED_HEADERS = 'Retry-After, WWW-Authenticate';

/**
 * CORS for every answer: allowed origins get Access-Control-Allow-Origin and
 * the exposed headers, and their preflights are answered here. Plain
 * node:http types, so that the standalone server's fast path and the Express
 * router share it. Runs before anything that can refuse a request (drain,
 * limits), so that a page sees the refusal instead of a network error.
 */
export function cors(origins: readonly string[]): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (!any) res.setHeader('Vary', 'Origin');
    if (origin === undefined || !(any || allowed.has(origin))) return next();
    res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    if (req.method !== 'OPTIONS') return next();
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    res.setHeader('Access-Control-Max-Age', '600');
    res.writeHead(204, { 'Cache-Control': 'no-store', Pragma: 'no-cache' }).end();
  };
}
