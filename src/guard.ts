import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { DEFAULTS, MANUAL_JAIL } from './config/defaults.js';
import { loadConfigFile, resolveConfig } from './config/load.js';
import type { PortcullisOptions } from './config/schema.js';
import type { JailConfig, PortcullisConfig } from './config/types.js';
import { type Clock, systemClock } from './core/clock.js';
import { formatDuration, PERMANENT, parseDuration } from './core/duration.js';
import { ErrorCodes, isPortcullisError, PortcullisError } from './core/errors.js';
import { type Cidr, parseCidr, parseIp } from './core/ip.js';
import { type Logger, silentLogger } from './core/logger.js';
import { type Decision, isActive } from './core/types.js';
import { type BanEntry, BanTable } from './decisions/ban-table.js';
import { computeBanTime } from './detection/jails/ban-time.js';
import { hostAddresses, Jail } from './detection/jails/jail.js';
import { createStore } from './stores/create-store.js';
import { FailureWindows } from './stores/memory/failure-windows.js';
import type { FailureResult, Store, StoreMessage } from './stores/store.js';
import type { ExpressGuardOptions, PortcullisMiddleware } from './surfaces/express/index.js';

/** What `report()` concluded. */
export type ReportOutcome =
  /** Counted; not (yet) enough failures for a ban. */
  | 'counted'
  /** This failure reached `maxretry`: the client is now banned. */
  | 'banned'
  /** A dry-run jail reached `maxretry`: a "would ban" decision was recorded. */
  | 'would-ban'
  /** The client is in `ignoreip` / `ignoreself`. */
  | 'ignored'
  /** The client is already banned (or would-banned in a dry-run jail); failures are not counted. */
  | 'already-banned'
  /** The address did not parse; counted in `stats.invalidIps`. */
  | 'invalid-ip'
  /** The store is unreachable and `on_store_error` is `stop`. */
  | 'not-counted';

export interface ReportResult {
  outcome: ReportOutcome;
  /** Failures inside `findtime` after this one, when counted. */
  failures?: number;
  decision?: Decision;
}

export interface ReportOptions {
  /** The jail to count in. Required. */
  jail: string;
  /** Failures this event counts for. Default 1. */
  weight?: number;
  /** Event time, ms since the epoch (a log line's own time). Default now. */
  timeMs?: number;
  /** Fields for the reason and the logs (`user`, `path`, ...). */
  fields?: Readonly<Record<string, string | number | undefined>>;
}

export interface BanOptions {
  /** Jail to record the ban under. Default `manual`. */
  jail?: string;
  /** `1h`, ms as a number, or `-1` for permanent. Default the jail's bantime (manual: 1h). */
  duration?: string | number;
  reason?: string;
}

/** Where a ban or unban came from. */
export type DecisionSource = 'local' | 'remote' | 'restore';

export interface UnbanEvent {
  target: string;
  jail: string;
  /** `expired`: bantime ran out; `unban`: `unban()` here; `remote`: another instance unbanned. */
  reason: 'expired' | 'unban' | 'remote';
}

export interface GuardEventMap {
  /** A ban starts to be enforced here (decided here, by another instance, or restored at start). */
  ban: [decision: Decision, source: DecisionSource];
  /** A ban stops being enforced here. */
  unban: [event: UnbanEvent];
  /** A dry-run jail would have banned. */
  wouldBan: [decision: Decision];
  /** The store became unreachable; the `on_store_error` policy now applies. */
  storeDown: [error: Error];
  /** The store is back; decisions made meanwhile have been written. */
  storeUp: [];
  /** Something failed in the background (a store write that will be retried, ...). */
  error: [error: Error];
}

