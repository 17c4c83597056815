import type { AdminConfig } from '../../config/admin.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Control } from '../../operate/control.js';
import {
  createMetrics,
  type PortcullisMetrics,
  type StoreEvents,
  type UnbanFeed,
} from '../../operate/metrics.js';
import { AdminServer, type AdminServerOptions } from './server.js';

export { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.js';
export { openApiDocument } from './openapi.js';
export { AdminServer, type AdminServerOptions, type AdminServerStats, startAdminServer } from './server.js';

export interface StartAdminOptions {
  control: Control;
  /**
   * The admin settings in force: the token, `auth_failures` and `trusted_proxies` are re-read on
   * every request (a reload rotates the token and ends streams opened with the old one); `listen`,
   * `metrics` and `dashboard` are fixed at start.
   */
  config: () => AdminConfig;
  /** The guard: its unbans, store state and configured jails feed the metrics. */
  guard?: UnbanFeed & StoreEvents & { readonly jails?: ReadonlyMap<string, unknown> };
  /** The running proxy, whose added latency the metrics measure. */
  proxy?: { latency: { record(ms: number): void } | undefined };
  ready?: () => boolean;
  logger?: Logger;
  clock?: Clock;
  /** Passed to the server (SSE heartbeat, buffers, body limit): tests make them small. */
  server?: Pick<
    AdminServerOptions,
    | 'heartbeatMs'
    | 'sseMaxBufferBytes'
    | 'sseSlowClientMs'
    | 'sseMaxClients'
    | 'sseStallMs'
    | 'sseMaxLifetimeMs'
    | 'maxBodyBytes'
  >;
}

/** The running admin listener and the metrics it serves. */
export interface RunningAdmin {
  readonly server: AdminServer;
  /** `undefined` with `metrics: false`. */
  readonly metrics: PortcullisMetrics | undefined;
  readonly url: string;
  /** Stops listening, ends the event streams and detaches the metrics. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the admin listener of `admin:`: the API, the event feed, `/metrics` (attaching the
 * latency histogram to the proxy) and the dashboard. Rejects when it cannot listen.
 */
export async function startAdmin(options: StartAdminOptions): Promise<RunningAdmin> {
  const config = options.config();
  const guard = options.guard;
  let server: AdminServer | undefined;
  const metrics = config.metrics
    ? createMetrics({
        control: options.control,
        ...(options.guard === undefined ? {} : { decisions: options.guard, store: options.guard }),
        ...(guard?.jails === undefined ? {} : { jailNames: () => guard.jails ?? new Map() }),
        admin: () =>
          server?.stats ?? {
            authFailures: 0,
            authBlockedNow: 0,
            unauthorized: 0,
            events: { clients: 0, dropped: 0, sent: 0 },
          },
        processMetrics: config.processMetrics,
      })
    : undefined;
  server = new AdminServer({
    control: options.control,
    config: options.config,
    ...(metrics === undefined ? {} : { metrics }),
    ...(options.ready === undefined ? {} : { ready: options.ready }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...options.server,
  });
  try {
    await server.start();
  } catch (error) {
    metrics?.close();
    throw error;
  }
  const proxy = options.proxy;
  if (metrics !== undefined && proxy !== undefined) proxy.latency = metrics.httpLatency;
  const running = server;
  let closing: Promise<void> | undefined;
  return {
    server: running,
    metrics,
    url: running.url,
    close() {
      closing ??= (async () => {
        if (proxy !== undefined && proxy.latency === metrics?.httpLatency) proxy.latency = undefined;
        await running.close();
        metrics?.close();
      })();
      return closing;
    },
  };
}

/** What `portcullis run` hands over (structural: the guard, its proxy, its logger). */
export interface ConfiguredAdminHost {
  control: Control;
  guard: UnbanFeed &
    StoreEvents & {
      readonly config: { readonly admin?: AdminConfig | undefined };
      readonly jails?: ReadonlyMap<string, unknown>;
    };
  proxy: { latency: { record(ms: number): void } | undefined } | undefined;
  logger: Logger;
}

/**
 * `portcullis run`: starts the admin listener when the configuration has `admin:` (else
 * resolves `null`) and logs where it listens (never the token). The token, `auth_failures` and
 * `trusted_proxies` are re-read from the guard on every request, so a reload rotates the token;
 * `listen`, `metrics` and `dashboard` take effect at a restart.
 */
export async function startConfiguredAdmin(host: ConfiguredAdminHost): Promise<RunningAdmin | null> {
  const first = host.guard.config.admin;
  if (first === undefined) return null;
  const admin = await startAdmin({
    control: host.control,
    // A reload that drops `admin:` keeps the running listener on its last settings until a restart.
    config: () => host.guard.config.admin ?? first,
    guard: host.guard,
    ...(host.proxy === undefined ? {} : { proxy: host.proxy }),
    logger: host.logger,
  });
  const served = ['API', ...(first.metrics ? ['metrics'] : []), ...(first.dashboard ? ['dashboard'] : [])];
  host.logger.info(
    { event: 'admin-listening', url: admin.url, token: first.tokenSource, serves: served },
    `admin listening on ${admin.url} (${served.join(', ')}; token from ${first.tokenSource})`,
  );
  return admin;
}
