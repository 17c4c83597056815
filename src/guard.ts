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
import { ErrorCodes, PortcullisError } from './core/errors.js';
import { FailureWindows } from './core/failure-windows.js';
import { type Cidr, checkCidr, clientKey, type ParsedIp, parseIp } from './core/ip.js';
import { type Logger, silentLogger } from './core/logger.js';
import { keepsMatches, MatchMemory } from './core/match-memory.js';
import type {
  BanEntry,
  BanOptions,
  Decision,
  DecisionSource,
  FailureInput,
  ReportOptions,
  ReportResult,
  UnbanEvent,
} from './core/types.js';
import { decideBan, manualDecision } from './decisions/decide.js';
import { DecisionBook, type DecisionListener, type SubscribeOptions } from './decisions/decision-book.js';
import { StoreSync } from './decisions/store-sync.js';
import { countHere, countShared, failureInput } from './detection/jails/count.js';
import type { Jail } from './detection/jails/jail.js';
import { JailSet } from './detection/jails/jail-set.js';
import type { PositionStore, SourceContext } from './sources/source.js';
import { createStore } from './stores/create-store.js';
import type { Store } from './stores/store.js';
import type { ExpressGuardOptions, PortcullisMiddleware } from './surfaces/express/index.js';

export type {
  BanOptions,
  DecisionSource,
  ReportOptions,
  ReportOutcome,
  ReportResult,
  UnbanEvent,
} from './core/types.js';

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

/**
 * Told of the result of every `report()` (jail counters, the daemon's "found" log lines). It runs
 * on the hot path, once per report: keep it cheap (a counter increment). `ip` is as reported.
 */
export type ReportListener = (ip: string, options: ReportOptions, result: ReportResult) => void;

export interface GuardOptions {
  /** Time source. Default the system clock. */
  clock?: Clock;
  /** Default: silent. `portcullis run` passes its pino logger. */
  logger?: Logger;
  /** Use this store instead of building the configured one (tests, embedding). */
  store?: Store;
  /** Environment for config overrides. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Name of this instance in decisions and pub/sub. Default `hostname:pid:random`. */
  instanceId?: string;
  /** For `rndtime`. Default `Math.random`. */
  random?: () => number;
  /**
   * Where decisions wait while the store is unreachable. Default: `store.outbox` of the config
   * (for Redis, a SQLite file next to the config file); `null` keeps them in memory.
   */
  outboxPath?: string | null;
  /** How often a store that is down is tried again, ms. Default 1000. */
  storeRetryIntervalMs?: number;
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

const MANUAL_BANTIME_MS = 3_600_000;
const PURGE_INTERVAL_MS = 10 * 60_000;

/**
 * The composition root: it wires the jails (detection), the decision book and the store sync
 * (decisions) and offers them to sources and surfaces through small ports ({@link SourceContext}).
 * Sources call `report()` and ask `isBanned()`; everything else is background work of the parts.
 */
export class Guard extends EventEmitter<GuardEventMap> implements SourceContext {
  #config: PortcullisConfig;
  #jails: JailSet;
  readonly #store: Store;
  readonly #book: DecisionBook;
  readonly #sync: StoreSync;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #instanceId: string;
  #closed = false;
  #closing: Promise<void> | undefined;
  #purgeTimer: NodeJS.Timeout | undefined;
  #forwarding = false;
  /** Reports, bans and unbans not yet settled (for `idle()`). */
  #inFlight = 0;
  /** This instance's own failure windows: a threshold reached here bans without waiting for the store. */
  readonly #recent = new FailureWindows();
  /** The last matched lines per jail and key, for the announcement of a ban decided here. */
  readonly #matches = new MatchMemory();
  /** Jail + key of decisions being made from the shared count (concurrent thresholds collapse). */
  readonly #deciding = new Set<string>();
  #idleWaiters: (() => void)[] = [];
  readonly #stats = { reports: 0, bans: 0, invalidIps: 0 };
  readonly #reportListeners = new Set<ReportListener>();

