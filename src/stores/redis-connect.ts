import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreOpenError } from '../core/store.js';
import { warnRepeated, type Log } from '../log.js';

/** A connection to one Redis server, or a client of a Redis Cluster: what the Redis store's parts run commands on. */
export type RedisClient = Redis | Cluster;

/** Where the Redis store connects. */
export interface RedisTarget {
  /** One redis:// or rediss:// URL, with credentials and database number if needed; with `cluster`, one or more seed nodes, comma-separated. */
  url: string;
  /** `url` names nodes of a Redis Cluster. */
  cluster?: boolean;
  /** Redis Cluster: replicas each append waits for (WAIT; default 1); more than 0 gives appends a client of their own. */
  ackReplicas?: number;
}

/**
 * The store's clients: one for commands, one for change signals (a
 * subscribed connection runs nothing else), and one for appends that wait
 * for replicas: WAIT holds its connection until they confirm, and reads and
 * presence must not queue behind it. `appends` is `cmd` when nothing waits.
 */
export interface RedisClients {
  cmd: RedisClient;
  sub: RedisClient;
  appends: RedisClient;
}

/** A command that takes longer fails (503) rather than holding a request. */
const COMMAND_TIMEOUT_MS = 5000;
/** Reconnect backoff cap, and how often a cluster's slot map is read again: a Redis that comes back, or a replica that took over, is used within this. */
const RECONNECT_MAX_MS = 2000;

const backoff = (attempt: number): number => Math.min(attempt * 200, RECONNECT_MAX_MS);
/** Redis Cluster: a client this long without an error, and ready, is reported restored. */
const CLUSTER_QUIET_MS = 5000;

/** The URL (each URL, when several) without its password, for messages. */
export function safeUrl(url: string): string {
  return url
    .split(',')
    .map((part) => {
      try {
        const parsed = new URL(part.trim());
        if (parsed.password) parsed.password = '***';
        return parsed.toString().replace(/\/$/, '');
      } catch {
        return '(unparseable URL)';
      }
    })
    .join(',');
}

/** What a seed node URL says: its address, credentials and TLS, which every node of the cluster shares. */
function clusterNode(raw: string): { host: string; port: number; options: Pick<RedisOptions, 'username' | 'password' | 'tls'> } {
  const url = new URL(raw.trim());
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error('it must start with redis:// or rediss://');
  if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0') throw new Error('a Redis Cluster has database 0 only');
  const options: Pick<RedisOptions, 'username' | 'password' | 'tls'> = {};
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') options.tls = {};
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379), options };
}

/**
 * Builds a client that never queues a command while Redis is away and never
 * sends one again behind the caller's back (a command that may have run
 * fails at once), and reconnects by itself. A cluster client also follows
 * MOVED and ASK redirections, which name commands that did not run.
 */
function client(target: RedisTarget, name: string, subscriber: boolean): RedisClient {
  const common = { connectionName: name, commandTimeout: COMMAND_TIMEOUT_MS, maxRetriesPerRequest: 0 };
  if (!target.cluster) {
    const options: RedisOptions = { ...common, lazyConnect: true, enableOfflineQueue: false, retryStrategy: backoff };
    return new Redis(target.url, subscriber ? { ...options, autoResubscribe: false } : options);
  }
  const nodes = target.url.split(',').map(clusterNode);
  const options: ClusterOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    // A command whose connection closed may have run, so it is never sent again; one refused with
    // CLUSTERDOWN did not run, but waiting for the cluster would hold the request: both fail at once (503).
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    clusterRetryStrategy: backoff,
    slotsRefreshInterval: RECONNECT_MAX_MS,
    // Each shard channel is subscribed on a connection to the master of its slot, moved after a failover.
    shardedSubscribers: subscriber,
    redisOptions: { ...common, ...nodes[0]!.options },
  };
  return new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    options,
  );
}

/**
 * The masters holding the data: the one server, or every master of the
 * cluster (as its client last learnt them), for what each must be asked
 * (INFO, CONFIG, SCAN).
 */
