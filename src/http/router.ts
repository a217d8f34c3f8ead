import express, { Router, type RequestHandler } from 'express';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { StreamTickets } from '../auth/tickets.js';
import type { Tokens } from '../auth/tokens.js';
import type { Chat } from '../core/chat.js';
import { ChatError } from '../core/errors.js';
import { warnRepeated, type Log } from '../log.js';
import { callerOf } from './auth.js';
import { bodyTooLarge, declaredLength, hasBody, readBody } from './body.js';
import { cors } from './cors.js';
import { errorHandler, methodNotAllowed } from './errors.js';
import { identityRoutes } from './identity-routes.js';
import { inTurn } from './in-turn.js';
import type { Metrics } from './metrics.js';
import { pollQueryOf, searchOf, type PollLimits } from './params.js';
import { pollRoute } from './poll-route.js';
import type { PostLimiter } from './rate-limit.js';
import { sendJson } from './respond.js';
import { roomRoutes, senderKey } from './room-routes.js';
import { streamRoutes } from './stream-route.js';
import { syncRoute } from './sync-route.js';

export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

export interface ChatRouterOptions extends PollLimits {
  /** Largest accepted request body, in bytes; a larger one is refused (413) without being read. */
  bodyLimit: number;
  /** Origins allowed to call the API from a browser ("*" for any); empty for same-origin only. */
  corsOrigins: readonly string[];
  /** Verifies the tokens requests carry (and issues guest sessions'). */
  tokens: Tokens;
  /** Guest sessions (`POST /api/sessions`) are offered; off when an application mints every token. */
  guestSessions: boolean;
  /** Counts posts (and other writes) per user, or per client address when anonymous; undefined for no limit. */
  postLimiter?: PostLimiter;
  /** Counts typing notices per user; undefined for no limit. */
  typingLimiter?: PostLimiter;
  /** Rooms one sync (POST /api/sync) or stream may name. */
  syncMaxRooms: number;
  /**
   * Stream tickets (POST /api/stream-tickets), for pages whose EventSource
   * cannot send a token; without them that route is not offered, and
   * streams take tokens in Authorization only.
   */
  tickets?: StreamTickets;
  /** How long a stream lives before the server ends it, in ms (default 5 minutes, protocol "Streams"). */
  streamMaxAgeMs?: number;
  /** Silence on a stream before a comment is sent, in ms (default 15 s, protocol "Streams"). */
  streamHeartbeatMs?: number;
  /** How long a stream may wait for its client to take what was written before it is cut, in ms (default STALL_MS). */
  streamStallMs?: number;
  /** Serves /metrics from it when given. */
  metrics?: Metrics;
  /** Serves the browser page at the router's root (default true). */
  page?: boolean;
  log: Log;
}

type RoomParams = { room: string };

const CONTINUE = /^\s*100-continue\s*$/i;

/**
 * The chat's HTTP API, health, metrics and page as one Router, to be mounted
 * under any path of any Express app (the page uses relative URLs). It answers
 * every error it meets with the protocol's JSON error.
 */
