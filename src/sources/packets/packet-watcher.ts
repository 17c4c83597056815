import type { PacketWatcherConfig } from '../../config/packets.js';
import { parseIp } from '../../core/ip.js';
import type { EventFields, ReportResult } from '../../core/types.js';
import { type CompiledFieldFilter, compileFieldFilter } from '../../detection/filters/fields/compile.js';
import type { FieldFilterSpec } from '../../detection/filters/fields/filter-schema.js';
import { PACKET_FIELDS, type PacketFilterEvent } from '../../detection/filters/fields/packet-fields.js';
import { DistinctTracker } from '../../detection/filters/http/distinct.js';
import { hostAddresses } from '../../detection/jails/jail.js';
import type { SourceFactory } from '../registry.js';
import type { Source, SourceContext } from '../source.js';
import {
  Capture,
  CaptureError,
  loadBinding,
  loadPcapBinding,
  type PcapBinding,
  type PcapLoader,
} from './capture.js';
import { createDecodedPacket, type DecodeStatus, decodePacket, formatV6, IpProto } from './decode.js';
import { type LocalAddresses, PacketTracker, type PacketTrackerStats, portTable } from './tracker.js';

export interface PacketWatcherOptions {
  /** Loads the `pcap` binding. Default: `require('pcap')` (tests inject a failing one). */
  loader?: PcapLoader;
  /** The host's addresses, when the watcher has no `local:`. Default: `os.networkInterfaces()`. */
  hostAddresses?: () => readonly string[];
  /** How often kernel drop counters are read, ms. Default 5000. */
  statsIntervalMs?: number;
  /** Reports to the jails in flight at once; past it, events are dropped (and counted). Default 4096. */
  maxPendingReports?: number;
  /** After reads keep failing (the interface went away), how often it is opened again, ms. Default 5000. */
  reopenIntervalMs?: number;
  /** Without `local:`, how often the host's addresses are read again, ms. Default 30000. */
  localRefreshMs?: number;
}

/** Consecutive failed reads after which the capture is closed and opened again. */
const READ_ERRORS_BEFORE_REOPEN = 10;

/** What a watcher is doing. */
export type PacketWatcherState = 'starting' | 'running' | 'degraded' | 'failed' | 'closed';

export interface PacketWatcherStats {
  state: PacketWatcherState;
  interface: string;
  /** The link type libpcap opened (`LINKTYPE_ETHERNET`, ...). */
  link?: string;
  /** Why the watcher is failed or degraded, and what to do about it. */
  error?: string;
  packets: { seen: number; decoded: number; tcp: number; udp: number; icmp: number; other: number };
  /** Frames not decoded, by reason (never an error: counted and skipped). */
  skipped: { truncated: number; notIp: number; malformed: number; unsupported: number };
  /** Kernel counters (`pcap_stats`): passed by the filter, dropped (ring full), dropped by the interface. */
  kernel: { received: number; dropped: number; interfaceDropped: number };
  tracker: PacketTrackerStats;
  reports: { sent: number; dropped: number; alreadyBanned: number; bans: number; errors: number };
}

interface PacketJail {
  name: string;
  dryRun: boolean;
  filter: CompiledFieldFilter<PacketFilterEvent>;
  distinct: DistinctTracker | undefined;
}

const compiled = new WeakMap<FieldFilterSpec, CompiledFieldFilter<PacketFilterEvent>>();

/**
 * The packet watchers of the configuration (`packets:`), one source each. A watcher with no jail
 * still runs (its stats say what it sees).
 */
export function packetSources(options: PacketWatcherOptions = {}): SourceFactory {
  return {
    kind: 'packets',
    create(context: SourceContext): Source[] {
      return (context.config.packets ?? []).map((config) => new PacketWatcher(context, config, options));
    },
  };
}

/**
 * A packet watcher (`packets:NAME`): captures on one interface through libpcap, decodes each frame
 * (`decode.ts`), turns packets into events (`tracker.ts`) and reports those its jails' filters
 * match, through the same ports as every source. It only watches: the bans it causes are enforced
 * by the proxy, the TCP guard and the firewall actions, which read the shared decisions.
 *
 * A watcher that cannot capture (no `pcap` module, no libpcap, no permission, no such interface,
 * a filter libpcap refuses) does not stop portcullis: `start()` resolves, the error and its remedy
 * are logged, and `stats()` says `failed` with the reason. A reload (SIGHUP) tries again.
 */
