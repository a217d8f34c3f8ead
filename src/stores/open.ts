import type { Config } from '../config.js';
import { MemoryStore } from '../core/memory-store.js';
import type { Store } from '../core/store.js';
import type { Log } from '../log.js';
import { safeUrl } from './redis-connect.js';
import { RedisStore } from './redis-store.js';
import { SqliteStore } from './sqlite-store.js';

/** Opens the store the config names; throws StoreOpenError with one line for the operator. */
export async function openStore(config: Config, log: Log): Promise<Store> {
  switch (config.store) {
    case 'memory':
      return new MemoryStore({ retention: config.retention, maxRooms: config.maxRooms });
    case 'sqlite':
      return SqliteStore.open({ path: config.sqlitePath, retention: config.retention, retentionAgeMs: config.retentionAge * 1000, log });
    case 'redis':
      return RedisStore.open({
        url: config.redisUrl,
        cluster: config.redisCluster,
        ackReplicas: config.redisAckReplicas,
        prefix: config.redisPrefix,
        retention: config.retention,
        log,
      });
  }
}

/** The store the config names, in words (without a password), such as "SQLite file data/chat.db". */
export function storeName(config: Config): string {
  switch (config.store) {
    case 'memory':
      return "this process's memory";
    case 'sqlite':
      return `SQLite file ${config.sqlitePath}`;
    case 'redis':
      return `${config.redisCluster ? 'Redis Cluster' : 'Redis'} at ${safeUrl(config.redisUrl)} under prefix ${config.redisPrefix}`;
  }
}

/** Where messages live and how long, in words, for the start-up line. */
export function describeStore(config: Config): string {
  return config.store === 'memory' ? 'messages kept in memory only: a restart loses them' : `messages kept in ${storeName(config)}`;
}
