// Finds the Redis the Redis suites talk to, and a redis-server binary for the
// suites that start (and kill) one of their own. In CI both must be there;
// elsewhere a missing one skips those suites, said loudly once here. The
// Redis Cluster suites start a cluster of their own, with redis-server and
// redis-cli.
import { spawnSync } from 'node:child_process';
import { nanoid } from 'nanoid';
import type { TestProject } from 'vitest/node';
import { clusterBinariesMissing } from './helpers/redis-cluster.js';
import { deleteKeys, probeRedis } from './helpers/redis.js';

export interface RedisTestEnv {
  /** The shared Redis, from TEST_REDIS_URL (default redis://127.0.0.1:6379). */
  url: string;
  /** Every key a test writes starts with this; all are deleted after the run. */
  prefix: string;
  /** Why the suites needing the shared Redis are skipped, or '' when they run. */
  skip: string;
  /** Why the suites needing their own redis-server are skipped, or '' when they run. */
  skipOwnServer: string;
  /** Why the suites needing a Redis Cluster of their own are skipped, or '' when they run. */
  skipCluster: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    redis: RedisTestEnv;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const skip = await probeRedis(url);
  const binary = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  const skipOwnServer = binary.status === 0 ? '' : 'no redis-server binary on the PATH';
  const skipCluster = clusterBinariesMissing();
  const skipped = [
    skip && `the Redis store contract and Redis store tests, and the two-instance tests (${skip})`,
    skipOwnServer && `the Redis outage and password tests (${skipOwnServer})`,
    skipCluster && `the Redis Cluster tests (${skipCluster})`,
  ].filter(Boolean);
  if (skipped.length > 0) {
    if (process.env.CI) throw new Error(`CI must run every Redis suite, but would skip ${skipped.join('; and ')}`);
    console.warn(
      `\n*** Skipping ${skipped.join(';\n*** and ')}.\n` +
        '*** Start Redis 7+ (redis-server), install redis-cli, or set TEST_REDIS_URL to run them; with CI=true this is an error.\n',
    );
  }
  const prefix = `test-${nanoid(8)}:`;
  project.provide('redis', { url, prefix, skip, skipOwnServer, skipCluster });
  return async () => {
    if (!skip) await deleteKeys(url, prefix);
  };
}
