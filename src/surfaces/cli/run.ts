import type pino from 'pino';
import { loadConfigFile } from '../../config/load.js';
import type { PortcullisConfig } from '../../config/types.js';
import { ConfigError } from '../../core/errors.js';
import { createGuard, type Guard } from '../../guard.js';
import { logSources } from '../../sources/log/log-source.js';
import { type SourceFactory, SourceRegistry } from '../../sources/registry.js';
import type { PortcullisProxy } from '../proxy/proxy.js';
import { proxySource, runningProxy } from '../proxy/proxy-source.js';
import { createProcessLogger } from './logger.js';

export interface RunningInstance {
  guard: Guard;
  logger: pino.Logger;
  /** The running sources (log jails, proxy), supervised. */
  sources: SourceRegistry;
  /** Graceful stop: what SIGTERM does. */
  stop(): Promise<void>;
  /** Re-reads the config file: what SIGHUP does. A bad file is logged and the old config kept. */
  reload(): Promise<void>;
  /** The reverse proxy, when the config has a `proxy:` section. */
  readonly proxy: PortcullisProxy | undefined;
  /** Reopens the files portcullis writes (the proxy's access log): what SIGUSR1 does (logrotate). */
  reopenLogs(): Promise<void>;
}

/** The inputs `portcullis run` supervises, in start order. Socket sources join here. */
const SOURCES: readonly SourceFactory[] = [logSources(), proxySource()];

/** `portcullis run`: starts everything the config names and keeps running until stopped. */
export async function runFromFile(file: string): Promise<RunningInstance> {
  const config = loadConfigFile(file);
  const logger = createProcessLogger(config.log.level);
  logWarnings(logger, config);
  const guard = await createGuard(config, { logger });
  // Log jails first, the proxy last: its first request must find the jails and restored bans.
  const sources = new SourceRegistry(guard, SOURCES);
  await sources.start().catch(async (error: unknown) => {
    await guard.close();
    throw error;
  });
  describeStart(logger, config, guard);
  const proxy = runningProxy(sources.sources);
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
      logWarnings(logger, next);
      try {
        await sources.reload();
      } catch (error) {
        // Keep the running configuration, its sources included.
        guard.reload(previous);
        logger.level = previous.log.level;
        await sources.reload();
        throw error;
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
    sources,
    stop() {
      stopping ??= (async () => {
        logger.info({ event: 'stop' }, 'stopping');
        clearInterval(keepAlive);
        // A reload in flight would start sources after they were closed.
        await reloading;
        // The proxy first (no new request judged by a closing guard), the log jails next (their
        // last reports must reach the guard before it closes).
        await sources.close();
        await guard.close();
        logger.info({ event: 'stopped' }, 'stopped');
      })();
      return stopping;
    },
    reload() {
      reloading = reloading.then(reloadOnce);
      return reloading;
    },
    get proxy() {
      return runningProxy(sources.sources);
    },
    async reopenLogs() {
      const running = runningProxy(sources.sources);
      if (running?.accessLog === undefined) return;
      await running.reopenAccessLog();
      logger.info(
        { event: 'reopen', file: running.accessLog.path },
        `access log reopened: ${running.accessLog.path}`,
      );
    },
  };
  return instance;
}

/** Configuration warnings (a CIDR with host bits set, ...): each a line of its own. */
function logWarnings(logger: pino.Logger, config: PortcullisConfig): void {
  for (const warning of config.warnings) logger.warn({ event: 'config-warning' }, warning);
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
    if (jail.source.kind === 'http' && config.proxy === undefined) {
      logger.warn(
        { event: 'source-unavailable', jail: jail.name, source: jail.source.kind },
        `jail ${jail.name}: source "http" but no proxy: section; in this process the jail only counts report() calls (use the Express middleware in your app, or add a proxy)`,
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
