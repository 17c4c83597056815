import { isPortcullisError } from '../../core/errors.js';
import { type ParsedIp, parseIp } from '../../core/ip.js';
import { keepsMatches } from '../../core/match-memory.js';
import type { ReportResult } from '../../core/types.js';
import { type CompiledFieldFilter, compileFieldFilter } from '../../detection/filters/fields/compile.js';
import type { FieldFilterSpec } from '../../detection/filters/fields/filter-schema.js';
import { SOCKET_FIELDS, type SocketFilterEvent } from '../../detection/filters/fields/socket-fields.js';
import { DistinctTracker } from '../../detection/filters/http/distinct.js';
import type { Jail } from '../../detection/jails/jail.js';
import type { SourceContext } from '../source.js';

/** A connection event as the TCP guard hands it to its jails. */
export interface TcpEvent extends SocketFilterEvent {
  /** The client, canonical. */
  readonly ip: string;
}

/** Counters the jails move (part of the guard's stats). */
export interface TcpJailStats {
  /** Events handed to the jails (one `open` and one `close` per connection; `close` for a refusal). */
  events: number;
  /** Failures reported (events some jail's filter matched). */
  failures: number;
  /** Reports that failed unexpectedly (a store rejection other than an outage). */
  errors: number;
}

/** One event that counted, as the "would ban" log line shows it. */
export type Evidence = Readonly<Record<string, string | number | boolean>>;

interface Observer {
  jail: Jail;
  filter: CompiledFieldFilter<SocketFilterEvent>;
  distinct: DistinctTracker | undefined;
  /** Client key → the last events that counted within findtime (oldest first), formatted when logged. */
  evidence: Map<string, { timeMs: number; event: TcpEvent }[]>;
}

/** Clients whose evidence a jail keeps at once; the least recently active are forgotten first. */
const MAX_EVIDENCE_CLIENTS = 10_000;
/** Events kept per client (at most the jail's maxretry). */
const MAX_EVIDENCE_EVENTS = 50;

const compiled = new WeakMap<FieldFilterSpec, CompiledFieldFilter<SocketFilterEvent>>();

/**
 * The jails of one TCP listener (`source: { socket: NAME }`): each event goes through every
 * jail's filter, synchronously, and a match is reported at once, so a threshold reached by this
 * connection's `open` bans before the next connection is accepted (the guard's own count is
 * synchronous; see `countHere`). Follows reloads: the jails are re-read when the registry's jail
 * map changes. For each client a jail keeps the events that counted (bounded), and when they end
 * in a ban or a dry-run "would ban", logs them as the evidence.
 */
export class TcpJails {
  readonly #context: SourceContext;
  readonly #listener: string;
  readonly #stats: TcpJailStats;
  /** Reports not yet settled, and who waits for none to be left. */
  #pending = 0;
  #drained: (() => void)[] = [];
  #seen: ReadonlyMap<string, Jail> | undefined;
  #observers: Observer[] = [];

  constructor(context: SourceContext, listener: string, stats: TcpJailStats) {
    this.#context = context;
    this.#listener = listener;
    this.#stats = stats;
  }

  /** Whether any jail judges this listener's connections (after a reload: the new jails). */
  get active(): boolean {
    this.#refresh();
    return this.#observers.length > 0;
  }

  /** Judges one event; matching jails get a failure reported now. Never throws. */
  judge(event: TcpEvent): void {
    this.#refresh();
    const observers = this.#observers;
    if (observers.length === 0) return;
    this.#stats.events++;
    let parsed: ParsedIp | null | undefined;
    for (const observer of observers) {
      try {
        if (!observer.filter.matches(event)) continue;
        parsed ??= parseIp(event.ip);
        if (parsed === null || observer.jail.isIgnored(parsed)) continue;
        const key = observer.jail.keyOf(parsed);
        const now = this.#context.clock.now();
        if (observer.distinct !== undefined) {
          if (!observer.distinct.isNew(key, observer.filter.distinctValue(event), now)) continue;
        }
        this.#stats.failures++;
        this.#remember(observer, key, now, event);
        this.#report(observer, key, event);
      } catch (error) {
        this.#stats.errors++;
        this.#context.reportError(error as Error);
      }
    }
  }

