import { readFileSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { MANUAL_JAIL } from '../config/defaults.js';
import type { PortcullisConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { ErrorCodes, PortcullisError } from '../core/errors.js';
import { checkCidr, cidrContains, parseCidr, parseIp } from '../core/ip.js';
import type { BanOptions, Decision, ReportOptions, ReportResult } from '../core/types.js';
import type { DecisionListener, SubscribeOptions } from '../decisions/decision-book.js';
import type { Jail } from '../detection/jails/jail.js';
import type {
  BannedAnswer,
  Control,
  ControlEvent,
  DecisionFilter,
  JailReport,
  JailStatus,
  ReloadAnswer,
  StatusReport,
} from './control.js';
import { JailCounters } from './jail-counters.js';

/**
 * What `createControl` needs of the guard: a structural slice of it (this layer does not import
 * the composition root).
 */
export interface ControlGuard {
  readonly config: PortcullisConfig;
  readonly jails: ReadonlyMap<string, Jail>;
  readonly clock: Clock;
  readonly instanceId: string;
  /** The store in use (an embedding may hand in another than the configured one). */
  readonly store: { readonly kind: string };
  readonly stats: { activeBans: number; pendingWrites: number; storeAvailable: boolean };
  /** Per jail, the clients with failures inside findtime now (fail2ban's "currently failed"). */
  failingClients(): ReadonlyMap<string, number>;
  isBanned(ip: string): boolean;
  decisions(): Promise<Decision[]>;
  ban(target: string, options?: BanOptions): Promise<Decision>;
  unban(target: string): Promise<boolean>;
  subscribe(listener: DecisionListener, options?: SubscribeOptions): () => void;
  onReport(listener: (ip: string, options: ReportOptions, result: ReportResult) => void): () => void;
}

/** The running instance as the control sees it (`portcullis run` builds one). */
export interface ControlHost {
  guard: ControlGuard;
  /** Per running source: its stats. */
  sourceStats(): Record<string, object>;
  /** Per action name: its counters. */
  actionStats(): Record<string, object>;
  /**
   * Re-reads the whole configuration file. Resolves `{ ok: false, error }` when the new file is
   * refused (the running configuration is kept).
   */
  reload(): Promise<{ ok: true } | { ok: false; error: string }>;
  /** Graceful stop (what SIGTERM does). */
  stop(): Promise<void>;
  /** Default: the package's version. */
  version?: string;
  /** Default: now. */
  startedAt?: number;
}

/** A {@link Control} bound to a running instance; `close()` detaches it from the guard. */
export interface OperatedControl extends Control {
  readonly counters: JailCounters;
  close(): void;
}

let packageVersion: string | undefined;

function readVersion(): string {
  packageVersion ??= (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return packageVersion;
}

/**
 * Builds the operator's view of a running instance: status with fail2ban's four numbers per
 * jail, decisions, bans and unbans, reload, stop, and a live event feed. Create it before the
 * sources start, so the counters see every failure.
 */
export function createControl(host: ControlHost): OperatedControl {
  const guard = host.guard;
  const version = host.version ?? readVersion();
  const startedAt = host.startedAt ?? guard.clock.now();
  const counters = new JailCounters();
  const listeners = new Set<(event: ControlEvent) => void>();

  const emit = (event: ControlEvent) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // One broken subscriber (a closed SSE stream) must not stop the others or the guard.
      }
    }
  };

  const offReport = guard.onReport((ip, options, result) => {
    counters.report(options.jail, result);
    if (listeners.size === 0) return;
    const now = options.timeMs ?? guard.clock.now();
    const outcome = result.outcome;
    if (outcome !== 'counted' && outcome !== 'banned' && outcome !== 'would-ban') return;
    emit({
      type: 'failure',
      time: now,
      jail: options.jail,
      ip,
      failures: result.failures ?? 0,
      maxretry: guard.jails.get(options.jail)?.config.maxRetry ?? 0,
    });
  });
  const offDecisions = guard.subscribe(
    {
      ban: (decision, source) => {
        counters.ban(decision, source);
        if (source !== 'restore' && listeners.size > 0)
          emit({ type: 'ban', time: guard.clock.now(), decision, origin: source });
      },
      unban: (event) => {
        counters.unban(event);
        if (listeners.size > 0)
          emit({
            type: 'unban',
            time: guard.clock.now(),
            target: event.target,
            jail: event.jail,
            reason: event.reason,
          });
      },
    },
    { replay: true },
  );

  const jailStatus = (jail: Jail, failing: ReadonlyMap<string, number>): JailStatus => {
    const c = jail.config;
    return {
      name: c.name,
      source: c.source.kind,
      dryRun: c.dryRun,
      ...counters.counts(c.name, failing.get(c.name) ?? 0),
      maxretry: c.maxRetry,
      findtimeMs: c.findTimeMs,
      bantimeMs: c.banTimeMs,
    };
  };

  const knownJail = (name: string): Jail => {
    const jail = guard.jails.get(name);
    if (jail === undefined)
      throw new PortcullisError(ErrorCodes.UNKNOWN_JAIL, `no jail named ${JSON.stringify(name)}`);
    return jail;
  };

  const covering = (decisions: Decision[], ip: string): Decision[] => {
    const parsed = parseIp(ip);
    if (parsed === null)
      throw new PortcullisError(ErrorCodes.INVALID_IP, `not an IP address: ${JSON.stringify(ip)}`);
    return decisions.filter((d) => {
      const cidr = parseCidr(d.target);
      return cidr !== null && cidr.family === parsed.family && cidrContains(cidr, parsed);
    });
  };

  const control: OperatedControl = {
    counters,
    ping: () => ({ pong: true, pid: process.pid, version, config: configPath(guard.config.file) }),

    status(): StatusReport {
      const now = guard.clock.now();
      const stats = guard.stats;
      const failing = guard.failingClients();
      return {
        version,
        pid: process.pid,
        instanceId: guard.instanceId,
        startedAt,
        uptimeMs: now - startedAt,
        store: {
          kind: guard.store.kind,
          available: stats.storeAvailable,
          pendingWrites: stats.pendingWrites,
        },
        jails: [...guard.jails.values()].map((jail) => jailStatus(jail, failing)),
        sources: host.sourceStats(),
        actions: host.actionStats(),
        activeBans: stats.activeBans,
      };
    },

    async jail(name): Promise<JailReport> {
      const jail = knownJail(name);
      const bans = (await guard.decisions()).filter((d) => d.jail === name);
      return { ...jailStatus(jail, guard.failingClients()), watching: watching(jail, guard.config), bans };
    },

    async decisions(filter: DecisionFilter = {}): Promise<Decision[]> {
      let list = await guard.decisions();
      if (filter.jail !== undefined) list = list.filter((d) => d.jail === filter.jail);
      if (filter.ip !== undefined) list = covering(list, filter.ip);
      list.sort((a, b) => b.startedAt - a.startedAt || a.target.localeCompare(b.target));
      return filter.limit === undefined ? list : list.slice(0, Math.max(0, filter.limit));
    },

    async banned(ip): Promise<BannedAnswer> {
      const decisions = covering(await guard.decisions(), ip);
      return { ip, banned: guard.isBanned(ip) || decisions.some((d) => !d.dryRun), decisions };
    },

    async ban(target, options) {
      if (options.jail !== undefined && options.jail !== MANUAL_JAIL) knownJail(options.jail);
      return guard.ban(target, {
        ...(options.jail === undefined ? {} : { jail: options.jail }),
        ...(options.bantimeMs === undefined ? {} : { duration: options.bantimeMs }),
        reason: options.reason ?? 'banned by the operator',
        ...(options.force === true ? { force: true } : {}),
      });
    },

    async unban(target, options = {}) {
      if (options.jail !== undefined) {
        const checked = checkCidr(target);
        if (!checked.ok)
          throw new PortcullisError(
            ErrorCodes.INVALID_IP,
            `not an IP address or CIDR range: ${JSON.stringify(target)}`,
          );
        // Only that jail's ban: the target's own decision, or (an address) the one covering it.
        const text = checked.cidr.text;
        const single = checked.cidr.prefix === (checked.cidr.family === 4 ? 32 : 128);
        const all = await guard.decisions();
        const mine = all.filter(
          (d) =>
            d.jail === options.jail && (d.target === text || (single && covering([d], target).length > 0)),
        );
        if (mine.length === 0) {
          // A jail reloaded away may still have bans to lift; only a name nothing knows is an error.
          if (options.jail !== MANUAL_JAIL) knownJail(options.jail);
          return 0;
        }
        let lifted = 0;
        for (const d of mine) if (await guard.unban(d.target)) lifted++;
        return lifted;
      }
      return (await guard.unban(target)) ? 1 : 0;
    },

    async unbanAll(options = {}) {
      if (options.jail !== undefined && options.jail !== MANUAL_JAIL) knownJail(options.jail);
      const targets = (await guard.decisions())
        .filter((d) => options.jail === undefined || d.jail === options.jail)
        .map((d) => d.target);
      let lifted = 0;
      // In slices: a long list must not open thousands of store writes at once.
      for (let i = 0; i < targets.length; i += 64) {
        const results = await Promise.all(targets.slice(i, i + 64).map((t) => guard.unban(t)));
        lifted += results.filter(Boolean).length;
      }
      return lifted;
    },

    async reload(jail): Promise<ReloadAnswer> {
      if (jail !== undefined) knownJail(jail);
      const outcome = await host.reload();
      if (!outcome.ok)
        throw new PortcullisError(
          ErrorCodes.CONFIG_INVALID,
          `configuration NOT reloaded (the running one is kept): ${outcome.error}`,
        );
      return { scope: 'all', requested: jail ?? null, jails: [...guard.jails.keys()] };
    },

    async stop() {
      // Begun on the next turn, so the caller's answer goes out before the surfaces close.
      setImmediate(() => void host.stop().catch(() => {}));
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    close() {
      offReport();
      offDecisions();
      listeners.clear();
    },
  };
  return control;
}

/** The configuration file's real absolute path, to tell which daemon runs which file. */
export function configPath(file: string | null): string | null {
  if (file === null) return null;
  try {
    return realpathSync(file);
  } catch {
    return resolve(file);
  }
}

/** What a jail watches: its files or command (log jails), the proxy's listeners (http jails). */
function watching(jail: Jail, config: PortcullisConfig): string[] {
  const source = jail.config.source;
  switch (source.kind) {
    case 'log':
      return [...source.paths];
    case 'command':
      return [source.argv.join(' ')];
    case 'http':
      return config.proxy === undefined
        ? ['report() / Express middleware (no proxy: section)']
        : config.proxy.listen.map((l) => `proxy ${l.address}`);
    case 'api':
      return ['report() calls'];
    case 'socket': {
      const listener = config.tcp?.find((l) => l.name === source.listener);
      return listener === undefined ? [] : [`tcp:${listener.name} ${listener.listen} -> ${listener.target}`];
    }
    case 'packets': {
      const watcher = config.packets?.find((w) => w.name === source.watcher);
      return watcher === undefined
        ? []
        : [`packets:${watcher.name} on ${watcher.interface} (${watcher.filter})`];
    }
    default:
      return [];
  }
}