  /** Use {@link createGuard}; the constructor does no I/O and the guard is not ready until `start()`. */
  constructor(config: PortcullisConfig, store: Store, options: GuardOptions = {}) {
    super();
    this.#config = config;
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#random = options.random ?? Math.random;
    this.#instanceId = options.instanceId ?? `${hostname()}:${process.pid}`;
    this.#jails = new JailSet(config);
    this.#book = new DecisionBook({
      clock: this.#clock,
      logger: this.#logger,
      origin: this.#instanceId,
      onError: (error) => this.reportError(error),
    });
    this.#sync = new StoreSync({
      store,
      book: this.#book,
      clock: this.#clock,
      logger: this.#logger,
      origin: this.#instanceId,
      policy: () => this.#config.onStoreError,
      outboxPath: options.outboxPath === undefined ? outboxPathOf(config) : options.outboxPath,
      ...(options.storeRetryIntervalMs === undefined
        ? {}
        : { retryIntervalMs: options.storeRetryIntervalMs }),
    });
    this.#sync.on('down', (error) => this.emit('storeDown', error));
    this.#sync.on('up', () => this.emit('storeUp'));
    this.#sync.on('error', (error) => this.reportError(error));
    // The book is told of every change; the guard re-emits them once someone listens.
    (this as EventEmitter).on('newListener', (event: string) => {
      if (event === 'ban' || event === 'unban' || event === 'wouldBan') this.#forward();
    });
  }

  /** Opens the store, replays a left-over outbox, restores every active ban, starts the timers. */
  async start(): Promise<void> {
    await this.#sync.start();
    this.#purgeTimer = setInterval(() => void this.#purge(), PURGE_INTERVAL_MS).unref();
  }

  get config(): PortcullisConfig {
    return this.#config;
  }

  get store(): Store {
    return this.#store;
  }

  /** Saved log positions (log sources): kept in the store. */
  get positions(): PositionStore {
    return this.#store;
  }

  get logger(): Logger {
    return this.#logger;
  }

  /** The time source every decision uses (for `Retry-After` and event times). */
  get clock(): Clock {
    return this.#clock;
  }

  /** The configured, enabled jails by name (a new map after each reload). */
  get jails(): ReadonlyMap<string, Jail> {
    return this.#jails.byName;
  }

  /**
   * Per jail, the clients with failures inside its findtime on this instance now, not banned
   * since (fail2ban's "currently failed"). Walks the failure windows: for status, not the hot path.
   */
  failingClients(): Map<string, number> {
    return this.#recent.liveByJail(this.#clock.now());
  }

  /** This instance's name in decisions and pub/sub (`hostname:pid:xxxx`). */
  get instanceId(): string {
    return this.#instanceId;
  }

  get stats(): GuardStats {
    return {
      ...this.#stats,
      storeErrors: this.#sync.errors,
      pendingWrites: this.#sync.pending,
      activeBans: this.#book.size,
      storeAvailable: this.#sync.available,
    };
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

  /**
   * Is this client banned right now? Synchronous, no I/O: the local ban table answers. Accepts any
   * textual form of an address (`::ffff:1.2.3.4`, `[2001:db8::1]`, `fe80::1%eth0`); garbage is
   * simply "not banned". With `on_store_error: deny`, while the store is down every client that
   * no jail ignores is refused.
   */
  isBanned(ip: string): boolean {
    if (this.#book.isBanned(ip)) return true;
    return !this.#sync.available && this.#config.onStoreError === 'deny' && this.#deniedByOutage(ip);
  }

  /** The ban covering `ip`, for a `Retry-After` header or a log line. */
  lookup(ip: string): BanEntry | undefined {
    return this.#book.lookup(ip);
  }

  /**
   * Adds a listener of every change of what this instance enforces; with `{ replay: true }` it
   * first hears every ban in force (as `restore`), so an action added at any time re-applies
   * them. Returns the function that removes it.
   */
  subscribe(listener: DecisionListener, options?: SubscribeOptions): () => void {
    return this.#book.subscribe(listener, options);
  }

  /**
   * Counts a failure of `ip` in a jail and bans when the jail's threshold is reached. Never throws
   * for a bad address (the outcome says `invalid-ip`); rejects only for an unknown jail or after
   * `close()`.
   */
  report(ip: string, options: ReportOptions): Promise<ReportResult> {
    let result: ReportResult | Promise<ReportResult>;
    try {
      result = this.#reportNow(ip, options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#reportListeners.size > 0) this.#tellReport(ip, options, result);
    return result instanceof Promise ? this.#track(result) : Promise.resolve(result);
  }

  /**
   * `report()` without a promise when the answer is known at once: the outcome itself for a
   * failure counted (or ignored, already banned, invalid) by this instance alone; a promise only
   * when there is more to wait for (a ban's length and store write, the shared count of Redis).
   * Same counting, same listeners, same order. Throws, instead of rejecting, for an unknown jail
   * or after `close()`. For sources that report at a high rate (a log jail draining a backlog).
   */
  reportEager(ip: string, options: ReportOptions): ReportResult | Promise<ReportResult> {
    const result = this.#reportNow(ip, options);
    if (this.#reportListeners.size > 0) this.#tellReport(ip, options, result);
    return result instanceof Promise ? this.#track(result) : result;
  }

  /** Adds a {@link ReportListener}; returns the function that removes it. */
  onReport(listener: ReportListener): () => void {
    this.#reportListeners.add(listener);
    return () => this.#reportListeners.delete(listener);
  }

  #tellReport(ip: string, options: ReportOptions, result: ReportResult | Promise<ReportResult>): void {
    // No closure on the synchronous path: it runs once per counted failure.
    if (result instanceof Promise) result.then((settled) => this.#tellSettled(ip, options, settled), noop);
    else this.#tellSettled(ip, options, result);
  }

  #tellSettled(ip: string, options: ReportOptions, result: ReportResult): void {
    for (const listener of this.#reportListeners) {
      try {
        listener(ip, options, result);
      } catch (error) {
        this.reportError(error as Error);
      }
    }
  }

  /**
   * Resolves once every `report()`, `ban()` and `unban()` started so far (and any started while
   * waiting) has settled, with its decision enforced and written (or queued): the settle point
   * for tests and for a graceful stop.
   */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * The synchronous half of a report: everything up to this instance's own count, and a ban in
   * the table when that count reaches `maxretry`. A promise of the rest, or the answer itself.
   */
  #reportNow(ip: string, options: ReportOptions): ReportResult | Promise<ReportResult> {
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
    if (!this.#sync.available && this.#config.onStoreError === 'stop') {
      return jail.isIgnored(parsed) ? { outcome: 'ignored' } : { outcome: 'not-counted' };
    }
    const here = countHere(
      jail,
      parsed,
      options.timeMs ?? this.#clock.now(),
      options.weight ?? 1,
      this.#recent,
      this.#bannedHere,
    );
    if (options.match !== undefined && here.kind !== 'ignored' && here.kind !== 'already-banned')
      this.#keepMatch(jail, here.key, here.timeMs, options.match);
    switch (here.kind) {
      case 'ignored':
      case 'already-banned':
        return { outcome: here.kind };
      case 'reached': {
        // Enforced now, before the caller admits anything else; announced once its length is known.
        const config = jail.config;
        // One draw of `rndtime` for the provisional and the final decision: the final one never
        // ends earlier than what the table enforced meanwhile for a reason of chance.
        const chance = this.#random();
        const provisional = this.#decide(config, here.key, here.failures, 0, options.fields, chance);
        const matches = this.#matches.take(config.name, here.key);
        this.#book.apply(withMatches(provisional, matches), 'local', config.banTimeIncrement === null);
        if (!config.dryRun) this.#stats.bans++;
        return this.#finishLocalBan(
          jail,
          here.key,
          here.failures,
          provisional,
          options.fields,
          chance,
          matches,
        );
      }
      case 'counted':
        // A store no other instance writes (SQLite, memory) counts exactly what this instance
        // just counted: nothing to ask it. A shared one (Redis) adds the other instances' failures.
        if (!this.#store.shared) return { outcome: 'counted', failures: here.failures };
        return this.#countShared(jail, parsed, here.key, failureInput(jail, here), options.fields);
    }
  }

  /** A ban reached on this instance's own count: its final length, the store, the log. */
  async #finishLocalBan(
    jail: Jail,
    key: string,
    failures: number,
    provisional: Decision,
    fields: ReportOptions['fields'],
    chance: number,
    matches: readonly string[] | undefined,
  ): Promise<ReportResult> {
    const config = jail.config;
    let decision = provisional;
    if (config.banTimeIncrement !== null) {
      const previousBans = await this.#previousBans(config, key);
      // Lifted while the earlier bans were counted (an unban by hand, a reload that dropped the
      // jail): it stays lifted, and was never announced nor written.
      if (!config.dryRun && this.#book.get(key)?.jail !== config.name) {
        return { outcome: 'counted', failures };
      }
      decision = this.#decide(config, key, failures, previousBans, fields, chance);
      this.#book.apply(withMatches(decision, matches), 'local');
    }
    // The shared window holds this instance's failures too: it must not ban again on the next one.
    if (this.#store.shared) void this.#sync.clearFailures(config.name, key);
    const stored = await this.#write(decision);
    return { outcome: config.dryRun ? 'would-ban' : 'banned', failures, decision: stored };
  }

  /** A failure counted here that did not reach the threshold: the count all instances share decides. */
  async #countShared(
    jail: Jail,
    parsed: ParsedIp,
    key: string,
    input: FailureInput,
    fields: ReportOptions['fields'],
  ): Promise<ReportResult> {
    const shared = await countShared(input, this.#sync);
    if (shared.kind === 'not-counted') return { outcome: 'not-counted' };
    if (shared.kind === 'counted') return { outcome: 'counted', failures: shared.failures };
    const config = jail.config;
    const deciding = `${config.name}\u0000${key}`;
    // Concurrent thresholds (a burst, or several instances at once) collapse into one decision.
    if (this.#bannedHere(parsed, config.dryRun) || this.#deciding.has(deciding)) {
      return { outcome: 'already-banned', failures: shared.failures };
    }
    this.#deciding.add(deciding);
    try {
      const previousBans = await this.#previousBans(config, key);
      const decision = this.#decide(config, key, shared.failures, previousBans, fields);
      this.#recent.clear(config.name, key);
      // Announced with what this instance saw; stored without (`#write` gets the bare decision).
      this.#book.apply(withMatches(decision, this.#matches.take(config.name, key)), 'local');
      if (!config.dryRun) this.#stats.bans++;
      const stored = await this.#write(decision);
      return { outcome: config.dryRun ? 'would-ban' : 'banned', failures: shared.failures, decision: stored };
    } finally {
      this.#deciding.delete(deciding);
    }
  }

  /** Keeps what a source saw for the announcement, when some action of the jail shows it. */
  #keepMatch(jail: Jail, key: string, timeMs: number, match: string): void {
    if (keepsMatches(jail.config))
      this.#matches.add(jail.config.name, key, match, timeMs, jail.config.findTimeMs);
  }

  #previousBans(config: JailConfig, key: string): Promise<number> {
    if (config.banTimeIncrement === null) return Promise.resolve(0);
    return this.#sync.countBans(
      key,
      config.banTimeIncrement.overallJails ? null : config.name,
      this.#clock.now() - this.#config.dbPurgeAgeMs,
    );
  }

  #decide(
    config: JailConfig,
    key: string,
    failures: number,
    previousBans: number,
    fields: ReportOptions['fields'],
    chance = this.#random(),
  ): Decision {
    return decideBan({
      jail: config,
      key,
      failures,
      previousBans,
      nowMs: this.#clock.now(),
      random: () => chance,
      origin: this.#instanceId,
      fields,
    });
  }

  /**
   * Bans an address or a CIDR range by hand (or for a jail). Resolves to the decision as stored.
   * A ban never shortens an existing longer one.
   */
  ban(ipOrCidr: string, options: BanOptions = {}): Promise<Decision> {
    return this.#track(this.#ban(ipOrCidr, options));
  }

  async #ban(ipOrCidr: string, options: BanOptions): Promise<Decision> {
    this.#assertOpen();
    const cidr = parseTarget(ipOrCidr, options.force === true);
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
    return this.#enforce(
      manualDecision({
        target: cidr.text,
        jail: jailName,
        durationMs,
        reason: options.reason ?? 'banned by hand',
        nowMs: this.#clock.now(),
        origin: this.#instanceId,
      }),
    );
  }

  /**
   * Lifts the ban of this address or range. An address inside a banned IPv6 client network (a
   * jail bans `2001:db8::/64`; `unban('2001:db8::5')`) lifts that network's ban. Resolves to
   * whether one was lifted.
   */
  unban(ipOrCidr: string): Promise<boolean> {
    return this.#track(this.#unban(ipOrCidr));
  }

  async #unban(ipOrCidr: string): Promise<boolean> {
    this.#assertOpen();
    const target = this.#unbanTarget(parseTarget(ipOrCidr, true));
    const entry = this.#book.remove(target, 'unban');
    const stored = await this.#sync.delete(target);
    return entry !== undefined || stored !== undefined;
  }

  /** Every decision active now, from the store (or, while it is unreachable, from this instance). */
  async decisions(): Promise<Decision[]> {
    this.#assertOpen();
    return this.#sync.decisions();
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
    this.#jails = new JailSet(config);
    this.#config = config;
  }

  /** Something unexpected failed in the background: the `error` event, or the log without listeners. */
  reportError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else this.#logger.warn({ err: error }, 'background error');
  }

  /** Runs the expiry check now (for tests that drive a manual clock). */
  tick(): void {
    this.#book.expireNow();
  }

  /** Stops timers and closes the store. Idempotent; resolves when every handle is released. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      clearInterval(this.#purgeTimer);
      // Reports and bans already under way finish first: their decisions reach the store (or the
      // outbox file) instead of failing on a closed one.
      this.#closing = this.idle().then(() => {
        this.#book.close();
        return this.#sync.close();
      });
    }
    return this.#closing;
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight++;
    const settle = () => {
      if (--this.#inFlight > 0) return;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    };
    work.then(settle, settle);
    return work;
  }

  readonly #bannedHere = (ip: Parameters<DecisionBook['hasParsed']>[0], dryRun: boolean): boolean =>
    this.#book.hasParsed(ip, dryRun);

  /** Enforces locally first (the next request must be refused), then writes and logs. */
  async #enforce(decision: Decision): Promise<Decision> {
    this.#book.apply(decision, 'local');
    if (!decision.dryRun) this.#stats.bans++;
    return this.#write(decision);
  }

  /** Writes a decision the book enforces (or queues it during an outage), and logs it. */
  async #write(decision: Decision): Promise<Decision> {
    const stored = await this.#sync.put(decision);
    const bantime =
      decision.expiresAt === null ? '-1' : formatDuration(decision.expiresAt - decision.startedAt);
    // `sshd: ban 192.0.2.7 for 10m (5 failures within 10m)`, as fail2ban's operators read it.
    const length = bantime === '-1' ? 'permanently' : `for ${bantime}`;
    this.#logger.info(
      {
        event: decision.dryRun ? 'would-ban' : 'ban',
        target: decision.target,
        jail: decision.jail,
        bantime,
        banCount: decision.banCount,
        reason: decision.reason,
      },
      `${decision.jail}: ${decision.dryRun ? 'would ban' : 'ban'} ${decision.target} ${length} (${decision.reason}${decision.dryRun ? '; dry run' : ''})`,
    );
    return stored;
  }

  /** The target to lift for `cidr`: itself, or the banned IPv6 client network of that address. */
  #unbanTarget(cidr: Cidr): string {
    if (this.#book.get(cidr.text) !== undefined || cidr.family !== 6 || cidr.prefix !== 128) return cidr.text;
    const covering = this.#book.lookup(cidr);
    if (covering === undefined) return cidr.text;
    const prefix = this.#jails.get(covering.jail)?.config.ipv6Prefix ?? DEFAULTS.jail.ipv6_prefix;
    // Only a client key (the jail's own /prefix) is lifted by an address, never a wider range.
    return clientKey(cidr, prefix) === covering.target ? covering.target : cidr.text;
  }

  /** Re-emits the book's changes as the guard's events (from the first listener on). */
  #forward(): void {
    if (this.#forwarding) return;
    this.#forwarding = true;
    this.#book.subscribe({
      ban: (decision, source) => {
        if (this.listenerCount('ban') > 0) this.emit('ban', decision, source);
      },
      unban: (event) => {
        if (this.listenerCount('unban') > 0) this.emit('unban', event);
      },
      wouldBan: (decision, source) => {
        if (source !== 'restore' && this.listenerCount('wouldBan') > 0) this.emit('wouldBan', decision);
      },
    });
  }

  async #purge(): Promise<void> {
    this.#recent.prune(this.#clock.now());
    this.#matches.prune(this.#clock.now());
    await this.#sync.purge(this.#clock.now() - this.#config.dbPurgeAgeMs);
  }

  #deniedByOutage(ip: string): boolean {
    const parsed = parseIp(ip);
    return parsed === null || !this.#jails.ignoredByAny(parsed);
  }

  #assertOpen(): void {
    if (this.#closed) throw new PortcullisError(ErrorCodes.CLOSED, 'the guard is closed');
  }
}