export interface GuardOptions {
  /** Time source. Default the system clock. */
  clock?: Clock;
  /** Default: silent. `portcullis run` passes its pino logger. */
  logger?: Logger;
  /** Use this store instead of building the configured one (tests, embedding). */
  store?: Store;
  /** Environment for config overrides. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Name of this instance in decisions and pub/sub. Default `hostname:pid`. */
  instanceId?: string;
  /** For `rndtime`. Default `Math.random`. */
  random?: () => number;
}

export interface GuardStats {
  reports: number;
  bans: number;
  invalidIps: number;
  storeErrors: number;
  /** Decisions waiting to be written to a store that is unreachable. */
  pendingWrites: number;
  /** Bans enforced right now. */
  activeBans: number;
  storeAvailable: boolean;
}

type Pending = { kind: 'put'; decision: Decision } | { kind: 'delete' };
type TableChange = (table: BanTable, dryRun: BanTable) => void;

const MANUAL_BANTIME_MS = 3_600_000;
const PURGE_INTERVAL_MS = 10 * 60_000;
const RETRY_INTERVAL_MS = 1_000;
const MAX_TIMER_MS = 60_000;

/**
 * The engine: jails, the local ban table, the store, and the decision lifecycle. Sources and
 * surfaces feed it with `report()` and ask it `isBanned()`; everything else is background work.
 */
export class Guard extends EventEmitter<GuardEventMap> {
  #config: PortcullisConfig;
  #jails = new Map<string, Jail>();
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #instanceId: string;
  #table: BanTable;
  #dryRunTable: BanTable;
  readonly #localWindows = new FailureWindows();
  readonly #pending = new Map<string, Pending>();
  #storeAvailable = true;
  #closed = false;
  #closing: Promise<void> | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #expiryAt = Number.POSITIVE_INFINITY;
  #purgeTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #reloading: Promise<void> | undefined;
  /** The store announced a change while a reload was reading it: read again once it ends. */
  #reloadAgain = false;
  /** Table changes made while a reload reads the store; replayed onto the tables it builds. */
  readonly #reloadJournals = new Set<TableChange[]>();
  readonly #stats = { reports: 0, bans: 0, invalidIps: 0, storeErrors: 0 };

  /** Use {@link createGuard}; the constructor does no I/O and the guard is not ready until `start()`. */
  constructor(config: PortcullisConfig, store: Store, options: GuardOptions = {}) {
    super();
    this.#config = config;
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#random = options.random ?? Math.random;
    this.#instanceId = options.instanceId ?? `${hostname()}:${process.pid}`;
    this.#table = new BanTable(this.#clock);
    this.#dryRunTable = new BanTable(this.#clock);
    this.#buildJails(config);
  }

  /** Opens the store, restores every active ban, and starts the background timers. */
  async start(): Promise<void> {
    await this.#store.open();
    this.#store.on('message', this.#onStoreMessage);
    this.#store.on('up', this.#onStoreUp);
    this.#store.on('down', this.#onStoreDown);
    await this.#reloadDecisions('restore');
    this.#purgeTimer = setInterval(() => void this.#purge(), PURGE_INTERVAL_MS).unref();
  }

  get config(): PortcullisConfig {
    return this.#config;
  }

  get store(): Store {
    return this.#store;
  }

  /** The time source every decision uses (for `Retry-After` and event times). */
  get clock(): Clock {
    return this.#clock;
  }

  /**
   * Express (4 or 5) middleware over this guard: `app.use(guard.express())`. Same as
   * `portcullis(guard, options)` from `portcullis/express`, which is imported on first use so that
   * loading the engine never loads the HTTP surface. Requests arriving before that import finishes
   * wait for it.
   */
  express(options?: ExpressGuardOptions): PortcullisMiddleware {
    let ready: PortcullisMiddleware | undefined;
    const loading = import('./surfaces/express/index.js').then((m) => {
      ready = m.portcullis(this, options);
      return ready;
    });
    loading.catch(() => {});
    const middleware = ((req, res, next) => {
      if (ready !== undefined) return ready(req, res, next);
      loading.then((mw) => mw(req, res, next), next);
    }) as PortcullisMiddleware;
    middleware.fail = (req, jail, fields) => loading.then((mw) => mw.fail(req, jail, fields));
    return middleware;
  }

