import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ChatError } from '../core/errors.js';
import { StoreUnavailableError } from '../core/store.js';

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
export function postLimiter({ perSecond, burst }: RateLimit, redis?: { client: Redis; prefix: string }): PostLimiter {
  const duration = Math.max(1, Math.round(burst / perSecond));
  const options = { points: burst, duration, keyPrefix: 'post-rate' };
  const limiter: RateLimiterAbstract = redis
    ? new RateLimiterRedis({ ...options, storeClient: redis.client, keyPrefix: `${redis.prefix}post-rate`, rejectIfRedisNotReady: true })
    : new RateLimiterMemory(options);
  return {
    async consume(key) {
      try {
        await limiter.consume(key);
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          throw new ChatError('rate_limited', 'too many messages; slow down', Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
        }
        throw new StoreUnavailableError('the rate limit cannot be checked in Redis', { cause: err });
      }
    },
  };
}
