import type pino from 'pino';
import { loadConfigFile } from '../../config/load.js';
import type { PortcullisConfig } from '../../config/types.js';
import { ConfigError } from '../../core/errors.js';
import { createGuard, type Guard } from '../../guard.js';
import { startLogJails } from '../../sources/log/log-jail.js';
import { createProcessLogger } from './logger.js';

export interface RunningInstance {
  guard: Guard;
  logger: pino.Logger;
  /** Graceful stop: what SIGTERM does. */
  stop(): Promise<void>;
  /** Re-reads the config file: what SIGHUP does. A bad file is logged and the old config kept. */
  reload(): Promise<void>;
}

/** `portcullis run`: starts everything the config names and keeps running until stopped. */
export async function runFromFile(file: string): Promise<RunningInstance> {
  const config = loadConfigFile(file);
  const logger = createProcessLogger(config.log.level);
  const guard = await createGuard(config, { logger });
  const logJails = await startLogJails(guard, { logger }).catch(async (error: unknown) => {
    await guard.close();
    throw error;
  });
  describeStart(logger, config, guard);

  // Timers inside the guard are unref'd; this keeps `run` alive while nothing else listens.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping: Promise<void> | undefined;
  const instance: RunningInstance = {
    guard,
    logger,
    stop() {
      stopping ??= (async () => {
        logger.info({ event: 'stop' }, 'stopping');
        clearInterval(keepAlive);
        // Log jails first: their last reports must reach the guard before it closes.
        await logJails.close();
        await guard.close();
        logger.info({ event: 'stopped' }, 'stopped');
      })();
      return stopping;
    },
    async reload() {
      try {
        const next = loadConfigFile(file);
        guard.reload(next);
        logger.level = next.log.level;
        logger.info({ event: 'reload', jails: next.jails.length }, 'configuration reloaded');
      } catch (error) {
        const message = error instanceof ConfigError ? error.message : String(error);
        logger.error(
          { event: 'reload-failed', error: message },
          'configuration NOT reloaded; keeping the running one',
        );
      }
    },
  };
  return instance;
}

function describeStart(logger: pino.Logger, config: PortcullisConfig, guard: Guard): void {
  const store =
    config.store.kind === 'sqlite'
      ? `sqlite ${config.store.path}`
      : config.store.kind === 'redis'
        ? `redis ${config.store.url ?? config.store.sentinelName ?? 'cluster'} (prefix ${config.store.prefix})`
        : 'memory';
  for (const jail of config.jails) {
    if (!jail.enabled) continue;
    if (jail.source.kind === 'http' || jail.source.kind === 'socket') {
      logger.warn(
        { event: 'source-unavailable', jail: jail.name, source: jail.source.kind },
        `jail ${jail.name}: source "${jail.source.kind}" is not available in this build; the jail only counts report() calls`,
      );
    }
  }
  logger.info(
    {
      event: 'start',
      store,
      jails: [...guard.jails.keys()],
      bans: guard.stats.activeBans,
      config: config.file,
    },
    `portcullis started: ${guard.jails.size} jail(s), ${guard.stats.activeBans} ban(s) enforced, store ${store}`,
  );
}
