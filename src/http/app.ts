import express, { type Express } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Chat } from '../core/chat.js';
import { ChatError } from '../core/errors.js';
import { cors } from './cors.js';
import { answerError, errorHandler } from './errors.js';
import { inTurn } from './in-turn.js';
import { pollQueryOf } from './params.js';
import { pollRoute } from './poll-route.js';
import { createChatRouter, type ChatRouterOptions } from './router.js';

export interface AppOptions extends ChatRouterOptions {
  /** Express's `trust proxy` setting: which proxies' X-Forwarded-For to believe for client addresses. */
  trustProxy: boolean | number | string;
}

/** A standalone app: the chat router at the root, and JSON errors for everything else. */
export function createApp(chat: Chat, options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', options.trustProxy);
  app.use(createChatRouter(chat, options));
  app.use(() => {
    throw new ChatError('not_found', 'no such route');
  });
  app.use(errorHandler(options.log));
  return app;
}

/** GET /api/rooms/:room/messages, exactly, with its query. */
const POLL_PATH = /^\/api\/rooms\/([^/?]+)\/messages(?:\?(.*))?$/s;

/** A plain GET: a Host, no body to refuse or limit, no expectation to answer (the Express stack refuses or handles those). */
function isPlainGet(req: IncomingMessage): boolean {
  const { headers } = req;
  return (
    req.method === 'GET' &&
    headers.host !== undefined &&
    headers['content-length'] === undefined &&
    headers['transfer-encoding'] === undefined &&
    headers.expect === undefined
  );
}

/**
 * The standalone server's request listener. The long-poll GET, which every
 * client repeats after every answer, goes straight to its handler, the same
 * one the Express router uses, without the Express stack (a third of the
 * server's time per poll); everything else, and any other spelling of that
 * path or a GET with a body, goes through the Express app. A connection's
 * pipelined requests are handled one at a time (inTurn).
 */
export function createRequestListener(chat: Chat, options: AppOptions): RequestListener {
  const app = createApp(chat, options);
  const servePoll = pollRoute(chat, options, options.tokens);
  const answer = answerError(options.log);
  const allowOrigin = options.corsOrigins.length > 0 ? cors(options.corsOrigins) : undefined;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const match = isPlainGet(req) ? POLL_PATH.exec(req.url ?? '') : null;
    if (!match) return void app(req, res);
    const fail = (err: unknown): void => answer(err, res);
    const serve = (): void => {
      let room: string;
      try {
        room = decodeURIComponent(match[1]!);
      } catch (err) {
        return fail(err);
      }
      servePoll(req, res, room, pollQueryOf(match[2] ?? ''), fail).catch(fail);
    };
    if (allowOrigin) allowOrigin(req, res, serve);
    else serve();
  };
  return (req, res) => inTurn(req, res, () => handle(req, res));
}