export function masters(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** host:port of a server, for messages. */
export function nodeName(redis: Redis): string {
  return `${redis.options.host ?? '?'}:${redis.options.port ?? '?'}`;
}

/**
 * Connects both clients and checks every master: Redis 7.0 or newer, and a
 * cluster node exactly when `target.cluster` says so. Throws StoreOpenError
 * with one line for the operator.
 */
export async function connect(target: RedisTarget): Promise<RedisClients> {
  const where = safeUrl(target.url);
  const what = target.cluster ? 'Redis Cluster' : 'Redis';
  let clients: RedisClients;
  try {
    const cmd = client(target, 'longpoll-chat', false);
    const waits = target.cluster === true && (target.ackReplicas ?? 1) > 0;
    clients = { cmd, sub: client(target, 'longpoll-chat-signals', true), appends: waits ? client(target, 'longpoll-chat-appends', false) : cmd };
  } catch (err) {
    throw new StoreOpenError(`REDIS_URL is not a usable ${what} URL (${where}): ${(err as Error).message}`, { cause: err });
  }
  const { cmd, sub } = clients;
  const all = distinct(clients);

  // A node's own error says more than the cluster client's summary of them ("Failed to refresh slots cache").
  let lastError: Error | undefined;
  let nodeError: Error | undefined;
  const remember = (err: Error): void => {
    lastError = err;
  };
  const rememberNode = (err: Error): void => {
    nodeError = err;
  };
  for (const conn of all) {
    conn.on('error', remember);
    conn.on('node error', rememberNode);
  }
  try {
    await Promise.all(all.map((conn) => conn.connect()));
    // A cluster client connects to a master at its first command, which fails
    // while that connection opens (no offline queue): open them now.
    if (clients.appends !== cmd) await Promise.all(masters(clients.appends).map((node) => node.ping()));
    for (const node of masters(cmd)) {
      const info = await node.info('server');
      const version = /redis_version:(\d+)\.(\d+)/.exec(info);
      const at = target.cluster ? `Redis at ${nodeName(node)} (of ${where})` : `Redis at ${where}`;
      if (!version || Number(version[1]) < 7) {
        throw new StoreOpenError(`${at} is version ${version ? `${version[1]}.${version[2]}` : 'unknown'}; this server needs 7.0 or newer (sharded pub/sub)`);
      }
      if (!target.cluster && /cluster_enabled:1/.test(await node.info('cluster'))) {
        throw new StoreOpenError(`${at} is a node of a Redis Cluster; add --redis-cluster (REDIS_CLUSTER=on)`);
      }
    }
  } catch (err) {
    for (const conn of all) conn.disconnect();
    if (err instanceof StoreOpenError) throw err;
    const reason = (nodeError ?? lastError ?? (err as Error)).message;
    if (/WRONGPASS|NOAUTH|NOPERM/.test(reason)) throw new StoreOpenError(`${what} at ${where} refused the credentials: ${reason}`, { cause: err });
    if (/cluster support disabled/.test(reason)) throw new StoreOpenError(`Redis at ${where} is not a node of a Redis Cluster (${reason}); leave out --redis-cluster`, { cause: err });
    throw new StoreOpenError(`cannot reach ${what} at ${where}: ${reason}`, { cause: err });
  } finally {
    for (const conn of all) {
      conn.off('error', remember);
      conn.off('node error', rememberNode);
    }
  }
  return clients;
}

/** Each of the store's clients once (`appends` may be `cmd`). */
export function distinct({ cmd, sub, appends }: RedisClients): RedisClient[] {
  return appends === cmd ? [cmd, sub] : [cmd, sub, appends];
}

/** Redis evicting keys under memory pressure would drop history silently; say so at start-up, for every master. */
export async function warnAboutEviction(redis: RedisClient, where: string, log: Log): Promise<void> {
  for (const node of masters(redis)) {
    const at = redis instanceof Cluster ? `${nodeName(node)} (of ${where})` : where;
    try {
      const [, policy] = (await node.config('GET', 'maxmemory-policy')) as string[];
      if (policy !== undefined && policy !== 'noeviction') {
        log.warn({ redis: at, policy }, `Redis at ${at} has maxmemory-policy ${policy}; it may evict chat history. Set it to noeviction, so that a full Redis refuses posts (503) instead.`);
      }
    } catch {
      // Managed services often refuse CONFIG; nothing to check then.
    }
  }
}

/**
 * A master with fewer replicas than each append waits for refuses every post
 * to its rooms (503 after the WAIT): say so at start-up, for each such master.
 * A replica that is only down for a while shows here too, as it fails posts too.
 */
export async function warnAboutReplicas(redis: RedisClient, ackReplicas: number, where: string, log: Log): Promise<void> {
  if (!(redis instanceof Cluster) || ackReplicas === 0) return;
  for (const node of masters(redis)) {
    try {
      const replicas = Number(/connected_slaves:(\d+)/.exec(await node.info('replication'))?.[1] ?? NaN);
      if (replicas < ackReplicas) {
        const at = `${nodeName(node)} (of ${where})`;
        log.warn({ redis: at, replicas, ackReplicas }, `Redis at ${at} has ${replicas} replica(s) connected and posts wait for ${ackReplicas} (--redis-ack-replicas): posts to its rooms are refused (503) until it has ${ackReplicas}`);
      }
    } catch {
      // Unreadable now: the posts themselves will say.
    }
  }
}

/**
 * Reports a client's losses and recoveries once each, not at every reconnect
 * attempt.
 */
export function watch(conn: RedisClient, role: string, log: Log): void {
  if (conn instanceof Cluster) return watchCluster(conn, role, log);
  let down = false;
  const lost = (reason: string): void => {
    if (down) return;
    down = true;
    log.warn({ cause: reason }, `Redis connection (${role}) lost; reconnecting`);
  };
  conn.on('error', (err: Error) => lost(err.message));
  conn.on('close', () => lost('connection closed'));
  conn.on('ready', () => {
    if (!down) return;
    down = false;
    log.info({}, `Redis connection (${role}) restored`);
  });
}

/**
 * A cluster client meets an error at every attempt on a master that failed,
 * which it makes again and again until a replica has taken over: those are
 * reported through warnRepeated, and the client as restored once it has been
 * ready for CLUSTER_QUIET_MS without one.
 */
function watchCluster(conn: Cluster, role: string, log: Log): void {
  let down = false;
  let quiet: NodeJS.Timeout | undefined;
  const checkLater = (): void => {
    clearTimeout(quiet);
    quiet = setTimeout(() => {
      if (!down || conn.status !== 'ready') return;
      down = false;
      log.info({}, `Redis Cluster connection (${role}) restored`);
    }, CLUSTER_QUIET_MS).unref();
  };
  const lost = (reason: string): void => {
    down = true;
    warnRepeated(log, `Redis Cluster connection (${role}) failing; retrying`, reason);
    checkLater();
  };
  conn.on('error', (err: Error) => lost(err.message));
  conn.on('node error', (err: Error, node?: string) => lost(node ? `${node}: ${err.message}` : err.message));
  conn.on('close', () => lost('connection closed'));
  conn.on('ready', () => {
    if (down) checkLater();
  });
}
