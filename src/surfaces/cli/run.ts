import { dirname } from 'node:path';
import type pino from 'pino';
import { type ActionsSetup, createActions } from '../../actions/routing.js';
import type { ActionStats } from '../../actions/runner.js';
import { controlOf } from '../../config/control.js';
import { loadConfigFile } from '../../config/load.js';
import type { PortcullisConfig } from '../../config/types.js';
import { systemClock } from '../../core/clock.js';
import { ConfigError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { createGuard, type Guard } from '../../guard.js';
import { attachActivityLog } from '../../operate/activity-log.js';
import { createControl, type OperatedControl } from '../../operate/create-control.js';
import { logSources } from '../../sources/log/log-source.js';
import { packetSources } from '../../sources/packets/packet-watcher.js';
import { type SourceFactory, SourceRegistry } from '../../sources/registry.js';
import { tcpSources } from '../../sources/socket/tcp-guard.js';
import { startControlSocket } from '../control/start.js';
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
  reload(): Promise<ReloadOutcome>;
  /** The operator's view (status, bans, reload, stop, event feed): the control socket and the admin API use it. */
  readonly control: OperatedControl;
  /** The control socket's path; `null` when off (`control: false`) or taken by another daemon. */
  readonly controlSocket: string | null;
  /** Resolves once a stop (signal, control socket, admin API) has finished. */
  readonly stopped: Promise<void>;
  /** The reverse proxy, when the config has a `proxy:` section. */
  readonly proxy: PortcullisProxy | undefined;
  /** Reopens the files portcullis writes (the proxy's access log): what SIGUSR1 does (logrotate). */
  reopenLogs(): Promise<void>;
  /** The actions' counters, per action name (empty without actions). */
  actionStats(): Record<string, ActionStats>;
}

/** What a reload did: `ok: false` with the reason when the new file was refused. */
export type ReloadOutcome = { ok: true } | { ok: false; error: string };

/** The inputs `portcullis run` supervises, in start order. Socket sources join here. */
const SOURCES: readonly SourceFactory[] = [logSources(), packetSources(), tcpSources(), proxySource()];

