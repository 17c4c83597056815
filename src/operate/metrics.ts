import { collectDefaultMetrics, type Metric, Registry } from 'prom-client';
import { MANUAL_JAIL } from '../config/defaults.js';
import type { UnbanEvent } from '../core/types.js';
import type { Control, StatusReport } from './control.js';

/**
 * Prometheus metrics of a running portcullis, on a registry of its own (never prom-client's
 * global one, so an application embedding portcullis keeps its own). Almost everything is
 * gathered at scrape time from the counters the parts keep anyway (`Control.status()`: jails,
 * store, sources, actions): nothing on the hot path but the HTTP latency histogram, whose
 * recording is one bucket increment ({@link LatencyHistogram.record}).
 *
 * Label cardinality is bounded: `jail` takes the configured jails' names (and `manual`; anything
 * else, such as a jail only another instance knows, is `other`), `action` the configured actions,
 * `file` at most {@link MAX_FILES_PER_JAIL} files per jail. An address is never a label.
 */

/** Upper bounds of the added-latency buckets, seconds. */
export const LATENCY_BUCKETS_S = [
  0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
  0.25, 1,
] as const;

const MAX_FILES_PER_JAIL = 50;
const OTHER = 'other';

/**
 * A fixed-bucket histogram cheap enough for the request path: `record()` is a short scan and two
 * additions, no allocation, no label lookup. prom-client reads it at scrape time.
 */
export class LatencyHistogram {
  readonly #boundsMs: Float64Array = Float64Array.from(LATENCY_BUCKETS_S, (s) => s * 1000);
  /** Per bucket (not cumulative); the last one is +Inf. */
  readonly #counts = new Float64Array(LATENCY_BUCKETS_S.length + 1);
  #sumMs = 0;
  #count = 0;