  /**
   * Reports a failure the application knows about (a wrong password) for the client of `req`
   * (resolved like the HTTP surfaces do: `http.trusted_proxies`, `http.forwarded_header`).
   * `jail` defaults to the only jail with `source: api` (or an http jail with neither filter nor
   * rate); with several candidates it must be named.
   */
  async fail(req: IncomingMessage, jail?: string, fields?: ReportOptions['fields']): Promise<ReportResult> {
    const { pipelineFor } = await import('./sources/http/pipeline.js');
    const pipeline = pipelineFor(this);
    return pipeline.fail(pipeline.clientIp(req), jail, fields);
  }

  /** The configured jails by name. */
  get jails(): ReadonlyMap<string, Jail> {
    return this.#jails;
  }

  get stats(): GuardStats {
    return {
      ...this.#stats,
      pendingWrites: this.#pending.size,
      activeBans: this.#table.size,
      storeAvailable: this.#storeAvailable,
    };
  }

  /**
   * Is this client banned right now? Synchronous, no I/O: the local ban table answers. Accepts any
   * textual form of an address (`::ffff:1.2.3.4`, `[2001:db8::1]`, `fe80::1%eth0`); garbage is
   * simply "not banned". With `on_store_error: deny`, while the store is down every client that
   * no jail ignores is refused.
   */
  isBanned(ip: string): boolean {
    if (this.#table.has(ip)) return true;
    return !this.#storeAvailable && this.#config.onStoreError === 'deny' && this.#deniedByOutage(ip);
  }

  /** The ban covering `ip`, for a `Retry-After` header or a log line. */
  lookup(ip: string): BanEntry | undefined {
    return this.#table.lookup(ip);
  }

  /**
   * Counts a failure of `ip` in a jail and bans when the jail's threshold is reached. Never throws
   * for a bad address (the outcome says `invalid-ip`); rejects only for an unknown jail or after
   * `close()`.
   */
  async report(ip: string, options: ReportOptions): Promise<ReportResult> {
    this.#assertOpen();
    const jail = this.#jails.get(options.jail);
    if (jail === undefined) {
      throw new PortcullisError(ErrorCodes.UNKNOWN_JAIL, `no jail named ${JSON.stringify(options.jail)}`);
    }
    this.#stats.reports++;
    const parsed = parseIp(ip);
    if (parsed === null) {
      this.#stats.invalidIps++;
      return { outcome: 'invalid-ip' };
    }
    if (jail.isIgnored(parsed)) return { outcome: 'ignored' };
    const config = jail.config;
    const table = config.dryRun ? this.#dryRunTable : this.#table;
    if (table.hasParsed(parsed)) return { outcome: 'already-banned' };

    const key = jail.keyOf(parsed);
    const timeMs = options.timeMs ?? this.#clock.now();
    const input = {
      jail: config.name,
      key,
      timeMs,
      weight: options.weight ?? 1,
      findTimeMs: config.findTimeMs,
      maxRetry: config.maxRetry,
    };
    let counted: FailureResult;
    if (this.#storeAvailable) {
      try {
        counted = await this.#store.addFailure(input);
      } catch (error) {
        this.#storeFailed(error);
        if (this.#config.onStoreError === 'stop') return { outcome: 'not-counted' };
        counted = this.#localWindows.add(input);
      }
    } else {
      if (this.#config.onStoreError === 'stop') return { outcome: 'not-counted' };
      counted = this.#localWindows.add(input);
    }
    if (!counted.reached) return { outcome: 'counted', failures: counted.count };

    const decision = await this.#decide(jail.config, key, counted.count, options.fields);
    return { outcome: config.dryRun ? 'would-ban' : 'banned', failures: counted.count, decision };
  }

  /**
   * Bans an address or a CIDR range by hand (or for a jail). Resolves to the decision as stored.
   * A ban never shortens an existing longer one.
   */
  async ban(ipOrCidr: string, options: BanOptions = {}): Promise<Decision> {
    this.#assertOpen();
    const cidr = parseTarget(ipOrCidr);
    const jailName = options.jail ?? MANUAL_JAIL;
    const jail = jailName === MANUAL_JAIL ? undefined : this.#jails.get(jailName);
    if (jailName !== MANUAL_JAIL && jail === undefined) {
      throw new PortcullisError(ErrorCodes.UNKNOWN_JAIL, `no jail named ${JSON.stringify(jailName)}`);
    }
    const durationMs =
      options.duration === undefined
        ? (jail?.config.banTimeMs ?? MANUAL_BANTIME_MS)
        : typeof options.duration === 'number'
          ? options.duration
          : parseDuration(options.duration);
    if (durationMs !== PERMANENT && !(Number.isFinite(durationMs) && durationMs > 0)) {
      throw new PortcullisError(
        ErrorCodes.INVALID_DURATION,
        `expected a duration (ms > 0, or -1 for permanent), got ${JSON.stringify(options.duration)}`,
      );
    }
    const now = this.#clock.now();
    const decision: Decision = {
      target: cidr.text,
      jail: jailName,
      reason: options.reason ?? 'banned by hand',
      startedAt: now,
      expiresAt: durationMs === PERMANENT ? null : now + durationMs,
      banCount: 1,
      dryRun: false,
      origin: this.#instanceId,
    };
    return this.#enforce(decision);
  }

  /** Lifts the ban of exactly this address or range. Resolves to whether one was lifted. */
  async unban(ipOrCidr: string): Promise<boolean> {
    this.#assertOpen();
    const cidr = parseTarget(ipOrCidr);
    const target = cidr.text;
    const entry = this.#table.get(target);
    const local = this.#table.remove(target);
    this.#dryRunTable.remove(target);
    this.#record((table, dryRun) => {
      table.remove(target);
      dryRun.remove(target);
    });
    let stored: Decision | undefined;
    try {
      if (this.#storeAvailable) {
        stored = await this.#store.deleteDecision(target);
        // A put still queued from an outage would bring the ban back.
        this.#pending.delete(target);
      } else this.#queue(target, { kind: 'delete' });
    } catch (error) {
      this.#storeFailed(error);
      this.#queue(target, { kind: 'delete' });
    }
    if (local)
      this.emit('unban', { target, jail: entry?.jail ?? stored?.jail ?? MANUAL_JAIL, reason: 'unban' });
    return local || stored !== undefined;
  }

  /** Every decision active now, from the store (or, while it is unreachable, from this instance). */
  async decisions(): Promise<Decision[]> {
    this.#assertOpen();
    const now = this.#clock.now();
    const out: Decision[] = [];
    try {
      await this.#store.loadDecisions(now, (batch) => out.push(...batch));
      return out;
    } catch (error) {
      this.#storeFailed(error);
      for (const entry of this.#table.entries()) {
        out.push({
          target: entry.target,
          jail: entry.jail,
          reason: '(store unavailable: details unknown)',
          startedAt: 0,
          expiresAt: Number.isFinite(entry.expiresAt) ? entry.expiresAt : null,
          banCount: 1,
          dryRun: false,
          origin: this.#instanceId,
        });
      }
      return out;
    }
  }

  /**
   * Applies a new configuration (SIGHUP): jails are rebuilt; counters and bans are kept. The store
   * cannot be changed by a reload; that needs a restart.
   */
  reload(config: PortcullisConfig): void {
    this.#assertOpen();
    if (JSON.stringify(config.store) !== JSON.stringify(this.#config.store)) {
      this.#logger.warn({ event: 'reload' }, 'store settings changed; they take effect only after a restart');
      config = { ...config, store: this.#config.store };
    }
    this.#buildJails(config);
    this.#config = config;
  }

  /** Stops timers and closes the store. Idempotent; resolves when every handle is released. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      clearTimeout(this.#expiryTimer);
      clearInterval(this.#purgeTimer);
      clearInterval(this.#retryTimer);
      this.#store.off('message', this.#onStoreMessage);
      this.#store.off('up', this.#onStoreUp);
      this.#store.off('down', this.#onStoreDown);
      this.#closing = (async () => {
        await this.#reloading?.catch(() => {});
        if (this.#pending.size > 0) {
          this.#logger.warn(
            { pending: this.#pending.size },
            'closing with decisions not yet written to the store',
          );
        }
        await this.#store.close();
      })();
    }
    return this.#closing;
  }

  async #decide(
    config: JailConfig,
    key: string,
    failures: number,
    fields: ReportOptions['fields'],
  ): Promise<Decision> {
    const now = this.#clock.now();
    let previousBans = 0;
    if (config.banTimeIncrement !== null && this.#storeAvailable) {
      try {
        previousBans = await this.#store.countBans(
          key,
          config.banTimeIncrement.overallJails ? null : config.name,
          now - this.#config.dbPurgeAgeMs,
        );
      } catch (error) {
        this.#storeFailed(error);
      }
    }
    const banTimeMs = computeBanTime(config.banTimeMs, config.banTimeIncrement, previousBans, this.#random);
    const detail = fields?.user === undefined ? '' : ` (user ${String(fields.user)})`;
    const decision: Decision = {
      target: key,
      jail: config.name,
      reason: `${failures} failures within ${formatDuration(config.findTimeMs)}${detail}`,
      startedAt: now,
      expiresAt: banTimeMs === PERMANENT ? null : now + banTimeMs,
      banCount: previousBans + 1,
      dryRun: config.dryRun,
      origin: this.#instanceId,
    };
    return this.#enforce(decision);
  }

  /** Enforces locally first (the next request must be refused), then writes and announces. */
  async #enforce(decision: Decision): Promise<Decision> {
    this.#applyLocal(decision, 'local');
    let stored = decision;
    if (this.#storeAvailable) {
      try {
        stored = await this.#store.putDecision(decision);
        // A delete still queued from an outage would lift this new ban.
        if (this.#pending.get(decision.target)?.kind === 'delete') this.#pending.delete(decision.target);
        if (stored.expiresAt !== decision.expiresAt && !decision.dryRun) {
          this.#table.add(stored.target, stored.jail, stored.expiresAt);
          this.#record((table) => table.add(stored.target, stored.jail, stored.expiresAt));
          this.#scheduleExpiry();
        }
      } catch (error) {
        this.#storeFailed(error);
        this.#queue(decision.target, { kind: 'put', decision });
      }
    } else {
      this.#queue(decision.target, { kind: 'put', decision });
    }
    this.#logger.info(
      {
        event: decision.dryRun ? 'would-ban' : 'ban',
        target: decision.target,
        jail: decision.jail,
        bantime: decision.expiresAt === null ? '-1' : formatDuration(decision.expiresAt - decision.startedAt),
        banCount: decision.banCount,
        reason: decision.reason,
      },
      decision.dryRun ? `would ban ${decision.target} (dry run)` : `ban ${decision.target}`,
    );
    return stored;
  }

  #applyLocal(decision: Decision, source: DecisionSource): void {
    const { target, jail, dryRun } = decision;
    // Never shorten a longer ban this instance enforces (the store merges the same way, but
    // during an outage the table is all there is).
    const expiresAt = laterExpiry(
      (dryRun ? this.#dryRunTable : this.#table).get(target),
      decision.expiresAt,
      this.#clock.now(),
    );
    this.#record((table, dryRunTable) => (dryRun ? dryRunTable : table).add(target, jail, expiresAt));
    if (dryRun) {
      this.#dryRunTable.add(target, jail, expiresAt);
      this.#scheduleExpiry();
      if (source !== 'restore') this.emit('wouldBan', decision);
      return;
    }
    this.#table.add(target, jail, expiresAt);
    if (source === 'local') this.#stats.bans++;
    this.#scheduleExpiry();
    if (this.listenerCount('ban') > 0) this.emit('ban', decision, source);
  }

  readonly #onStoreMessage = (message: StoreMessage): void => {
    if (this.#closed) return;
    if (message.type === 'ban') {
      if (isActive(message.decision.expiresAt, this.#clock.now()))
        this.#applyLocal(message.decision, 'remote');
      return;
    }
    const entry = this.#table.get(message.target);
    this.#dryRunTable.remove(message.target);
    this.#record((table, dryRun) => {
      table.remove(message.target);
      dryRun.remove(message.target);
    });
    if (this.#table.remove(message.target) && entry !== undefined) {
      this.emit('unban', { target: message.target, jail: entry.jail, reason: 'remote' });
    }
  };

  readonly #onStoreDown = (error: Error): void => {
    this.#storeFailed(error);
  };

  readonly #onStoreUp = (): void => {
    if (this.#closed) return;
    if (this.#reloading !== undefined) this.#reloadAgain = true;
    void this.#recover();
  };

  #storeFailed(error: unknown): void {
    this.#stats.storeErrors++;
    if (isPortcullisError(error, ErrorCodes.STORE_CORRUPT)) {
      // The file was replaced by an empty one: what this instance enforces must be written back.
      this.#requeueEnforced();
    } else if (
      !isPortcullisError(error, ErrorCodes.STORE_UNAVAILABLE) &&
      !isPortcullisError(error, ErrorCodes.CLOSED)
    ) {
      // A bug or an unexpected backend answer: surface it, but keep enforcing.
      this.#logger.error({ err: error }, 'unexpected store error');
    }
    if (!this.#storeAvailable || this.#closed) return;
    this.#storeAvailable = false;
    const err = error instanceof Error ? error : new Error(String(error));
    this.#logger.error(
      { err, policy: this.#config.onStoreError },
      `store unavailable; on_store_error=${this.#config.onStoreError}: ${policyText(this.#config.onStoreError)}`,
    );
    this.emit('storeDown', err);
    this.#retryTimer = setInterval(() => void this.#recover(), RETRY_INTERVAL_MS).unref();
  }

  /** Writes what was decided during an outage, then reloads every decision from the store. */
  async #recover(): Promise<void> {
    if (this.#closed || this.#reloading !== undefined) return;
    this.#reloading = (async () => {
      try {
        await this.#flushPending();
        await this.#reloadDecisions('restore');
        // Decisions queued while reloading; no await between the last check and "available".
        await this.#flushPending();
        const wasDown = !this.#storeAvailable;
        this.#storeAvailable = true;
        clearInterval(this.#retryTimer);
        this.#retryTimer = undefined;
        this.#localWindows.clearAll();
        if (wasDown) {
          this.#logger.info({ event: 'store-up' }, 'store available again; decisions written and reloaded');
          this.emit('storeUp');
        }
      } catch (error) {
        if (!this.#storeAvailable) return; // still down; the retry timer tries again
        this.#storeFailed(error);
      }
    })();
    try {
      await this.#reloading;
    } finally {
      this.#reloading = undefined;
    }
    if (this.#reloadAgain && !this.#closed) {
      this.#reloadAgain = false;
      await this.#recover();
    }
  }

  /** Writes every queued decision, including those queued while writing. */
  async #flushPending(): Promise<void> {
    while (this.#pending.size > 0) {
      for (const [target, pending] of [...this.#pending]) {
        if (pending.kind === 'put') await this.#store.putDecision(pending.decision);
        else await this.#store.deleteDecision(target);
        if (this.#pending.get(target) === pending) this.#pending.delete(target);
      }
    }
  }

  /** Rebuilds the ban tables from the store, swapping them in whole so enforcement never gaps. */
  async #reloadDecisions(source: DecisionSource): Promise<void> {
    const now = this.#clock.now();
    const table = new BanTable(this.#clock);
    const dryRun = new BanTable(this.#clock);
    const restored: Decision[] = [];
    const announce = this.listenerCount('ban') > 0;
    // Bans and unbans applied while the store is read may be missing from what it returns.
    const journal: TableChange[] = [];
    this.#reloadJournals.add(journal);
    try {
      await this.#store.loadDecisions(now, (batch) => {
        for (const decision of batch) {
          if (decision.dryRun) dryRun.add(decision.target, decision.jail, decision.expiresAt);
          else {
            table.add(decision.target, decision.jail, decision.expiresAt);
            if (announce && !this.#table.get(decision.target)) restored.push(decision);
          }
        }
      });
    } finally {
      this.#reloadJournals.delete(journal);
    }
    // Decisions still waiting for the store stay enforced.
    for (const pending of this.#pending.values()) {
      if (pending.kind === 'put' && !pending.decision.dryRun) {
        table.add(pending.decision.target, pending.decision.jail, pending.decision.expiresAt);
      }
    }
    for (const [target, pending] of this.#pending) if (pending.kind === 'delete') table.remove(target);
    for (const change of journal) change(table, dryRun);
    const previous = this.#table;
    this.#table = table;
    this.#dryRunTable = dryRun;
    this.#scheduleExpiry(true);
    for (const decision of restored) this.emit('ban', decision, source);
    for (const entry of previous.entries()) {
      if (table.get(entry.target) === undefined && entry.expiresAt > now) {
        this.emit('unban', { target: entry.target, jail: entry.jail, reason: 'remote' });
      }
    }
    this.#logger.info(
      { event: 'restore', bans: table.size, dryRun: dryRun.size },
      `${table.size} bans loaded`,
    );
  }

  #requeueEnforced(): void {
    for (const entry of this.#table.entries()) {
      if (this.#pending.has(entry.target)) continue;
      this.#queue(entry.target, {
        kind: 'put',
        decision: {
          target: entry.target,
          jail: entry.jail,
          reason: 'restored after the store was lost',
          startedAt: this.#clock.now(),
          expiresAt: Number.isFinite(entry.expiresAt) ? entry.expiresAt : null,
          banCount: 1,
          dryRun: false,
          origin: this.#instanceId,
        },
      });
    }
  }

  #record(change: TableChange): void {
    for (const journal of this.#reloadJournals) journal.push(change);
  }

  #queue(target: string, pending: Pending): void {
    this.#pending.set(target, pending);
  }

