// A Redis Cluster of the test's (or the benchmark's) own: 3 masters and 3
// replicas on free loopback ports, keeping nothing on disk, with a node
// timeout of 1 s so that a replica takes over a killed master within a few
// seconds.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './processes.js';

/** '' when redis-server and redis-cli are on the PATH, else what is missing. */
export function clusterBinariesMissing(): string {
  const missing = ['redis-server', 'redis-cli'].filter((binary) => spawnSync(binary, ['--version']).status !== 0);
  return missing.length > 0 ? `no ${missing.join(' or ')} on the PATH` : '';
}

export interface RedisClusterProcess {
  /** Every node's URL, comma-separated: what --redis-url takes with --redis-cluster. */
  readonly url: string;
  /** The port of the master serving `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** Kills the node on `port` at once (SIGKILL), as a crash would. */
  kill(port: number): Promise<void>;
  /**
   * Starts the node on `port` again with its cluster config, empty (it keeps
   * no data); after a replica took over its slots, it rejoins as that one's replica.
   */
  restart(port: number): Promise<void>;
  /**
   * Resolves once every running node reports cluster_state:ok, `key`'s slot
   * is served by a master that runs and, with `replicated`, every master has
   * a replica in sync (as WAIT needs); throws after `timeoutMs`.
   */
  waitHealthy(options?: { key?: string; replicated?: boolean; timeoutMs?: number }): Promise<void>;
  /** Kills every node and removes their files. */
  stop(): Promise<void>;
}

const NODES = 6;

/** Sends one command to the node on `port`, on a connection of its own. */
async function command(port: number, ...args: string[]): Promise<unknown> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await redis.call(args[0]!, ...args.slice(1));
  } finally {
    redis.disconnect();
  }
}

const ask = async (port: number, ...args: string[]): Promise<string> => String(await command(port, ...args));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts 6 redis-servers in cluster mode, joins them as 3 masters with a replica each, and waits until the cluster is ok. */
export async function startRedisCluster(): Promise<RedisClusterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'chat-redis-cluster-'));
  const ports: number[] = [];
  while (ports.length < NODES) {
    const port = await freePort();
    // The cluster bus listens on port + 10000, which must be free too.
    if (port < 55_000 && !ports.includes(port)) ports.push(port);
  }
  const children = new Map<number, ChildProcess>();
  const start = async (port: number): Promise<void> => {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', '1000', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    children.set(port, child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        if ((await ask(port, 'PING')) === 'PONG') return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start: ${(err as Error).message}`);
      }
      await sleep(50);
    }
  };
  const running = (port: number): boolean => {
    const child = children.get(port);
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  };
  const kill = async (port: number): Promise<void> => {
    const child = children.get(port);
    if (!child || !running(port)) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  const stop = async (): Promise<void> => {
    await Promise.all(ports.map(kill));
    rmSync(dir, { recursive: true, force: true });
  };

  const masterOf = async (key: string): Promise<number> => {
    const slot = Number(await ask(ports.find(running)!, 'CLUSTER', 'KEYSLOT', key));
    for (const port of ports.filter(running)) {
      const shards = (await command(port, 'CLUSTER', 'SLOTS').catch(() => undefined)) as [number, number, [string, number]][] | undefined;
      const shard = shards?.find(([from, to]) => from <= slot && slot <= to);
      if (shard) return shard[2][1];
    }
    throw new Error(`no running node knows who serves slot ${slot}`);
  };

  const replicated = async (port: number): Promise<boolean> => {
    const info = await ask(port, 'INFO', 'replication');
    return !info.includes('role:master') || /slave0:.*state=online/.test(info);
  };
  const waitHealthy: RedisClusterProcess['waitHealthy'] = async ({ key = 'x', replicated: withReplicas = true, timeoutMs = 30_000 } = {}) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const live = ports.filter(running);
        const states = await Promise.all(live.map((port) => ask(port, 'CLUSTER', 'INFO')));
        const synced = !withReplicas || (await Promise.all(live.map(replicated))).every(Boolean);
        if (states.every((info) => info.includes('cluster_state:ok')) && synced && running(await masterOf(key))) return;
      } catch {
        // A node still starting; asked again below.
      }
      if (Date.now() > deadline) throw new Error(`the Redis Cluster on ports ${ports.join(', ')} is not healthy after ${timeoutMs} ms`);
      await sleep(100);
    }
  };

  try {
    await Promise.all(ports.map(start));
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await waitHealthy();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url: ports.map((port) => `redis://127.0.0.1:${port}`).join(','),
    masterOf,
    kill,
    restart: start,
    waitHealthy,
    stop,
  };
}