export class PacketWatcher implements Source {
  readonly kind = 'packets';
  readonly name: string;
  readonly #context: SourceContext;
  readonly #config: PacketWatcherConfig;
  readonly #options: PacketWatcherOptions;
  readonly #decoded = createDecodedPacket();
  readonly #tracker: PacketTracker;
  #capture: Capture | undefined;
  #jails: PacketJail[] = [];
  #statsTimer: NodeJS.Timeout | undefined;
  #linkType = -1;
  #now = 0;
  /** The capture time of the first packet of the current read (-1: none yet), and the clock then. */
  #readStartTs = -1;
  #readStartMs = 0;
  #lastSweepMs = 0;
  #localTimer: NodeJS.Timeout | undefined;
  #pending = 0;
  #drained: (() => void) | undefined;
  #lastDropped = 0;
  #lastDropLogMs = 0;
  #readError = false;
  #readErrors = 0;
  #reopenTimer: NodeJS.Timeout | undefined;
  #binding: PcapBinding | undefined;
  #handlerError = false;
  readonly #stats: PacketWatcherStats;

  constructor(context: SourceContext, config: PacketWatcherConfig, options: PacketWatcherOptions = {}) {
    this.#context = context;
    this.#config = config;
    this.#options = options;
    this.name = `packets:${config.name}`;
    const local = localAddresses(config.local ?? this.#hostAddresses());
    this.#tracker = new PacketTracker({
      local,
      watchedPorts: portTable(config.ports),
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      scanWindowMs: config.scanWindowMs,
      maxSources: config.maxSources,
      maxPortsPerSource: config.maxPortsPerSource,
      maxPortEntries: config.maxPortEntries,
      maxHalfOpen: config.maxHalfOpen,
      packetBatch: config.packetBatch,
      emit: (event) => this.#judge(event),
    });
    this.#stats = {
      state: 'starting',
      interface: config.interface,
      packets: { seen: 0, decoded: 0, tcp: 0, udp: 0, icmp: 0, other: 0 },
      skipped: { truncated: 0, notIp: 0, malformed: 0, unsupported: 0 },
      kernel: { received: 0, dropped: 0, interfaceDropped: 0 },
      tracker: this.#tracker.stats(),
      reports: { sent: 0, dropped: 0, alreadyBanned: 0, bans: 0, errors: 0 },
    };
  }

  #hostAddresses(): readonly string[] {
    return (this.#options.hostAddresses ?? hostAddresses)();
  }

  /** The configuration this watcher runs. */
  get config(): PacketWatcherConfig {
    return this.#config;
  }

  async start(): Promise<void> {
    this.#jails = this.#buildJails();
    const where = `packets.${this.#config.name}`;
    try {
      this.#binding = loadBinding(this.#options.loader ?? loadPcapBinding);
      this.#now = this.#context.clock.now();
      this.#capture = this.#open(this.#binding);
    } catch (error) {
      const failure =
        error instanceof CaptureError
          ? error
          : new CaptureError(
              'other',
              `${where}: cannot capture (${(error as Error).message})`,
              'see the error',
              error,
            );
      this.#stats.state = 'failed';
      this.#stats.error = failure.message;
      this.#context.logger.error(
        {
          event: 'packets-unavailable',
          watcher: this.#config.name,
          interface: this.#config.interface,
          problem: failure.problem,
          code: failure.code,
          help: failure.help,
        },
        `packet watcher ${this.#config.name} is not running: ${failure.message}`,
      );
      return;
    }
    this.#linkType = this.#capture.linkType;
    this.#stats.link = this.#capture.linkName;
    this.#stats.state = 'running';
    if (this.#linkType < 0 || !KNOWN_LINKS.has(this.#linkType)) {
      this.#context.logger.warn(
        { event: 'packets-link', watcher: this.#config.name, link: this.#capture.linkName },
        `packet watcher ${this.#config.name}: link type ${this.#capture.linkName} is not decoded; every frame will be skipped`,
      );
    }
    this.#statsTimer = setInterval(() => this.#readKernelStats(), this.#options.statsIntervalMs ?? 5_000);
    this.#statsTimer.unref();
    // Without `local:`, addresses added later (DHCP, a new IPv6 prefix) must count as the host's,
    // and so must those of a link that had no carrier yet at start: Node lists only interfaces
    // that are up and running, so a watcher started with the network (at boot, in a fresh
    // namespace) saw none of them. Reading them is one getifaddrs() call: every 2 s.
    if (this.#config.local === null) {
      this.#localTimer = setInterval(() => {
        try {
          this.#tracker.setLocal(localAddresses(this.#hostAddresses()));
        } catch (error) {
          this.#context.reportError(error as Error);
        }
      }, this.#options.localRefreshMs ?? 2_000);
      this.#localTimer.unref();
    }
    this.#context.logger.info(
      {
        event: 'packets-started',
        watcher: this.#config.name,
        interface: this.#config.interface,
        filter: this.#config.filter,
        link: this.#capture.linkName,
        jails: this.#jails.map((jail) => jail.name),
      },
      `packet watcher ${this.#config.name} capturing on ${this.#config.interface} (${this.#capture.linkName}) for ${this.#jails.length} jail(s)`,
    );
  }

  /** Opens the capture (throws a {@link CaptureError}). */
  #open(binding: PcapBinding): Capture {
    return new Capture(binding, {
      device: this.#config.interface,
      filter: this.#config.filter,
      bufferSize: this.#config.bufferSize,
      snapLength: this.#config.snaplen,
      pollIntervalMs: this.#config.pollIntervalMs,
      where: `packets.${this.#config.name}`,
      onPacket: (buffer, caplen, _wire, timeMs) => this.#onPacket(buffer, caplen, timeMs),
      onPoll: (result) => this.#onPoll(result),
      onWarning: (message) =>
        this.#context.logger.debug(
          { event: 'packets-warning', watcher: this.#config.name, message },
          message,
        ),
    });
  }

  /** Reads keep failing (the interface was removed): the capture is closed and opened again until it opens. */
  #reopenLater(): void {
    this.#capture?.close();
    this.#capture = undefined;
    const binding = this.#binding as PcapBinding;
    this.#reopenTimer = setInterval(() => {
      try {
        this.#capture = this.#open(binding);
      } catch (error) {
        this.#stats.error = `${(error as Error).message} (tried again every ${(this.#options.reopenIntervalMs ?? 5_000) / 1000} s)`;
        return;
      }
      clearInterval(this.#reopenTimer);
      this.#reopenTimer = undefined;
      // Counters start again with the new handle; the first read that works says it is back.
      this.#lastDropped = 0;
      this.#readErrors = 0;
    }, this.#options.reopenIntervalMs ?? 5_000);
    this.#reopenTimer.unref();
  }

  #recovered(): void {
    this.#readError = false;
    this.#readErrors = 0;
    this.#stats.state = 'running';
    delete this.#stats.error;
    this.#context.logger.info(
      { event: 'packets-read-resumed', watcher: this.#config.name },
      `packet watcher ${this.#config.name}: capturing again`,
    );
  }

  async close(): Promise<void> {
    if (this.#stats.state === 'closed') return;
    this.#stats.state = 'closed';
    clearInterval(this.#statsTimer);
    this.#statsTimer = undefined;
    clearInterval(this.#localTimer);
    this.#localTimer = undefined;
    clearInterval(this.#reopenTimer);
    this.#reopenTimer = undefined;
    if (this.#capture !== undefined) {
      this.#readKernelStats();
      this.#capture.close();
      const { packets, kernel, reports } = this.#stats;
      this.#context.logger.info(
        {
          event: 'packets-stats',
          watcher: this.#config.name,
          packets,
          kernel,
          reports,
          tracker: this.#tracker.stats(),
        },
        `packet watcher ${this.#config.name} stopped: ${packets.seen} packet(s) seen, ${packets.decoded} decoded, ${kernel.dropped + kernel.interfaceDropped} dropped by the kernel, ${reports.bans} ban(s)`,
      );
    }
    this.#tracker.clear();
    // The reports made so far reach the guard (and the store) before the caller closes it.
    if (this.#pending > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
  }

  async reload(): Promise<boolean> {
    const next = this.#context.config.packets?.find((watcher) => watcher.name === this.#config.name);
    if (next === undefined || JSON.stringify(next) !== JSON.stringify(this.#config)) return false;
    // A watcher that is not capturing starts again: the reload is how an operator retries.
    if (this.#stats.state === 'failed' || this.#stats.state === 'degraded') return false;
    this.#jails = this.#buildJails();
    return true;
  }

  stats(): PacketWatcherStats {
    this.#stats.tracker = this.#tracker.stats();
    return this.#stats;
  }

  /** The jails of this watcher, from the configuration in force. */
  #buildJails(): PacketJail[] {
    const out: PacketJail[] = [];
    for (const config of this.#context.config.jails) {
      if (!config.enabled || config.source.kind !== 'packets') continue;
      if ((config.source as { watcher: string }).watcher !== this.#config.name) continue;
      const spec = config.packetFilter;
      if (spec == null || !this.#context.jails.has(config.name)) continue;
      let filter = compiled.get(spec);
      if (filter === undefined) {
        filter = compileFieldFilter(PACKET_FIELDS, spec);
        compiled.set(spec, filter);
      }
      out.push({
        name: config.name,
        dryRun: config.dryRun,
        filter,
        distinct:
          filter.distinct === undefined ? undefined : new DistinctTracker({ windowMs: config.findTimeMs }),
      });
    }
    return out;
  }

  #onPacket(buffer: Buffer, caplen: number, timeMs: number): void {
    // This runs inside libpcap's callback: a throw here would be fatal to the process.
    try {
      // One read can last long (the binding reads until the ring is empty, so a flood keeps it
      // going): the time moves with the packets' capture times, from the clock at the read's
      // first packet, and handshakes time out on the way.
      if (this.#readStartTs < 0) {
        this.#readStartTs = timeMs;
        this.#readStartMs = this.#context.clock.now();
        this.#now = this.#readStartMs;
      } else if (timeMs > this.#readStartTs) {
        this.#now = this.#readStartMs + (timeMs - this.#readStartTs);
        if (this.#now - this.#lastSweepMs >= this.#config.pollIntervalMs) {
          this.#lastSweepMs = this.#now;
          this.#tracker.sweep(this.#now);
        }
      }
      const stats = this.#stats.packets;
      stats.seen++;
      const status: DecodeStatus = decodePacket(buffer, caplen, this.#linkType, this.#decoded);
      if (status !== 'ok') {
        const skipped = this.#stats.skipped;
        if (status === 'truncated') skipped.truncated++;
        else if (status === 'not-ip') skipped.notIp++;
        else if (status === 'malformed') skipped.malformed++;
        else skipped.unsupported++;
        return;
      }
      stats.decoded++;
      const proto = this.#decoded.proto;
      if (proto === IpProto.TCP) stats.tcp++;
      else if (proto === IpProto.UDP) stats.udp++;
      else if (proto === IpProto.ICMP || proto === IpProto.ICMPV6) stats.icmp++;
      else stats.other++;
      this.#tracker.onPacket(buffer, this.#decoded, this.#now);
    } catch (error) {
      if (!this.#handlerError) {
        this.#handlerError = true;
        this.#context.reportError(error as Error);
      }
    }
  }

  #onPoll(result: number): void {
    this.#now = this.#context.clock.now();
    this.#readStartTs = -1;
    if (result < 0) {
      if (!this.#readError) {
        this.#readError = true;
        this.#stats.state = 'degraded';
        this.#stats.error = `reading the capture on ${this.#config.interface} failed (the interface went away)`;
        this.#context.logger.error(
          { event: 'packets-read-error', watcher: this.#config.name, interface: this.#config.interface },
          `packet watcher ${this.#config.name}: ${this.#stats.error}; it is opened again until it opens`,
        );
      }
      if (++this.#readErrors === READ_ERRORS_BEFORE_REOPEN) this.#reopenLater();
      return;
    }
    if (this.#readError) this.#recovered();
    this.#lastSweepMs = this.#now;
    this.#tracker.sweep(this.#now);
  }

  /** Kernel counters; a warning when drops start (and at most once a minute while they go on). */
  #readKernelStats(): void {
    const kernel = this.#capture?.stats();
    if (kernel === undefined) return;
    this.#stats.kernel = kernel;
    const dropped = kernel.dropped + kernel.interfaceDropped;
    if (dropped > this.#lastDropped) {
      const now = this.#context.clock.now();
      if (this.#lastDropped === 0 || now - this.#lastDropLogMs >= 60_000) {
        this.#lastDropLogMs = now;
        this.#context.logger.warn(
          { event: 'packets-dropped', watcher: this.#config.name, ...kernel },
          `packet watcher ${this.#config.name}: the kernel dropped ${dropped - this.#lastDropped} packet(s) (${dropped} in all): the watcher is not keeping up; raise buffer_size or narrow the filter`,
        );
      }
      this.#lastDropped = dropped;
    }
  }

  /** An event from the tracker: every jail whose filter matches counts it. */
  #judge(event: PacketFilterEvent): void {
    if (this.#jails.length === 0) return;
    let banned: boolean | undefined;
    for (const jail of this.#jails) {
      if (!jail.filter.matches(event)) continue;
      if (
        jail.distinct !== undefined &&
        !jail.distinct.isNew(event.ip, jail.filter.distinctValue(event), this.#now)
      )
        continue;
      // A banned client's flood costs a lookup, not a report per packet.
      if (!jail.dryRun) {
        banned ??= this.#context.isBanned(event.ip);
        if (banned) {
          this.#stats.reports.alreadyBanned++;
          continue;
        }
      }
      this.#report(jail, event);
    }
  }

  #report(jail: PacketJail, event: PacketFilterEvent): void {
    const reports = this.#stats.reports;
    if (this.#pending >= (this.#options.maxPendingReports ?? 4_096)) {
      reports.dropped++;
      return;
    }
    this.#pending++;
    reports.sent++;
    let result: Promise<ReportResult>;
    try {
      result = this.#context.report(event.ip, {
        jail: jail.name,
        weight: event.packets ?? 1,
        timeMs: this.#now,
        fields: eventFields(event),
      });
    } catch (error) {
      this.#settled();
      reports.errors++;
      this.#context.reportError(error as Error);
      return;
    }
    result.then(
      (outcome) => {
        if (outcome.outcome === 'banned' || outcome.outcome === 'would-ban') reports.bans++;
        else if (outcome.outcome === 'already-banned') reports.alreadyBanned++;
        this.#settled();
      },
      (error: unknown) => {
        reports.errors++;
        this.#settled();
        // A jail removed by a reload between the match and the report is not worth an alarm.
        if ((error as { code?: string })?.code !== 'PC_ERR_UNKNOWN_JAIL')
          this.#context.reportError(error as Error);
      },
    );
  }

  #settled(): void {
    this.#pending--;
    if (this.#pending === 0 && this.#drained !== undefined) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }
}

/** Link types `decode.ts` reads. */
const KNOWN_LINKS = new Set([0, 1, 12, 14, 101, 108, 113, 228, 229, 276]);

/** The evidence a report carries (reason, logs, dry-run lines). */
function eventFields(event: PacketFilterEvent): EventFields {
  return {
    event: event.event,
    proto: event.proto,
    dport: event.dport,
    local: event.local,
    ...(event.scan === undefined ? {} : { scan: event.scan }),
    ...(event.ports === undefined ? {} : { ports: event.ports }),
    ...(event.packets === undefined ? {} : { packets: event.packets }),
    ...(event.ended === undefined ? {} : { ended: event.ended }),
  };
}

/** The addresses as the tracker compares them (garbage ignored: the config layer refused it). */
export function localAddresses(addresses: readonly string[]): LocalAddresses {
  const v4 = new Set<number>();
  const v6 = new Set<string>();
  for (const text of addresses) {
    const parsed = parseIp(text);
    if (parsed === null) continue;
    if (parsed.family === 4) v4.add(parsed.v4);
    else v6.add(formatV6(parsed.bytes, 0));
  }
  return { v4, v6 };
}
