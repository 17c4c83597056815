import type pino from 'pino';
import { loadConfigFile } from '../../config/load.js';
import type { PortcullisConfig } from '../../config/types.js';
import { ConfigError } from '../../core/errors.js';
import { createGuard, type Guard } from '../../guard.js';
import { startLogJails } from '../../sources/log/log-jail.js';
import type { PortcullisProxy } from '../proxy/proxy.js';
import { createProcessLogger } from './logger.js';

export interface RunningInstance {
  guard: Guard;
  logger: pino.Logger;
  /** Graceful stop: what SIGTERM does. */
  stop(): Promise<void>;
  /** Re-reads the config file: what SIGHUP does. A bad file is logged and the old config kept. */
  reload(): Promise<void>;
  /** The reverse proxy, when the config has a `proxy:` section. */
  proxy: PortcullisProxy | undefined;
  /** Reopens the files portcullis writes (the proxy's access log): what SIGUSR1 does (logrotate). */
  reopenLogs(): Promise<void>;
}

/** `portcullis run`: starts everything the config names and keeps running until stopped. */
export async function runFromFile(file: string): Promise<RunningInstance> {
  const config = loadConfigFile(file);
  const logger = createProcessLogger(config.log.level);
  const guard = await createGuard(config, { logger });
  let logJails = await startLogJails(guard, { logger }).catch(async (error: unknown) => {
    await guard.close();
    throw error;
  });
  // The proxy last: its first request must find the jails and restored bans in place.
  let proxy: PortcullisProxy | undefined;
  if (config.proxy !== undefined) {
    const proxyConfig = config.proxy;
    proxy = await import('../proxy/proxy.js')
      .then(({ createProxy }) => createProxy(guard, { ...proxyConfig, logger }))
      .catch(async (error: unknown) => {
        await logJails.close();
        await guard.close();
        throw error;
      });
  }
  describeStart(logger, config, guard);
  if (proxy !== undefined) {
    const urls = proxy.addresses.map((a) => a.url + (a.proxyProtocol ? ' (PROXY protocol)' : ''));
    logger.info(
      { event: 'proxy-listening', addresses: urls, targets: config.proxy?.targets },
      `proxy listening on ${urls.join(', ')} -> ${config.proxy?.targets.join(', ')}`,
    );
  }

  // Timers inside the guard are unref'd; this keeps `run` alive while nothing else listens.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping: Promise<void> | undefined;
  // Reloads run one at a time (two at once would each start a set of log jails and leak one).
  let reloading: Promise<void> = Promise.resolve();
  const reloadOnce = async (): Promise<void> => {
    if (stopping !== undefined) return;
    try {
      const previous = guard.config;
      const next = loadConfigFile(file);
      guard.reload(next);
      logger.level = next.log.level;
      // Log jails restart on the new jails; saved positions mean no line is lost or re-read.
      await logJails.close();
      try {
        logJails = await startLogJails(guard, { logger });
      } catch (error) {
        // Keep the running configuration, log jails included.
        guard.reload(previous);
        logger.level = previous.log.level;
        logJails = await startLogJails(guard, { logger });
        throw error;
      }
      if (proxy !== undefined) {
        proxy.reloadTls();
        if (JSON.stringify(next.proxy) !== JSON.stringify(config.proxy)) {
          logger.warn({ event: 'reload' }, 'proxy settings changed; they take effect only after a restart');
        }
      }
      logger.info({ event: 'reload', jails: next.jails.length }, 'configuration reloaded');
    } catch (error) {
      const message = error instanceof ConfigError ? error.message : String(error);
      logger.error(
        { event: 'reload-failed', error: message },
        'configuration NOT reloaded; keeping the running one',
      );
    }
  };
  const instance: RunningInstance = {
    guard,
    logger,
    stop() {
      stopping ??= (async () => {
        logger.info({ event: 'stop' }, 'stopping');
        clearInterval(keepAlive);
        // A reload in flight would start log jails after they were closed.
        await reloading;
        // The proxy first: no new request may be judged by a closing guard.
        await proxy?.close();
        // Log jails next: their last reports must reach the guard before it closes.
        await logJails.close();
        await guard.close();
        logger.info({ event: 'stopped' }, 'stopped');
      })();
      return stopping;
    },
    reload() {
      reloading = reloading.then(reloadOnce);
      return reloading;
    },
    proxy,
    async reopenLogs() {
      if (proxy?.accessLog === undefined) return;
      await proxy.reopenAccessLog();
      logger.info(
        { event: 'reopen', file: proxy.accessLog.path },
        `access log reopened: ${proxy.accessLog.path}`,
      );
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
    if ((jail.source.kind === 'http' && config.proxy === undefined) || jail.source.kind === 'socket') {
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