/** `portcullis run`: starts everything the config names and keeps running until stopped. */
export async function runFromFile(file: string): Promise<RunningInstance> {
  const config = loadConfigFile(file);
  const logger = createProcessLogger(config.log.level);
  logWarnings(logger, config);
  const guard = await createGuard(config, { logger });
  // Before the sources start, so the jail counters and the activity lines see every failure.
  let sourcesRef: SourceRegistry | undefined;
  let actionsSetup: ActionsSetup | null = null;
  let instance: RunningInstance | undefined;
  const control = createControl({
    guard,
    sourceStats: () => sourcesRef?.stats() ?? {},
    actionStats: () => actionsSetup?.runner.stats() ?? {},
    reload: () => instance?.reload() ?? Promise.resolve({ ok: true }),
    stop: () => instance?.stop() ?? Promise.resolve(),
  });
  const detachActivity = attachActivityLog(guard, logger);
  // Actions start once the guard has restored its bans: the runner's replay re-applies them all
  // in one batch (the kernel may still hold them from before a crash; `restore` replaces them).
  const actions = await startActions(config, logger, guard, file);
  actionsSetup = actions;
  // Log jails first, the proxy last: its first request must find the jails and restored bans.
  const sources = new SourceRegistry(guard, SOURCES);
  sourcesRef = sources;
  await sources.start().catch(async (error: unknown) => {
    await actions?.runner.close();
    await guard.close();
    throw error;
  });
  describeStart(logger, config, guard);
  const controlServer = await startControlSocket(control, controlOf(config), logger).catch(
    async (error: unknown) => {
      await sources.close();
      await actions?.runner.close();
      await guard.close();
      throw error;
    },
  );
  // The admin listener (API, metrics, dashboard) last: everything it reports on is running.
  const admin =
    config.admin === undefined
      ? null
      : await import('../admin/index.js')
          .then((m) =>
            m.startConfiguredAdmin({ control, guard, proxy: runningProxy(sources.sources), logger }),
          )
          .catch(async (error: unknown) => {
            await controlServer?.close();
            await sources.close();
            await actions?.runner.close();
            await guard.close();
            throw error;
          });
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
  let reloading: Promise<ReloadOutcome> = Promise.resolve({ ok: true });
  const reloadOnce = async (): Promise<ReloadOutcome> => {
    if (stopping !== undefined) return { ok: false, error: 'portcullis is stopping' };
    try {
      const previous = guard.config;
      const next = loadConfigFile(file);
      guard.reload(next);
      logger.level = next.log.level;
      if (JSON.stringify(next.actions ?? []) !== JSON.stringify(previous.actions ?? []))
        logger.warn(
          { event: 'reload-actions' },
          'actions changed: the running actions are kept until a restart',
        );
      logWarnings(logger, next);
      if (JSON.stringify(controlOf(next)) !== JSON.stringify(controlOf(previous)))
        logger.warn(
          { event: 'reload-control' },
          'control settings changed: the control socket keeps its path and mode until a restart',
        );
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
      return { ok: true };
    } catch (error) {
      const message = error instanceof ConfigError ? error.message : String(error);
      logger.error(
        { event: 'reload-failed', error: message },
        'configuration NOT reloaded; keeping the running one',
      );
      return { ok: false, error: message };
    }
  };
  let stoppedResolve: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stoppedResolve = resolve;
  });
  instance = {
    guard,
    logger,
    sources,
    control,
    controlSocket: controlServer?.path ?? null,
    stopped,
    stop() {
      stopping ??= (async () => {
        logger.info({ event: 'stop' }, 'stopping');
        clearInterval(keepAlive);
        // The control socket first: a command sent now gets "no daemon", not a half-closed one.
        await controlServer?.close();
        await admin?.close();
        // A reload in flight would start sources after they were closed.
        await reloading;
        // The proxy first (no new request judged by a closing guard), the log jails next (their
        // last reports must reach the guard before it closes).
        await sources.close();
        // Actions after the sources (their last bans are applied) and before the guard. Closing
        // leaves firewall bans in the kernel: they stay enforced until their own timeouts.
        await actions?.runner.close();
        if (actions !== null) logActionStats(logger, actions);
        await guard.close();
        control.close();
        detachActivity();
        logger.info({ event: 'stopped' }, 'stopped');
        stoppedResolve();
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
    actionStats() {
      return actions?.runner.stats() ?? {};
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

/** Builds and starts the configured actions; `null` without any. A failed start stops `run`. */
async function startActions(
  config: PortcullisConfig,
  logger: pino.Logger,
  guard: Guard,
  file: string,
): Promise<ActionsSetup | null> {
  const setup = createActions(config.jails, config.actions ?? [], config.defaultActions ?? [], {
    logger,
    clock: systemClock,
    baseDir: dirname(file),
  });
  if (setup === null) return null;
  try {
    await setup.runner.start(guard);
  } catch (error) {
    await guard.close();
    throw error;
  }
  for (const spec of config.actions ?? []) {
    const jails = config.jails.filter((jail) => jail.actions.includes(spec)).map((jail) => jail.name);
    logger.info(
      { event: 'action-started', action: spec.name, kind: spec.kind, options: spec.options, jails },
      `action ${spec.name} (${spec.kind}) started for ${jails.length > 0 ? jails.join(', ') : 'no jail'} and manual bans`,
    );
  }
  return setup;
}

function logActionStats(logger: pino.Logger, actions: ActionsSetup): void {
  for (const [name, stats] of Object.entries(actions.runner.stats()))
    logger.info(
      { event: 'action-stats', action: name, ...stats },
      `action ${name}: ${stats.applied} applied, ${stats.reverted} reverted, ${plural(stats.failures, 'failure')}, ${stats.pending} pending`,
    );
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
    `portcullis started: ${plural(guard.jails.size, 'jail')}, ${plural(guard.stats.activeBans, 'ban')} enforced, store ${store}`,
  );
}
