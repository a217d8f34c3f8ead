import type { Config } from '../config.js';
import { MemoryStore } from '../core/memory-store.js';
import type { Store } from '../core/store.js';
import { RedisStore, safeUrl } from './redis-store.js';
import { SqliteStore } from './sqlite-store.js';

/** Opens the store the config names; throws StoreOpenError with one line for the operator. */
export async function openStore(config: Config, log: (message: string, err?: unknown) => void): Promise<Store> {
  switch (config.store) {
    case 'memory':
      return new MemoryStore({ retention: config.retention, maxRooms: config.maxRooms });
    case 'sqlite':
      return SqliteStore.open({ path: config.sqlitePath, retention: config.retention, retentionAgeMs: config.retentionAge * 1000, log });
    case 'redis':
      return RedisStore.open({ url: config.redisUrl, prefix: config.redisPrefix, retention: config.retention, log });
  }
}

/** Where messages live and how long, in words, for the start-up line. */
export function describeStore(config: Config): string {
  switch (config.store) {
    case 'memory':
      return 'messages kept in memory only: a restart loses them';
    case 'sqlite':
      return `messages kept in SQLite file ${config.sqlitePath}`;
    case 'redis':
      return `messages kept in Redis at ${safeUrl(config.redisUrl)} under prefix ${config.redisPrefix}`;
  }
}