  #scheduleExpiry(force = false): void {
    if (this.#closed) return;
    // Dry-run decisions expire too: a dry-run-only guard would otherwise keep every one.
    const next = Math.min(this.#table.nextExpiry(), this.#dryRunTable.nextExpiry());
    if (!force && next >= this.#expiryAt) return;
    clearTimeout(this.#expiryTimer);
    this.#expiryAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(Math.max(next - this.#clock.now(), 0), MAX_TIMER_MS);
    this.#expiryTimer = setTimeout(() => this.#expire(), delay).unref();
  }

  /** Ends bans whose time is up. Exposed to tests through {@link tick}. */
  #expire(): void {
    this.#expiryAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    for (;;) {
      const expired = this.#table.takeExpired(now);
      for (const entry of expired) {
        this.#logger.info(
          { event: 'unban', target: entry.target, jail: entry.jail },
          `unban ${entry.target} (expired)`,
        );
        this.emit('unban', { target: entry.target, jail: entry.jail, reason: 'expired' });
      }
      if (expired.length < 10_000) break;
    }
    this.#dryRunTable.takeExpired(now, Number.MAX_SAFE_INTEGER);
    this.#scheduleExpiry(true);
  }

  /** Runs the expiry check now (for tests that drive a manual clock). */
  tick(): void {
    this.#expire();
  }