  /** One observation, in milliseconds (a `performance.now()` difference). */
  record(ms: number): void {
    const bounds = this.#boundsMs;
    let i = 0;
    while (i < bounds.length && ms > (bounds[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#sumMs += ms;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  /** Cumulative counts per bound (+Inf last), the sum in seconds, and the count. */
  snapshot(): { cumulative: number[]; sumS: number; count: number } {
    const cumulative: number[] = [];
    let running = 0;
    for (const c of this.#counts) {
      running += c;
      cumulative.push(running);
    }
    return { cumulative, sumS: this.#sumMs / 1000, count: this.#count };
  }
}

/** The admin listener's own counters, when it runs (structural: this layer does not import it). */
export type AdminStatsSource = () => {
  authFailures: number;
  authBlockedNow: number;
  unauthorized: number;
  events: { clients: number; dropped: number; sent: number };
};

/** Store state changes (a `Guard` emits these). */
export interface StoreEvents {
  on(event: 'storeUp' | 'storeDown', listener: () => void): unknown;
  off(event: 'storeUp' | 'storeDown', listener: () => void): unknown;
}

/** Where unbans are heard (a `Guard`'s decision subscription). */
export interface UnbanFeed {
  subscribe(listener: { unban?(event: UnbanEvent): void }): () => void;
}

export interface MetricsOptions {
  control: Control;
  /** Counts `portcullis_unbans_total`; without it that metric is absent. */
  decisions?: UnbanFeed;
  /** Counts `portcullis_store_reconnects_total` and `..._outages_total`. */
  store?: StoreEvents;
  /** The admin listener's counters. */
  admin?: AdminStatsSource;
  /** Node's process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
  /**
   * The configured jails by name (a guard's `jails` map, replaced on reload): labels each unban
   * with one lookup. Without it, the jails seen at the last scrape. Never a `status()` walk: that
   * visits every failing client and runs only at scrape time.
   */
  jailNames?: () => { has(name: string): boolean };
}

interface Sample {
  labels?: Record<string, string>;
  value: number;
  metricName?: string;
}

type MetricType = 'counter' | 'gauge' | 'histogram';

/** The metrics of one running instance. `close()` detaches them from the guard. */
export class PortcullisMetrics {
  readonly registry = new Registry();
  /** Time the proxy added to each forwarded request; the proxy records into it when attached. */
  readonly httpLatency = new LatencyHistogram();
  readonly #control: Control;
  readonly #unbans = new Map<string, number>();
  readonly #store = { reconnects: 0, outages: 0 };
  readonly #detach: (() => void)[] = [];
  readonly #jailNames: (() => { has(name: string): boolean }) | undefined;
  /** The jails of the last scrape: the labels when no `jailNames` was given. */
  #scrapedJails: ReadonlySet<string> = new Set();
  #snapshot: StatusReport | undefined;

  constructor(options: MetricsOptions) {
    this.#control = options.control;
    this.#jailNames = options.jailNames;
    if (options.decisions !== undefined) {
      this.#detach.push(
        options.decisions.subscribe({
          unban: (event) => {
            const jail = this.#jailLabel(event.jail);
            this.#unbans.set(jail, (this.#unbans.get(jail) ?? 0) + 1);
          },
        }),
      );
    }
    if (options.store !== undefined) {
      const store = options.store;
      const up = () => this.#store.reconnects++;
      const down = () => this.#store.outages++;
      store.on('storeUp', up);
      store.on('storeDown', down);
      this.#detach.push(() => {
        store.off('storeUp', up);
        store.off('storeDown', down);
      });
    }
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.#define(options);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text; one `status()` snapshot serves every metric of the scrape. */
  async render(): Promise<string> {
    this.#snapshot = this.#control.status();
    this.#scrapedJails = new Set(this.#snapshot.jails.map((j) => j.name));
    try {
      return await this.registry.metrics();
    } finally {
      this.#snapshot = undefined;
    }
  }

  close(): void {
    for (const detach of this.#detach.splice(0)) detach();
  }

  #status(): StatusReport {
    return this.#snapshot ?? this.#control.status();
  }

  /** Called on every unban: one set lookup, never `status()` (it walks every failing client). */
  #jailLabel(jail: string): string {
    if (jail === MANUAL_JAIL) return jail;
    const known = this.#jailNames?.() ?? this.#scrapedJails;
    return known.has(jail) ? jail : OTHER;
  }

  #collected(name: string, help: string, type: MetricType, values: () => Sample[]): void {
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum',
      get: async () => ({ name, help, type, aggregator: 'sum', values: values() }),
      reset: () => {},
    };
    this.registry.registerMetric(metric as unknown as Metric);
  }

  #define(options: MetricsOptions): void {
    const perJail = (pick: (jail: StatusReport['jails'][number]) => number) => () =>
      this.#status().jails.map((jail) => ({ labels: { jail: jail.name }, value: pick(jail) }));

