import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_HTTP_CONFIG, resolveDenyResponse } from '../../config/http.js';
import type { PortcullisConfig } from '../../config/types.js';
import { ErrorCodes, isPortcullisError, PortcullisError } from '../../core/errors.js';
import { type ParsedIp, parseIp } from '../../core/ip.js';
import { keepsMatches } from '../../core/match-memory.js';
import type { Decision, ReportOptions, ReportResult } from '../../core/types.js';
import { type CompiledHttpFilter, distinctValue } from '../../detection/filters/http/compile.js';
import { DistinctTracker } from '../../detection/filters/http/distinct.js';
import type { DistinctField } from '../../detection/filters/http/filter-schema.js';
import type { Jail } from '../../detection/jails/jail.js';
import type { BanCheck, FailureSink, JailRegistry } from '../source.js';
import { type ClientIpResolver, createClientIpResolver, type ForwardedHeader } from './client-ip.js';
import { type Denial, type DenyResponse, RATE_LIMITED_RESPONSE, writeDenial } from './deny.js';
import { ExchangeEvent, type HttpEvent, httpEventOf } from './http-event.js';
import { RateLimit, sharedRateBackendOf } from './rate-limit.js';

/**
 * What the HTTP pipeline needs of the engine (a `Guard` is one): the ban check, the failure sink,
 * the jails in force, and where unexpected errors go.
 */
export interface HttpEngine extends BanCheck, FailureSink, JailRegistry {
  reportError(error: Error): void;
  /** Decisions as they are enforced (the Guard's); the proxy closes a banned client's connections on `ban`. */
  subscribe?(listener: { ban?(decision: Decision): void }): () => void;
  /** The guard's store: with Redis, rate jails count across instances (see `rate-limit.ts`). */
  readonly store?: { readonly kind: string };
}

export interface HttpPipelineOptions {
  /** Overrides `http.trusted_proxies` (CIDRs). Default: the config's. */
  trustedProxies?: readonly string[];
  /** Overrides `http.forwarded_header`. Default: the config's (`x-forwarded-for`). */
  forwardedHeader?: ForwardedHeader;
  /** Overrides the response a banned client gets. Default: `http.deny` (403, `Forbidden`). */
  deny?: Partial<DenyResponse>;
  /**
   * Told about unexpected failures while observing (never thrown into the application).
   * Default: the engine's `reportError` (the guard's `error` event).
   */
  onError?: (error: Error) => void;
}

export interface HttpPipelineStats {
  /** Requests refused because the client is banned (`check()` answers that found a ban). */
  denied: number;
  /** Requests refused with 429 by a rate jail. */
  rateLimited: number;
  /** Finished exchanges handed to filters. */
  observed: number;
  /** Failures reported to jails (filters, rates and `fail()`). */
  failures: number;
  /** Unexpected errors while observing (a bug or a store rejection other than an outage). */
  errors: number;
  /** Requests from a trusted proxy whose forwarding header was unusable (the peer was used). */
  malformedForwarded: number;
  /** Requests a trusted proxy named with an obfuscated identifier (`for=unknown`): not judged. */
  unknownClients: number;
}

/**
 * The HTTP request pipeline both HTTP surfaces (Express middleware, reverse proxy) are built on.
 * It speaks raw Node `IncomingMessage`/`ServerResponse` only. A request's journey:
 *
 * 1. `clientIp(req)` — who is asking (PROXY protocol hook, trusted proxies, forwarding header);
 * 2. `check(ip)` — synchronous ban-table lookup, no I/O; a {@link Denial} for a banned client;
 * 3. `rate(req, ip)` — rate jails (in-memory limiter); `undefined` when no rate jail applies;
 * 4. `track(req, res, ip)` — after the response closes, the exchange becomes an {@link HttpEvent}
 *    and goes to `observe()`: every http jail whose filter matches gets a failure.
 *
 * `admit()` runs 1–4 and writes the refusal itself; a surface that answers differently (the proxy
 * dropping the connection) calls the steps one by one.
 */
