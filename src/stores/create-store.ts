import type { StoreConfig } from '../config/types.js';
import type { Logger } from '../core/logger.js';
import { MemoryStore } from './memory/memory-store.js';
import type { Store } from './store.js';

export interface CreateStoreOptions {
  logger: Logger;
  /** Identifies this instance in shared stores. */
  instanceId: string;
  /** `store.dbpurgeage`: Redis keeps ban history at least this long. */
  dbPurgeAgeMs: number;
}

const DAY_MS = 86_400_000;

/**
 * Builds the configured store. Backends load lazily so a Redis deployment never loads the SQLite
 * native module, and the other way round.
 */
export async function createStore(config: StoreConfig, options: CreateStoreOptions): Promise<Store> {
  switch (config.kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite/sqlite-store.js');
      return new SqliteStore({ path: config.path, logger: options.logger });
    }
    case 'redis': {
      const { RedisStore } = await import('./redis/redis-store.js');
      return new RedisStore({
        ...(config.url === undefined ? {} : { url: config.url }),
        ...(config.sentinels === undefined ? {} : { sentinels: [...config.sentinels] }),
        ...(config.sentinelName === undefined ? {} : { sentinelName: config.sentinelName }),
        ...(config.cluster === undefined ? {} : { cluster: [...config.cluster] }),
        ...(config.username === undefined ? {} : { username: config.username }),
        ...(config.password === undefined ? {} : { password: config.password }),
        ...(config.db === undefined ? {} : { db: config.db }),
        ...(config.tls === undefined ? {} : { tls: config.tls }),
        prefix: config.prefix,
        commandTimeoutMs: config.commandTimeoutMs,
        instanceId: options.instanceId,
        historyTtlMs: Math.max(30 * DAY_MS, options.dbPurgeAgeMs + DAY_MS),
        logger: options.logger,
      });
    }
  }
}
