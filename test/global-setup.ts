// Finds the Redis the Redis suites talk to, and a redis-server binary for the
// suites that start (and kill) one of their own. In CI both must be there;
// elsewhere a missing one skips those suites, said loudly once here.
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { nanoid } from 'nanoid';
import type { TestProject } from 'vitest/node';

export interface RedisTestEnv {
  /** The shared Redis, from TEST_REDIS_URL (default redis://127.0.0.1:6379). */
  url: string;
  /** Every key a test writes starts with this; all are deleted after the run. */
  prefix: string;
  /** Why the suites needing the shared Redis are skipped, or '' when they run. */
  skip: string;
  /** Why the suites needing their own redis-server are skipped, or '' when they run. */
  skipOwnServer: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    redis: RedisTestEnv;
  }
}

async function probe(url: string): Promise<string> {
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

async function deleteKeys(url: string, prefix: string): Promise<void> {
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

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const skip = await probe(url);
  const binary = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  const skipOwnServer = binary.status === 0 ? '' : 'no redis-server binary on the PATH';
  const skipped = [
    skip && `the Redis store contract and Redis store tests, and the two-instance tests (${skip})`,
    skipOwnServer && `the Redis outage and password tests (${skipOwnServer})`,
  ].filter(Boolean);
  if (skipped.length > 0) {
    if (process.env.CI) throw new Error(`CI must run every Redis suite, but would skip ${skipped.join('; and ')}`);
    console.warn(
      `\n*** Skipping ${skipped.join(';\n*** and ')}.\n` +
        '*** Start Redis 7+ (redis-server) or set TEST_REDIS_URL to run them; with CI=true this is an error.\n',
    );
  }
  const prefix = `test-${nanoid(8)}:`;
  project.provide('redis', { url, prefix, skip, skipOwnServer });
  return async () => {
    if (!skip) await deleteKeys(url, prefix);
  };
}
