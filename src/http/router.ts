import bodyParser from 'body-parser';
import express, { Router, type RequestHandler } from 'express';
import { fileURLToPath } from 'node:url';
import type { Chat } from '../core/chat.js';
import { ChatError } from '../core/errors.js';
import { cors } from './cors.js';
import { errorHandler, methodNotAllowed, type Logger } from './errors.js';
import type { Metrics } from './metrics.js';
import { pollQueryOf, type PollLimits } from './params.js';
import { pollRoute } from './poll-route.js';
import { rateLimit, type RateLimit } from './rate-limit.js';
import { sendJson } from './respond.js';

export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

export interface ChatRouterOptions extends PollLimits {
  /** Largest accepted POST body, in bytes. */
  bodyLimit: number;
  /** Origins allowed to call the API from a browser ("*" for any); empty for same-origin only. */
  corsOrigins: readonly string[];
  /** Posting rate per client address; undefined for no limit. */
  postRate?: RateLimit;
  /** Serves /metrics from it when given. */
  metrics?: Metrics;
  /** Serves the browser page at the router's root (default true). */
  page?: boolean;
  log: Logger;
}

type RoomParams = { room: string };

const BODY_TYPES = ['application/json', 'application/x-www-form-urlencoded'];

/**
 * The chat's HTTP API, health, metrics and page as one Router, to be mounted
 * under any path of any Express app (the page uses relative URLs). It answers
 * every error it meets with the protocol's JSON error.
 */
export function createChatRouter(chat: Chat, options: ChatRouterOptions): Router {
  const router = Router();

  router.use((_req, _res, next) => {
    chat.assertOpen();
    next();
  });
  if (options.corsOrigins.length > 0) router.use('/api', cors(options.corsOrigins));

  const servePoll = pollRoute(chat, options);
  const poll: RequestHandler<RoomParams> = (req, res, next) => servePoll(req, res, req.params.room, pollQueryOf(req.query), next);

  const post: RequestHandler<RoomParams> = async (req, res) => {
    const { message, duplicate } = await chat.post(req.params.room, req.body);
    sendJson(res, duplicate ? 200 : 201, duplicate ? { message, duplicate } : { message });
  };

  const requireBodyType: RequestHandler = (req, _res, next) => {
    if (req.is(BODY_TYPES)) return next();
    next(new ChatError('unsupported_media_type', 'send the body as application/json or application/x-www-form-urlencoded'));
  };

  const postChain: RequestHandler<RoomParams>[] = [
    requireBodyType,
    bodyParser.json({ limit: options.bodyLimit, strict: true, type: 'application/json' }),
    bodyParser.urlencoded({ limit: options.bodyLimit, extended: false, parameterLimit: 16, type: 'application/x-www-form-urlencoded' }),
    post,
  ];
  if (options.postRate) postChain.unshift(rateLimit(options.postRate));

  router
    .route('/api/rooms/:room/messages')
    .get(poll)
    .post(...postChain)
    .all(methodNotAllowed('GET, HEAD, POST'));

  router
    .route('/api/rooms/:room')
    .get<RoomParams>(async (req, res) => sendJson(res, 200, await chat.info(req.params.room)))
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
        options.log('health check failed', err);
        sendJson(res, 503, { ok: false, error: { code: 'store_unavailable', message: 'message store is not answering' } });
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
