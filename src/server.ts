import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadPublicKeys } from './auth/keys.js';
import { openIdentity } from './auth/identity.js';
import type { Tokens } from './auth/tokens.js';
import type { Config } from './config.js';
import { Chat } from './core/chat.js';
import { StoreOpenError, type Store } from './core/store.js';
import { createRequestListener } from './http/app.js';
import { Metrics } from './http/metrics.js';
import { answerAsJson } from './http/node-answers.js';
import { TICKETS, TICKET_USES, TYPING, TYPING_LIMIT, postLimiter } from './http/rate-limit.js';
import { createLog, warnRepeated, type Log } from './log.js';
import { openStore } from './stores/open.js';
import { RedisStore } from './stores/redis-store.js';

/** Seconds a client refused for capacity or shutdown is told to wait. */
const RETRY_AFTER = 2;

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  readonly chat: Chat;
  readonly metrics: Metrics;
  readonly log: Log;
  readonly tokens: Tokens;
  /**
   * Answers every parked poll at once, answers 503 for `drainTimeout`
   * seconds, then closes every connection, and the store if it opened it.
   */
  shutdown(): Promise<void>;
}

export interface ServerParts {
  /** Defaults to the store the config names, opened here (and closed at shutdown). */
  store?: Store;
  /** Defaults to standard output in the config's log format and level. */
  log?: Log;
  /** Default process metrics (CPU, memory, event loop) in /metrics; default true. */
  processMetrics?: boolean;
}

/**
 * Builds the service from its config and starts listening. Throws
 * KeyFileError when the public key file cannot be used, StoreOpenError when
 * the configured store cannot be opened.
 */
export async function startServer(config: Config, parts: ServerParts = {}): Promise<RunningServer> {
  const log = parts.log ?? createLog(config.logFormat, config.logLevel);
  const publicKeys = config.authPublicKey ? await loadPublicKeys(config.authPublicKey) : undefined;
  const ownStore = parts.store === undefined;
  const store = parts.store ?? (await openStore(config, log));
  // On Redis the counts are shared, so that N instances do not allow N times the rate (nor a ticket twice).
  const shared = store instanceof RedisStore ? { client: store.client, prefix: config.redisPrefix } : undefined;
  const ticketUses = postLimiter(TICKET_USES, shared, TICKETS);
  let identity;
  try {
    identity = await openIdentity(store, {
      secret: config.authSecret || undefined,
      publicKeys,
      lifetimeMs: config.sessionLifetime * 1000,
      spendTicket: (id) => ticketUses.consume(id),
    });
  } catch (err) {
    if (ownStore) await store.close();
    throw new StoreOpenError(`cannot read or keep the token secret: ${(err as Error).message}`, { cause: err });
  }
  const { tokens, tickets, directKey } = identity;
  log.info(
    { guestSessions: config.guestSessions, anonymousPosts: config.anonymousPosts, applicationKeys: publicKeys?.count ?? 0 },
    `identity: guest sessions ${config.guestSessions ? 'on' : 'off'}, anonymous posts ${config.anonymousPosts ? 'on' : 'off'}` +
      (publicKeys ? `, tokens of ${publicKeys.count} application key(s) accepted (${publicKeys.algorithms.join(', ')})` : '') +
      `; tokens signed with ${config.authSecret ? 'AUTH_SECRET' : 'the secret kept in the store'}`,
  );
  if (publicKeys && config.guestSessions) {
    log.warn({}, 'guest sessions are on beside application keys: anyone can get a token, and your users can refresh theirs past the expiry you gave (without their rooms claim); set --guest-sessions off if your application mints every token');
  }

  let chat: Chat | undefined;
  const metrics = new Metrics(() => chat?.parked ?? 0, { processMetrics: parts.processMetrics, syncsHeld: () => chat?.syncsHeld ?? 0, streamsOpen: () => chat?.streamsOpen ?? 0, usersOnline: () => chat?.usersOnline ?? 0 });
  chat = new Chat(store, {
    maxTextLength: config.maxTextLength,
    capacity: config.capacity,
    wakeSlice: config.wakeSlice,
    retryAfter: RETRY_AFTER,
    observer: metrics,
    anonymousPosts: config.anonymousPosts,
    requireAuthToRead: config.requireAuthToRead,
    directKey,
    onlineWindowMs: config.onlineWindow * 1000,
    onPresenceError: (err) => warnRepeated(log, 'a presence write failed; the next poll of that user writes it again', err),
  });
  const rate = { perSecond: config.postRate, burst: config.postBurst };

  const listener = createRequestListener(chat, {
    defaultTimeout: config.defaultTimeout,
    maxTimeout: config.maxTimeout,
    bodyLimit: config.bodyLimit,
    corsOrigins: config.corsOrigins,
    tokens,
    guestSessions: config.guestSessions,
    syncMaxRooms: config.syncMaxRooms,
    tickets,
    streamMaxAgeMs: config.streamMaxAge * 1000,
    streamHeartbeatMs: config.streamHeartbeat * 1000,
    streamStallMs: config.streamStall * 1000,
    postLimiter: config.postRate > 0 ? postLimiter(rate, shared) : undefined,
    typingLimiter: postLimiter(TYPING_LIMIT, shared, TYPING),
    metrics,
    trustProxy: config.trustProxy,
    log,
  });

  const keepAliveMs = config.keepAliveTimeout * 1000;
  const headersTimeout = keepAliveMs + 1000;
  const server = createServer(
    {
      // A load balancer reuses idle connections; if Node closed one first the
      // balancer would see a reset, so Node must keep them longer than it does.
      keepAliveTimeout: keepAliveMs,
      // Node measures these from a request's first byte: they bound slow
      // uploads and headers, and never cut a poll already received.
      headersTimeout,
      requestTimeout: Math.max(300_000, keepAliveMs + 2000),
      // Node enforces both timeouts by a sweep at this interval (30 s by
      // default, which could let a slow client hold on half a minute more):
      // every 5 s, or twice per headers timeout if that is shorter.
      connectionsCheckingInterval: Math.min(5000, headersTimeout / 2),
      // The router answers a request without Host with the JSON 400 (Node's own is empty).
      requireHostHeader: false,
    },
    listener,
  );
  // No inactivity timeout on sockets: a parked poll is silent by design.
  server.setTimeout(0);
  // Node's default, 2,000, drops further headers silently, which could drop the one that matters;
  // the 16 KiB limit on the request head still bounds them.
  server.maxHeadersCount = 0;
  answerAsJson(server, listener, config.corsOrigins.includes('*'));

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    if (ownStore) await store.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (closing ??= (async () => {
      const answered = chat.shutdown();
      log.info({ answered, drainSeconds: config.drainTimeout }, `shutting down: answered ${answered} parked poll(s); answering 503 for ${config.drainTimeout} s`);
      await sleep(config.drainTimeout * 1000);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      if (ownStore) await store.close();
    })());

  return { url: `http://${host}:${address.port}`, server, chat, metrics, log, tokens, shutdown };
}
