import type { RedisClient } from '../stores/redis-connect.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ChatError } from '../core/errors.js';
import { StoreUnavailableError } from '../core/store.js';
import { TICKET_LIFETIME_MS } from '../auth/tickets.js';

export interface RateLimit {
  /** Sustained messages per second per user (or client address when anonymous). */
  perSecond: number;
  /** Messages a quiet user may send at once. */
  burst: number;
}

/** Counts a sender's writes; throws ChatError `rate_limited` (with Retry-After) past the limit. */
export interface PostLimiter {
  /** `key`: `user:<id>` for a signed-in sender, `addr:<address>` for an anonymous one. */
  consume(key: string): Promise<void>;
}

/** What a limiter counts: the name of its counts (the key prefix), and what a refusal says. */
export interface LimitKind {
  name: string;
  refusal: string;
}

const POSTS: LimitKind = { name: 'post-rate', refusal: 'too many messages; slow down' };

/**
 * Typing notices a user may send: every one that starts or stops typing
 * signals the room, and every instance with syncs on it reads the room's
 * lists again. A page sends one every 3 s while its user types, and one when
 * they stop; 10 in 10 s is three times that.
 */
export const TYPING_LIMIT: RateLimit = { perSecond: 1, burst: 10 };
export const TYPING: LimitKind = { name: 'typing-rate', refusal: 'too many typing notices; send one every few seconds at most' };

/**
 * Spent stream tickets, counted by the same means: one use per ticket id in
 * a window a second longer than a ticket lives (TICKET_LIFETIME_MS), so the
 * mark outlasts the ticket, and on Redis every instance sees it. A second
 * use is refused as `rate_limited` (StreamTickets turns that into `invalid_ticket`).
 */
export const TICKET_USES: RateLimit = { perSecond: 1 / (TICKET_LIFETIME_MS / 1000 + 1), burst: 1 };
export const TICKETS: LimitKind = { name: 'stream-ticket', refusal: 'this stream ticket was used already' };

/**
 * The posting limit, from `rate-limiter-flexible`: at most `burst` writes
 * per window of burst / perSecond seconds (rounded to whole seconds, at least
 * one, because Redis expires keys by the second), so that the long-run rate
 * is about `perSecond` and a quiet sender may still send `burst` at once.
 * With a Redis client the counts live in Redis under `prefix`, shared by every
 * instance on it, so N instances do not allow N times the rate; otherwise in
 * this process (expired counts are swept, so memory follows the senders of
 * the last window only).
 */
export function postLimiter({ perSecond, burst }: RateLimit, redis?: { client: RedisClient; prefix: string }, kind = POSTS): PostLimiter {
  const duration = Math.max(1, Math.round(burst / perSecond));
  const options = { points: burst, duration, keyPrefix: kind.name };
  const limiter: RateLimiterAbstract = redis
    ? new RateLimiterRedis({ ...options, storeClient: redis.client, keyPrefix: `${redis.prefix}${kind.name}`, rejectIfRedisNotReady: true })
    : new RateLimiterMemory(options);
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          throw new ChatError('rate_limited', kind.refusal, Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
        }
        throw new StoreUnavailableError('the rate limit cannot be checked in Redis', { cause: err });
      }
    },
  };
}