    this.#collected('portcullis_info', 'The running version (value 1).', 'gauge', () => [
      { labels: { version: this.#status().version }, value: 1 },
    ]);
    this.#collected(
      'portcullis_start_time_seconds',
      'When this instance started, seconds since the epoch.',
      'gauge',
      () => [{ value: this.#status().startedAt / 1000 }],
    );
    this.#collected(
      'portcullis_failures_total',
      'Failures counted per jail since start.',
      'counter',
      perJail((j) => j.totalFailed),
    );
    this.#collected(
      'portcullis_bans_total',
      'Bans per jail since start (decided here or received).',
      'counter',
      perJail((j) => j.totalBanned),
    );
    this.#collected(
      'portcullis_active_bans',
      'Bans of each jail in force now.',
      'gauge',
      perJail((j) => j.currentlyBanned),
    );
    this.#collected(
      'portcullis_failing_clients',
      "Clients with failures inside the jail's findtime now.",
      'gauge',
      perJail((j) => j.currentlyFailed),
    );
    this.#collected(
      'portcullis_enforced_bans',
      'Bans enforced by this instance now (every jail and manual bans).',
      'gauge',
      () => [{ value: this.#status().activeBans }],
    );
    if (options.decisions !== undefined) {
      this.#collected(
        'portcullis_unbans_total',
        'Bans lifted per jail (expired, unbanned, replaced) since start.',
        'counter',
        () => {
          const samples = this.#status().jails.map((jail) => ({
            labels: { jail: jail.name },
            value: this.#unbans.get(jail.name) ?? 0,
          }));
          for (const jail of [MANUAL_JAIL, OTHER]) {
            const value = this.#unbans.get(jail);
            if (value !== undefined) samples.push({ labels: { jail }, value });
          }
          return samples;
        },
      );
    }

    // HTTP: the proxy's own counters, and the latency histogram it records into.
    this.#collected(
      'portcullis_http_requests_total',
      'Proxied requests by outcome: allowed (forwarded), denied (banned: answered or dropped), rate_limited (429).',
      'counter',
      () => {
        const proxy = this.#status().sources.proxy as Record<string, unknown> | undefined;
        if (proxy === undefined) return [];
        const n = (key: string) => (typeof proxy[key] === 'number' ? (proxy[key] as number) : 0);
        return [
          { labels: { outcome: 'allowed' }, value: this.httpLatency.count },
          { labels: { outcome: 'denied' }, value: n('denied') + n('dropped') },
          { labels: { outcome: 'rate_limited' }, value: n('rateLimited') },
        ];
      },
    );
    this.#collected(
      'portcullis_http_added_latency_seconds',
      'Time the proxy spent on a request before forwarding it (client identification, ban check, rate jails, pipelined turn, body buffering).',
      'histogram',
      () => {
        const { cumulative, sumS, count } = this.httpLatency.snapshot();
        const name = 'portcullis_http_added_latency_seconds';
        const samples: Sample[] = LATENCY_BUCKETS_S.map((le, i) => ({
          metricName: `${name}_bucket`,
          labels: { le: String(le) },
          value: cumulative[i] as number,
        }));
        samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
        samples.push({ metricName: `${name}_sum`, value: sumS });
        samples.push({ metricName: `${name}_count`, value: count });
        return samples;
      },
    );

    // Log jails: per jail, and per file when the source says.
    const logJails = (): [string, Record<string, unknown>][] => {
      const log = this.#status().sources.log as Record<string, Record<string, unknown>> | undefined;
      return log === undefined ? [] : Object.entries(log);
    };
    const perLogJail = (pick: (stats: Record<string, unknown>) => number) => () =>
      logJails().map(([jail, stats]) => ({ labels: { jail }, value: pick(stats) }));
    const num = (value: unknown) => (typeof value === 'number' ? value : 0);
    this.#collected(
      'portcullis_log_lines_read_total',
      'Log lines read per jail.',
      'counter',
      perLogJail((s) => num(s.lines)),
    );
    this.#collected(
      'portcullis_log_lines_matched_total',
      "Log lines the jail's filter found a failure in.",
      'counter',
      perLogJail((s) => num(s.matches)),
    );
    this.#collected(
      'portcullis_log_lines_missed_total',
      'Log lines read that held no failure.',
      'counter',
      perLogJail((s) => Math.max(0, num(s.lines) - num(s.matches))),
    );
    const perFile = (pick: (file: Record<string, unknown>) => number | undefined) => () => {
      const samples: Sample[] = [];
      for (const [jail, stats] of logJails()) {
        const files = stats.files as Record<string, Record<string, unknown>> | undefined;
        if (files === undefined) continue;
        const entries = Object.entries(files).sort(([a], [b]) => a.localeCompare(b));
        let other: number | undefined;
        for (const [i, [file, fileStats]] of entries.entries()) {
          const value = pick(fileStats);
          if (value === undefined) continue;
          if (i < MAX_FILES_PER_JAIL) samples.push({ labels: { jail, file }, value });
          else other = (other ?? 0) + value;
        }
        if (other !== undefined) samples.push({ labels: { jail, file: OTHER }, value: other });
      }
      return samples;
    };
    this.#collected(
      'portcullis_log_file_lines_total',
      `Lines read per followed file (at most ${MAX_FILES_PER_JAIL} files per jail; the rest as file="other").`,
      'counter',
      perFile((f) => num(f.lines)),
    );
    this.#collected(
      'portcullis_log_follow_lag_bytes',
      'Bytes written to a followed file that are not read yet.',
      'gauge',
      perFile((f) => (typeof f.lagBytes === 'number' ? f.lagBytes : undefined)),
    );

    // Store.
    this.#collected(
      'portcullis_store_up',
      '1 when the store (SQLite, Redis) is reachable, else 0.',
      'gauge',
      () => [{ labels: { kind: this.#status().store.kind }, value: this.#status().store.available ? 1 : 0 }],
    );
    this.#collected(
      'portcullis_store_pending_writes',
      'Decisions waiting for an unreachable store.',
      'gauge',
      () => [{ value: this.#status().store.pendingWrites }],
    );
    if (options.store !== undefined) {
      this.#collected(
        'portcullis_store_reconnects_total',
        'Times the store came back after an outage.',
        'counter',
        () => [{ value: this.#store.reconnects }],
      );
      this.#collected(
        'portcullis_store_outages_total',
        'Times the store became unreachable.',
        'counter',
        () => [{ value: this.#store.outages }],
      );
    }

    // Actions (firewall, notifications): the runner's counters.
    const perAction = (key: string) => () =>
      Object.entries(this.#status().actions).map(([action, stats]) => ({
        labels: { action },
        value: num((stats as Record<string, unknown>)[key]),
      }));
    this.#collected(
      'portcullis_action_applies_total',
      'Decisions an action applied.',
      'counter',
      perAction('applied'),
    );
    this.#collected(
      'portcullis_action_reverts_total',
      'Decisions an action reverted.',
      'counter',
      perAction('reverted'),
    );
    this.#collected(
      'portcullis_action_failures_total',
      'Action calls that failed (retried).',
      'counter',
      perAction('failures'),
    );
    this.#collected(
      'portcullis_action_retries_total',
      'Action calls made again after a failure.',
      'counter',
      perAction('retries'),
    );
    this.#collected(
      'portcullis_action_pending',
      'Decisions waiting for an action.',
      'gauge',
      perAction('pending'),
    );

    // Packet watchers: every drop counter their stats carry (kernel and interface drops).
    this.#collected(
      'portcullis_packet_watcher_drops_total',
      'Packets the capture lost, per watcher and kind (kernel, interface, ...).',
      'counter',
      () => {
        const samples: Sample[] = [];
        for (const [source, stats] of Object.entries(this.#status().sources)) {
          if (!source.startsWith('packets')) continue;
          for (const [key, value] of Object.entries(stats as Record<string, unknown>)) {
            if (/drop/i.test(key) && typeof value === 'number')
              samples.push({ labels: { source, kind: key }, value });
          }
        }
        return samples;
      },
    );

    if (options.admin !== undefined) {
      const admin = options.admin;
      this.#collected(
        'portcullis_admin_auth_failures_total',
        'Wrong admin tokens received.',
        'counter',
        () => [{ value: admin().authFailures }],
      );
      this.#collected(
        'portcullis_admin_auth_blocked_clients',
        'Clients refused now after too many wrong tokens.',
        'gauge',
        () => [{ value: admin().authBlockedNow }],
      );
      this.#collected('portcullis_admin_event_streams', 'Open /v1/events streams.', 'gauge', () => [
        { value: admin().events.clients },
      ]);
      this.#collected(
        'portcullis_admin_event_streams_dropped_total',
        'Event streams dropped because the client did not read.',
        'counter',
        () => [{ value: admin().events.dropped }],
      );
    }
  }
}

/** Builds the metrics of a running instance. */
export function createMetrics(options: MetricsOptions): PortcullisMetrics {
  return new PortcullisMetrics(options);
}