export interface HttpPipeline {
  readonly guard: HttpEngine;
  /** Canonical client address, or `null` when it cannot be known. Never throws. */
  clientIp(req: IncomingMessage): string | null;
  /** Synchronous: why `ip` must be refused now, or `undefined`. No I/O, no allocation when allowed. */
  check(ip: string): Denial | undefined;
  /** True when some rate jail is configured (so `rate()` may return a promise). */
  readonly hasRateJails: boolean;
  /**
   * Counts the request against every rate jail it falls under. `undefined` (synchronously) when
   * none applies; else a promise of the refusal, if any. The first request over a rate reports one
   * failure to the jail; a dry-run jail never refuses. Never rejects.
   */
  rate(req: IncomingMessage, ip: string, url?: string): Promise<Denial | undefined> | undefined;
  /** True when some jail judges finished exchanges (so `track()` does something). */
  readonly observing: boolean;
  /**
   * Arranges for the exchange to be observed when `res` closes (finished or aborted). `url` is the
   * request target (default `req.url`). A no-op when no jail observes.
   */
  track(req: IncomingMessage, res: ServerResponse, ip: string, url?: string): void;
  /** Judges one exchange: reports a failure to each matching jail. Never rejects. */
  observe(event: HttpEvent): Promise<void>;
  /**
   * Reports an application-known failure (a wrong password) for `ip`. `jail` defaults to the only
   * jail that takes such reports (see {@link failJailOf}). Rejects with `PC_ERR_UNKNOWN_JAIL` when
   * that is ambiguous; resolves `{ outcome: 'invalid-ip' }` for a `null` ip.
   */
  fail(ip: string | null, jail?: string, fields?: ReportFields): Promise<ReportResult>;
  /** Writes the refusal for `denial` (the configured deny response, or 429 for a rate). */
  deny(res: ServerResponse, denial: Denial): void;
  /** The response {@link deny} writes, for a refusal written on a raw socket (an upgrade). */
  denyResponseOf(denial: Denial): DenyResponse;
  /**
   * The whole journey for one request: resolves the client, refuses (and answers) a banned or
   * over-rate one, tracks the rest. `true`: continue to the application; `false`: answered.
   * A promise only when a rate jail applies. Never throws or rejects. `ip`: the client when the
   * caller already resolved it with {@link clientIp} (so it is not resolved twice).
   */
  admit(
    req: IncomingMessage,
    res: ServerResponse,
    url?: string,
    ip?: string | null,
  ): boolean | Promise<boolean>;
  /**
   * Pipelined requests on one connection take turns: `undefined` when this request may go on now
   * (the connection has nothing else in flight), else a promise resolved once the request before
   * it has been answered and judged. So the failures (and the ban) of one request count before
   * the next one on the same connection is admitted: 200 wrong passwords written at once on one
   * connection reach the application `maxretry` times, not 200. The promise resolves `false` when
   * the connection died while the request waited: it must not go on (its response is gone, and
   * the requests behind it are released at once, before anything could judge them). `admit()`
   * takes the turn itself; a surface that runs the steps one by one calls this first. Never rejects.
   */
  turn(req: IncomingMessage, res: ServerResponse): Promise<boolean> | undefined;
  /** A snapshot of the counters. */
  readonly stats: HttpPipelineStats;
  /** Forgets per-client state (distinct values, rate counters). Idempotent. */
  close(): void;
}

export type ReportFields = Readonly<Record<string, string | number | undefined>>;

interface ObservingJail {
  jail: Jail;
  filter: CompiledHttpFilter;
  distinct: DistinctTracker | undefined;
}

interface RateJail {
  jail: Jail;
  filter: CompiledHttpFilter | undefined;
  /** This instance's window, and the shared one with a Redis store (see {@link RateLimit}). */
  limit: RateLimit;
}

const PATH_FIELD_MAX = 200;