  /** Resolves once every report made so far has settled. */
  drain(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #report(observer: Observer, key: string, event: TcpEvent): void {
    // No fields: a decision's reason has no use for them, and the evidence log carries them all.
    // The event as the ban's mail shows it (`close dport=22 bytes_in=0 ...`), when an action shows it.
    const jail = observer.jail;
    const reported = this.#context.report(
      event.ip,
      keepsMatches(jail.config) ? { jail: jail.name, match: matchOf(event) } : { jail: jail.name },
    );
    this.#pending++;
    reported.then(
      (result) => {
        this.#settled();
        if (result.outcome === 'banned' || result.outcome === 'would-ban')
          this.#decided(observer, key, event, result);
      },
      (error: unknown) => {
        this.#settled();
        this.#failed(error);
      },
    );
  }

  #settled(): void {
    if (--this.#pending > 0) return;
    const waiting = this.#drained;
    this.#drained = [];
    for (const resolve of waiting) resolve();
  }

  #decided(observer: Observer, key: string, event: TcpEvent, result: ReportResult): void {
    const events = observer.evidence.get(key) ?? [];
    observer.evidence.delete(key);
    const evidence = events.map((entry) => evidenceOf(entry.event, entry.timeMs));
    const jail = observer.jail.name;
    const target = result.decision?.target ?? key;
    const source = `tcp:${this.#listener}`;
    const summary = `${evidence.length} matching connection event${evidence.length === 1 ? '' : 's'} on ${source}`;
    if (result.outcome === 'would-ban') {
      this.#context.logger.warn(
        { event: 'would-ban', source, jail, target, ip: event.ip, evidence },
        `would ban ${target} (dry run, jail ${jail}): ${summary}`,
      );
    } else {
      this.#context.logger.info(
        { event: 'ban-evidence', source, jail, target, ip: event.ip, evidence },
        `ban ${target} (jail ${jail}): ${summary}`,
      );
    }
  }

  #failed(error: unknown): void {
    // A report racing the guard's close is no error of the source.
    if (isPortcullisError(error, 'PC_ERR_CLOSED')) return;
    this.#stats.errors++;
    this.#context.reportError(error instanceof Error ? error : new Error(String(error)));
  }

  #remember(observer: Observer, key: string, now: number, event: TcpEvent): void {
    const config = observer.jail.config;
    let events = observer.evidence.get(key);
    if (events === undefined) {
      events = [];
      if (observer.evidence.size >= MAX_EVIDENCE_CLIENTS) {
        observer.evidence.delete(observer.evidence.keys().next().value as string);
      }
    } else {
      observer.evidence.delete(key); // re-inserted: most recent last
    }
    observer.evidence.set(key, events);
    while (events.length > 0 && now - (events[0] as { timeMs: number }).timeMs >= config.findTimeMs)
      events.shift();
    events.push({ timeMs: now, event });
    const keep = Math.min(MAX_EVIDENCE_EVENTS, config.maxRetry);
    while (events.length > keep) events.shift();
  }

  #refresh(): void {
    const jails = this.#context.jails;
    if (jails === this.#seen) return;
    this.#seen = jails;
    const observers: Observer[] = [];
    for (const jail of jails.values()) {
      const { source, socketFilter } = jail.config;
      if (source.kind !== 'socket' || source.listener !== this.#listener) continue;
      if (socketFilter === undefined || socketFilter === null) continue;
      let filter = compiled.get(socketFilter);
      if (filter === undefined) {
        filter = compileFieldFilter(SOCKET_FIELDS, socketFilter);
        compiled.set(socketFilter, filter);
      }
      observers.push({
        jail,
        filter,
        distinct:
          filter.distinct === undefined
            ? undefined
            : new DistinctTracker({ windowMs: jail.config.findTimeMs }),
        evidence: new Map(),
      });
    }
    this.#observers = observers;
  }
}

/** `close dport=22 end=fin duration=5ms bytes_in=0`: the event's fields, by their config names. */
function matchOf(event: TcpEvent): string {
  const { at: _at, event: kind, ...rest } = evidenceOf(event, 0);
  return `${kind} ${Object.entries(rest)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ')}`;
}

/** One event as the evidence shows it: its time and the fields it has, by their config names. */
function evidenceOf(event: TcpEvent, now: number): Evidence {
  const out: Record<string, string | number | boolean> = {
    at: new Date(now).toISOString(),
    event: event.event,
  };
  out.dport = event.dport;
  if (event.end !== undefined) out.end = event.end;
  if (event.durationMs !== undefined) out.duration = `${Math.round(event.durationMs)}ms`;
  if (event.bytesIn !== undefined) out.bytes_in = event.bytesIn;
  if (event.bytesOut !== undefined) out.bytes_out = event.bytesOut;
  if (event.concurrent !== undefined) out.concurrent = event.concurrent;
  if (event.sni !== undefined) out.sni = event.sni;
  return out;
}