export function createChatRouter(chat: Chat, options: ChatRouterOptions): Router {
  const router = Router();

  router.use((req, res, next) => inTurn(req, res, next));
  // Before anything that can refuse a request, so that every answer carries CORS.
  if (options.corsOrigins.length > 0) router.use(cors(options.corsOrigins));
  router.use((req, _res, next) => {
    chat.assertOpen();
    refuseEarly(req, options.bodyLimit);
    next();
  });

  const { tokens, postLimiter } = options;
  const servePoll = pollRoute(chat, options, tokens);
  const poll: RequestHandler<RoomParams> = (req, res, next) => servePoll(req, res, req.params.room, pollQueryOf(searchOf(req.url)), next);

  const post: RequestHandler<RoomParams> = async (req, res) => {
    const body = await readBody(req, res, options.bodyLimit);
    const caller = await callerOf(tokens, req, body);
    await postLimiter?.consume(senderKey(caller, req));
    const { message, duplicate } = await chat.post(req.params.room, body, caller);
    sendJson(res, duplicate ? 200 : 201, duplicate ? { message, duplicate } : { message });
  };

  identityRoutes(router, { tokens, guestSessions: options.guestSessions, bodyLimit: options.bodyLimit, limiter: postLimiter });
  roomRoutes(router, chat, { tokens, bodyLimit: options.bodyLimit, limiter: postLimiter, typingLimiter: options.typingLimiter });
  syncRoute(router, chat, { ...options, maxRooms: options.syncMaxRooms });
  streamRoutes(router, chat, {
    tokens,
    tickets: options.tickets,
    bodyLimit: options.bodyLimit,
    maxRooms: options.syncMaxRooms,
    maxAgeMs: options.streamMaxAgeMs ?? 300_000,
    heartbeatMs: options.streamHeartbeatMs ?? 15_000,
    stallMs: options.streamStallMs,
    limiter: postLimiter,
  });

  router
    .route('/api/rooms/:room/messages')
    .get(poll)
    .post(post)
    .all(methodNotAllowed('GET, HEAD, POST'));

  router
    .route('/api/rooms/:room')
    .get<RoomParams>(async (req, res) => sendJson(res, 200, await chat.info(req.params.room, await callerOf(tokens, req))))
    .all(methodNotAllowed('GET, HEAD'));

  router.use('/api', () => {
    throw new ChatError('not_found', 'no such API route; see the README for the protocol');
  });

  router
    .route('/healthz')
    .get(async (_req, res) => {
      try {
        await chat.ping();
        sendJson(res, 200, { ok: true });
      } catch (err) {
        warnRepeated(options.log, 'health check failed; answering 503', err);
        sendJson(res, 503, { ok: false, error: { code: 'store_unavailable', message: 'message store cannot take messages' } });
      }
    })
    .all(methodNotAllowed('GET, HEAD'));

  const { metrics } = options;
  if (metrics) {
    router
      .route('/metrics')
      .get(async (_req, res) => {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Cache-Control': 'no-store' });
        res.end(text);
      })
      .all(methodNotAllowed('GET, HEAD'));
  }

  if (options.page !== false) {
    // Mounted at /chat, the page must be asked for as /chat/ for its relative URLs to reach /chat/api.
    router.get('/', (req, res, next) => {
      const [path, query] = req.originalUrl.split('?', 2);
      if (path!.endsWith('/')) return next();
      res.redirect(308, `${path}/${query === undefined ? '' : `?${query}`}`);
    });
    router.use(express.static(PUBLIC_DIR, { index: 'index.html', redirect: false }));
  }

  router.use(errorHandler(options.log));
  return router;
}

/**
 * Refuses, before any route reads it: an HTTP/1.1 request without Host
 * (RFC 9112 §3.2; Node's own answer to it would be an empty 400), an
 * expectation other than 100-continue (RFC 9110 §10.1.1), a transfer coding
 * other than chunked (RFC 9112 §6.1: 501), a body declared larger than the
 * limit, and a body no route will read (on a GET or HEAD, RFC 9110 §9.3.1).
 */
function refuseEarly(req: IncomingMessage, limit: number): void {
  const { expect, host } = req.headers;
  const coding = req.headers['transfer-encoding'];
  if (host === undefined && req.httpVersion === '1.1') {
    throw new ChatError('bad_request', 'an HTTP/1.1 request must have a Host header (RFC 9112 §3.2)');
  }
  if (expect !== undefined && !CONTINUE.test(expect)) {
    throw new ChatError('expectation_failed', 'the only expectation this server meets is "Expect: 100-continue"');
  }
  // Node decodes chunked only; a body sent with another transfer coding as well would be read undecoded.
  if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') {
    throw new ChatError('not_implemented', `transfer coding "${coding}" is not supported; send the body chunked, or with a Content-Length`);
  }
  if ((declaredLength(req) ?? 0) > limit) {
    throw bodyTooLarge(limit);
  }
  if ((req.method === 'GET' || req.method === 'HEAD') && hasBody(req)) {
    throw new ChatError('bad_request', `a ${req.method} request must not have a body`);
  }
}