/** Whose turn it is on one connection (see `HttpPipeline.turn`). */
interface ConnectionTurns {
  busy: boolean;
  /** The request whose turn it is: a second pipeline judging it (two middlewares) must not wait for itself. */
  holder: IncomingMessage | undefined;
  waiting: (() => void)[];
  /** Called when the response in its turn closes (after the pipeline judged it). */
  release: () => void;
}

/** By socket: shared by every pipeline, as one connection's requests are one sequence. */
const turns = new WeakMap<object, ConnectionTurns>();

function turnsOf(socket: object): ConnectionTurns {
  let state = turns.get(socket);
  if (state === undefined) {
    const created: ConnectionTurns = {
      busy: false,
      holder: undefined,
      waiting: [],
      release: () => {
        const next = created.waiting.shift();
        created.holder = undefined;
        if (next === undefined) created.busy = false;
        else next();
      },
    };
    turns.set(socket, created);
    state = created;
  }
  return state;
}
const shared = new WeakMap<HttpEngine, HttpPipeline>();

/**
 * The guard's default pipeline (configured by its `http:` section), created on first use and
 * shared by `guard.express()`, `guard.fail()` and `portcullis(guard)` without options.
 */
export function pipelineFor(guard: HttpEngine): HttpPipeline {
  let pipeline = shared.get(guard);
  if (pipeline === undefined) {
    pipeline = createHttpPipeline(guard);
    shared.set(guard, pipeline);
  }
  return pipeline;
}

/** Builds a pipeline over `guard`. It follows `guard.reload()`: jails and `http:` are re-read. */
export function createHttpPipeline(guard: HttpEngine, options: HttpPipelineOptions = {}): HttpPipeline {
  return new Pipeline(guard, options);
}

class Pipeline implements HttpPipeline {
  readonly guard: HttpEngine;
  readonly #options: HttpPipelineOptions;
  #config: PortcullisConfig | undefined;
  #jailsRef: ReadonlyMap<string, Jail> | undefined;
  #resolver!: ClientIpResolver;
  #denyResponse!: DenyResponse;
  #observers: ObservingJail[] = [];
  #rateJails: RateJail[] = [];
  #rateNeedsEvent = false;
  readonly #counts = { denied: 0, rateLimited: 0, observed: 0, failures: 0, errors: 0 };
  readonly #malformedBase = { malformed: 0, unknown: 0 };

  constructor(guard: HttpEngine, options: HttpPipelineOptions) {
    this.guard = guard;
    this.#options = options;
    this.#refresh();
  }

  get hasRateJails(): boolean {
    this.#refresh();
    return this.#rateJails.length > 0;
  }

  get observing(): boolean {
    this.#refresh();
    return this.#observers.length > 0;
  }

  get stats(): HttpPipelineStats {
    return {
      ...this.#counts,
      malformedForwarded: this.#malformedBase.malformed + this.#resolver.stats.malformed,
      unknownClients: this.#malformedBase.unknown + this.#resolver.stats.unknown,
    };
  }

  clientIp(req: IncomingMessage): string | null {
    this.#refresh();
    return this.#resolver.resolve(req);
  }