  async #purge(): Promise<void> {
    const now = this.#clock.now();
    this.#localWindows.prune(now);
    if (!this.#storeAvailable) return;
    try {
      await this.#store.purge(now, now - this.#config.dbPurgeAgeMs);
    } catch (error) {
      this.#storeFailed(error);
    }
  }

  #deniedByOutage(ip: string): boolean {
    const parsed = parseIp(ip);
    if (parsed === null) return true;
    for (const jail of this.#jails.values()) if (jail.isIgnored(parsed)) return false;
    return true;
  }

  #buildJails(config: PortcullisConfig): void {
    const self = config.jails.some((jail) => jail.ignoreSelf) ? hostAddresses() : [];
    const jails = new Map<string, Jail>();
    for (const jailConfig of config.jails) {
      if (jailConfig.enabled) jails.set(jailConfig.name, new Jail(jailConfig, self));
    }
    this.#jails = jails;
  }

  #assertOpen(): void {
    if (this.#closed) throw new PortcullisError(ErrorCodes.CLOSED, 'the guard is closed');
  }
}

function parseTarget(ipOrCidr: string): Cidr {
  const cidr = parseCidr(ipOrCidr);
  if (cidr === null) {
    throw new PortcullisError(
      ErrorCodes.INVALID_IP,
      `not an IP address or CIDR range: ${JSON.stringify(ipOrCidr)}`,
    );
  }
  return cidr;
}

