import type { RequestHandler } from 'express';
import { ChatError } from '../core/errors.js';

export interface RateLimit {
  /** Sustained requests per second per client. */
  perSecond: number;
  /** Requests a quiet client may make at once. */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Clients tracked at once; a flood of new addresses forgets the longest-idle ones. */
const MAX_CLIENTS = 10_000;

/**
 * A token bucket per client address (as Express sees it, so behind a proxy
 * set `trust proxy`). Answers 429 with the seconds until the next token.
 */
export function rateLimit({ perSecond, burst }: RateLimit, now: () => number = performance.now.bind(performance)): RequestHandler {
  // Least recently seen first, so the first key is the one to drop.
  const buckets = new Map<string, Bucket>();
  return (req, _res, next) => {
    const key = req.ip ?? 'unknown';
    const t = now();
    let bucket = buckets.get(key);
    if (bucket) {
      buckets.delete(key);
      bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * perSecond);
      bucket.at = t;
    } else {
      if (buckets.size >= MAX_CLIENTS) buckets.delete(buckets.keys().next().value!);
      bucket = { tokens: burst, at: t };
    }
    buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      const wait = Math.ceil((1 - bucket.tokens) / perSecond);
      next(new ChatError('rate_limited', 'too many messages; slow down', wait));
      return;
    }
    bucket.tokens -= 1;
    next();
  };
}