  check(ip: string): Denial | undefined {
    const guard = this.guard;
    if (!guard.isBanned(ip)) return undefined;
    this.#counts.denied++;
    const entry = guard.lookup(ip);
    // No entry: refused by the outage policy (on_store_error: deny); worth retrying soon.
    let retryAfterS: number | undefined = 1;
    if (entry !== undefined) {
      retryAfterS = Number.isFinite(entry.expiresAt)
        ? Math.max(1, Math.ceil((entry.expiresAt - guard.clock.now()) / 1000))
        : undefined;
    }
    return { reason: 'banned', status: this.#denyResponse.status, retryAfterS, jail: entry?.jail };
  }

  rate(req: IncomingMessage, ip: string, url?: string): Promise<Denial | undefined> | undefined {
    const rateJails = this.#rateJails;
    if (rateJails.length === 0) return undefined;
    const parsed = parseIp(ip);
    if (parsed === null) return undefined;
    const event = this.#rateNeedsEvent ? requestEventOf(req, ip, url ?? req.url ?? '/') : undefined;
    let pending: Promise<Denial | undefined>[] | undefined;
    for (const rateJail of rateJails) {
      if (rateJail.jail.isIgnored(parsed)) continue;
      if (rateJail.filter !== undefined && !rateJail.filter.matches(event as HttpEvent)) continue;
      const consumed = rateJail.limit
        .consume(rateJail.jail.keyOf(parsed), ip)
        .then((retryMs) => (retryMs === undefined ? undefined : this.#overRate(rateJail, retryMs)));
      if (pending === undefined) pending = [];
      pending.push(consumed);
    }
    if (pending === undefined) return undefined;
    if (pending.length === 1) return pending[0];
    return Promise.all(pending).then((denials) => denials.find((d) => d !== undefined));
  }

  track(req: IncomingMessage, res: ServerResponse, ip: string, url?: string): void {
    if (this.#observers.length === 0) return;
    // One small object per request; its fields are worked out only if a filter reads them.
    const event = new ExchangeEvent(req, res, ip, url ?? req.url ?? '/', performance.now(), this.guard.clock);
    res.on('close', () => void this.observe(event));
  }

  observe(event: HttpEvent): Promise<void> {
    try {
      const reports = this.#judge(event);
      if (reports === undefined) return DONE;
      return Promise.all(reports).then(noop);
    } catch (error) {
      this.#failed(error);
      return DONE;
    }
  }

  /** Runs the filters synchronously; the reports of the jails that matched, if any. */
  #judge(event: HttpEvent): Promise<void>[] | undefined {
    this.#refresh();
    const observers = this.#observers;
    if (observers.length === 0) return undefined;
    this.#counts.observed++;
    let parsed: ParsedIp | null | undefined;
    let reports: Promise<void>[] | undefined;
    for (const observer of observers) {
      if (!observer.filter.matches(event)) continue;
      if (observer.distinct !== undefined) {
        parsed ??= parseIp(event.ip);
        if (parsed === null || observer.jail.isIgnored(parsed)) continue;
        const value = distinctValue(event, observer.filter.distinct as DistinctField);
        if (!observer.distinct.isNew(observer.jail.keyOf(parsed), value, event.timeMs)) continue;
      }
      if (reports === undefined) reports = [];
      // The request as the ban's mail shows it, built only when an action shows it.
      const match = keepsMatches(observer.jail.config) ? matchOf(event) : undefined;
      reports.push(this.#report(event.ip, observer.jail.name, fieldsOf(event), event.timeMs, match));
    }
    return reports;
  }

  async fail(ip: string | null, jail?: string, fields?: ReportFields): Promise<ReportResult> {
    this.#refresh();
    const name = jail ?? failJailOf(this.guard);
    if (!this.guard.jails.has(name)) {
      throw new PortcullisError(ErrorCodes.UNKNOWN_JAIL, `fail(): no jail named ${JSON.stringify(name)}`);
    }
    if (ip === null) return { outcome: 'invalid-ip' };
    this.#counts.failures++;
    return this.guard.report(ip, fields === undefined ? { jail: name } : { jail: name, fields });
  }

  deny(res: ServerResponse, denial: Denial): void {
    writeDenial(res, denial, this.denyResponseOf(denial));
  }

  /** What a refusal is answered with (`http.deny` for a ban, 429 for a rate), for a raw socket too. */
  denyResponseOf(denial: Denial): DenyResponse {
    return denial.reason === 'rate' ? RATE_LIMITED_RESPONSE : this.#denyResponse;
  }

  turn(req: IncomingMessage, res: ServerResponse): Promise<boolean> | undefined {
    const state = turnsOf(req.socket);
    // Registered before the judging listener, but the next request resumes in a microtask, after
    // every 'close' listener (the judge included) has run.
    if (state.holder === req) return undefined;
    if (!state.busy) {
      state.busy = true;
      state.holder = req;
      res.once('close', state.release);
      return undefined;
    }
    return new Promise((resolve) =>
      state.waiting.push(() => {
        // The connection died while this request waited: its response is closed already.
        if (res.closed || req.socket.destroyed) {
          queueMicrotask(state.release);
          resolve(false);
          return;
        }
        state.holder = req;
        res.once('close', state.release);
        resolve(true);
      }),
    );
  }

  admit(
    req: IncomingMessage,
    res: ServerResponse,
    url?: string,
    known?: string | null,
  ): boolean | Promise<boolean> {
    const waiting = this.turn(req, res);
    if (waiting !== undefined) return waiting.then((alive) => alive && this.#admit(req, res, url, known));
    return this.#admit(req, res, url, known);
  }

  #admit(
    req: IncomingMessage,
    res: ServerResponse,
    url: string | undefined,
    known: string | null | undefined,
  ): boolean | Promise<boolean> {
    try {
      this.#refresh();
      const ip = known === undefined ? this.#resolver.resolve(req) : known;
      if (ip === null) return true;
      const denial = this.check(ip);
      if (denial !== undefined) {
        this.deny(res, denial);
        return false;
      }
      const limited = this.#rateJails.length === 0 ? undefined : this.rate(req, ip, url);
      if (limited === undefined) {
        this.track(req, res, ip, url);
        return true;
      }
      return limited.then(
        (over) => {
          if (over !== undefined) {
            this.deny(res, over);
            return false;
          }
          this.track(req, res, ip, url);
          return true;
        },
        (error: unknown) => {
          this.#failed(error);
          return true;
        },
      );
    } catch (error) {
      // A guard bug must not take the application down: fail open, and say so.
      this.#failed(error);
      return true;
    }
  }

  close(): void {
    for (const observer of this.#observers) observer.distinct?.clear();
    this.#observers = [];
    this.#rateJails = [];
  }

  async #report(
    ip: string,
    jail: string,
    fields: ReportFields,
    timeMs?: number,
    match?: string,
  ): Promise<void> {
    this.#counts.failures++;
    try {
      const options: ReportOptions = timeMs === undefined ? { jail, fields } : { jail, fields, timeMs };
      if (match !== undefined) options.match = match;
      await this.guard.report(ip, options);
    } catch (error) {
      if (isPortcullisError(error, ErrorCodes.CLOSED)) return; // shutting down: nothing to count
      this.#failed(error);
    }
  }

  /** Over the rate: the refusal (the one failure per window is reported by the {@link RateLimit}). */
  #overRate(rateJail: RateJail, retryMs: number): Denial | undefined {
    if (rateJail.jail.config.dryRun) return undefined;
    this.#counts.rateLimited++;
    return {
      reason: 'rate',
      status: RATE_LIMITED_RESPONSE.status,
      retryAfterS: Math.max(1, Math.ceil(retryMs / 1000)),
      jail: rateJail.jail.name,
    };
  }

  #failed(error: unknown): void {
    this.#counts.errors++;
    const err = error instanceof Error ? error : new Error(String(error));
    if (this.#options.onError !== undefined) {
      try {
        this.#options.onError(err);
      } catch {
        // The error handler itself failed; nothing sensible is left to do.
      }
    } else {
      this.guard.reportError(err);
    }
  }

  /** Re-reads `http:` and the jails when the guard was reloaded (an identity check otherwise). */
  #refresh(): void {
    const config = this.guard.config;
    if (config !== this.#config) {
      if (this.#resolver !== undefined) {
        this.#malformedBase.malformed += this.#resolver.stats.malformed;
        this.#malformedBase.unknown += this.#resolver.stats.unknown;
      }
      const http = config.http ?? DEFAULT_HTTP_CONFIG;
      this.#resolver = createClientIpResolver({
        trustedProxies: this.#options.trustedProxies ?? http.trustedProxies,
        forwardedHeader: this.#options.forwardedHeader ?? http.forwardedHeader,
      });
      this.#denyResponse = resolveDenyResponse(this.#options.deny, http.deny);
      this.#config = config;
    }
    const jails = this.guard.jails;
    if (jails !== this.#jailsRef) {
      this.#buildJails(jails);
      this.#jailsRef = jails;
    }
  }

  #buildJails(jails: ReadonlyMap<string, Jail>): void {
    const previousRates = new Map(this.#rateJails.map((r) => [r.jail.name, r]));
    const previousDistinct = new Map(this.#observers.map((o) => [o.jail.name, o]));
    const observers: ObservingJail[] = [];
    const rateJails: RateJail[] = [];
    for (const jail of jails.values()) {
      const config = jail.config;
      if (config.source.kind !== 'http') continue;
      const filter = jail.httpFilter;
      if (config.rate != null) {
        const { points, durationMs } = config.rate;
        const old = previousRates.get(jail.name)?.limit;
        const name = jail.name;
        const limit =
          old !== undefined && old.points === points && old.durationMs === durationMs
            ? old
            : new RateLimit({
                jail: name,
                points,
                durationMs,
                shared: sharedRateBackendOf(this.guard.store),
                onExceeded: (ip) => void this.#report(ip, name, { rate: `${points}/${durationMs}ms` }),
                onError: (error) => this.#failed(error),
              });
        rateJails.push({ jail, filter, limit });
        continue;
      }
      if (filter === undefined) continue;
      const old = previousDistinct.get(jail.name)?.distinct;
      const distinct =
        filter.distinct === undefined
          ? undefined
          : old !== undefined && old.windowMs === config.findTimeMs
            ? old
            : new DistinctTracker({
                windowMs: config.findTimeMs,
                maxValuesPerClient: Math.max(64, config.maxRetry * 2),
              });
      observers.push({ jail, filter, distinct });
    }
    this.#observers = observers;
    this.#rateJails = rateJails;
    this.#rateNeedsEvent = rateJails.some((r) => r.filter !== undefined);
  }
}

