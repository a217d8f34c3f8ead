// Reaching and cleaning the Redis the tests and the benchmark share.
import { Redis } from 'ioredis';

/** '' when a Redis 7+ answers at `url`, else why not. */
export async function probeRedis(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null, connectTimeout: 2000, maxRetriesPerRequest: 0 });
  let lastError = '';
  redis.on('error', (err: Error) => (lastError = err.message));
  try {
    await redis.connect();
    const info = await redis.info('server');
    const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
    return major >= 7 ? '' : `the Redis at ${url} is older than 7.0`;
  } catch (err) {
    return `no Redis at ${url} (${lastError || (err as Error).message})`;
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key that starts with `prefix`. */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