/** The later of an entry's expiry (while it is still running) and `expiresAt` (`null`: permanent). */
function laterExpiry(current: BanEntry | undefined, expiresAt: number | null, nowMs: number): number | null {
  if (current === undefined || current.expiresAt <= nowMs) return expiresAt;
  if (expiresAt === null || current.expiresAt === Number.POSITIVE_INFINITY) return null;
  return Math.max(current.expiresAt, expiresAt);
}

function policyText(policy: PortcullisConfig['onStoreError']): string {
  if (policy === 'local') return 'enforcing known bans, counting locally, writing back when it returns';
  if (policy === 'stop') return 'enforcing known bans, not counting';
  return 'refusing every client not in ignoreip';
}

/** Anything `createGuard` accepts: a YAML file path, a config object, or a resolved config. */
export type GuardConfigInput = string | PortcullisOptions | PortcullisConfig;

/**
 * Builds and starts a guard: validates the config, opens the store, restores bans.
 *
 * ```ts
 * const guard = await createGuard('/etc/portcullis.yaml');
 * if (guard.isBanned(ip)) return deny();
 * await guard.report(ip, { jail: 'web-auth' });
 * ```
 */
export async function createGuard(input: GuardConfigInput, options: GuardOptions = {}): Promise<Guard> {
  const config = toConfig(input, options);
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const logger = options.logger ?? silentLogger;
  const store =
    options.store ??
    (await createStore(config.store, { logger, instanceId, dbPurgeAgeMs: config.dbPurgeAgeMs }));
  const guard = new Guard(config, store, { ...options, instanceId });
  try {
    await guard.start();
  } catch (error) {
    await guard.close().catch(() => {});
    throw error;
  }
  return guard;
}

function toConfig(input: GuardConfigInput, options: GuardOptions): PortcullisConfig {
  if (typeof input === 'string')
    return loadConfigFile(input, options.env === undefined ? {} : { env: options.env });
  if (isResolved(input)) return input;
  return resolveConfig(input, options.env === undefined ? {} : { env: options.env });
}

function isResolved(input: PortcullisOptions | PortcullisConfig): input is PortcullisConfig {
  return (
    Array.isArray((input as PortcullisConfig).jails) &&
    typeof (input as PortcullisConfig).store?.kind === 'string'
  );
}

export { DEFAULTS };
