import express, { type Express } from 'express';
import type { Chat } from '../core/chat.js';
import { ChatError } from '../core/errors.js';
import { errorHandler } from './errors.js';
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