function noop(): void {}

/** The decision as announced to this instance's listeners: with the matches seen, if any. */
function withMatches(decision: Decision, matches: readonly string[] | undefined): Decision {
  return matches === undefined ? decision : { ...decision, matches };
}

/** The widest ranges banned without `force`: a /0 or a /4 is a typo far more often than a plan. */
const WIDEST_PREFIX = { 4: 8, 6: 32 } as const;

function parseTarget(ipOrCidr: string, force = false): Cidr {
  const checked = checkCidr(ipOrCidr);
  if (!checked.ok) {
    const why = checked.reason === undefined ? '' : `: ${checked.reason}`;
    throw new PortcullisError(
      ErrorCodes.INVALID_IP,
      `not an IP address or CIDR range: ${JSON.stringify(ipOrCidr)}${why}`,
    );
  }
  const { cidr } = checked;
  if (force) return cidr;
  if (checked.warning !== undefined) {
    throw new PortcullisError(
      ErrorCodes.INVALID_IP,
      `${JSON.stringify(ipOrCidr)} has bits set past its prefix (${checked.warning}): ` +
        `write ${cidr.text} (or the single address), or force the ban`,
    );
  }
  const widest = WIDEST_PREFIX[cidr.family];
  if (cidr.prefix < widest) {
    throw new PortcullisError(
      ErrorCodes.INVALID_IP,
      `${cidr.text} is wider than /${widest}: that many addresses are banned only when forced`,
    );
  }
  return cidr;
}

/** The Redis store's `outbox` file; the other stores are local and keep it in memory. */
function outboxPathOf(config: PortcullisConfig): string | null {
  return config.store.kind === 'redis' ? config.store.outbox : null;
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