function noop(): void {}

const DONE: Promise<void> = Promise.resolve();

/**
 * The jail `fail()` reports to when none is named: the only jail with `source: api` or an http
 * jail with neither filter nor rate. Throws `PC_ERR_UNKNOWN_JAIL` naming the candidates otherwise.
 */
export function failJailOf(guard: JailRegistry): string {
  const candidates: string[] = [];
  for (const jail of guard.jails.values()) {
    const config = jail.config;
    if (config.source.kind === 'api') candidates.push(jail.name);
    else if (config.source.kind === 'http' && config.httpFilter == null && config.rate == null) {
      candidates.push(jail.name);
    }
  }
  if (candidates.length === 1) return candidates[0] as string;
  throw new PortcullisError(
    ErrorCodes.UNKNOWN_JAIL,
    candidates.length === 0
      ? 'fail(): no jail takes application reports; add one with source: api (or an http jail without filter and rate)'
      : `fail(): several jails could take this report (${candidates.join(', ')}); name one: fail(req, 'jail')`,
  );
}

/** `GET /wp-login.php?x=1 404 "curl/8.0"`: the request target as sent (the guard cuts it to 1 KiB). */
function matchOf(event: HttpEvent): string {
  return `${event.method} ${event.url} ${event.status} "${event.userAgent}"`;
}

function fieldsOf(event: HttpEvent): ReportFields {
  const path = event.path.length > PATH_FIELD_MAX ? `${event.path.slice(0, PATH_FIELD_MAX)}...` : event.path;
  return { method: event.method, path, status: event.status };
}

/** The request half of an event, for rate jails whose filter looks at the request. */
function requestEventOf(req: IncomingMessage, ip: string, url: string): HttpEvent {
  return httpEventOf(req, undefined, ip, url, performance.now(), 0);
}
