import type {
  PacketFilterEvent,
  PacketProto,
  ScanKind,
} from '../../detection/filters/fields/packet-fields.js';
import { type DecodedPacket, formatV4, formatV6, IpProto, TcpFlag } from './decode.js';

/** The addresses a watcher considers its own: only packets to them are inbound. */
export interface LocalAddresses {
  /** IPv4 addresses as unsigned integers. */
  readonly v4: ReadonlySet<number>;
  /** IPv6 addresses in RFC 5952 text (as `formatV6` writes them). */
  readonly v6: ReadonlySet<string>;
}

export interface PacketTrackerOptions {
  local: LocalAddresses;
  /** Ports whose SYNs are `syn` events and whose handshakes are followed; `null`: every port. */
  watchedPorts: Uint8Array | null;
  /** A SYN not followed by the client's ACK within this long is `half-open`, ms. Default 5000. */
  handshakeTimeoutMs?: number;
  /** A port stays "touched" by a client this long after its last probe, ms. Default 60000. */
  scanWindowMs?: number;
  /** Clients remembered (ports touched, packet counts); least recently active forgotten first. Default 16384. */
  maxSources?: number;
  /** Ports remembered per client; the oldest forgotten first. Default 1024. */
  maxPortsPerSource?: number;
  /**
   * Port entries remembered over all clients (about 80 bytes each, see README); past it the least
   * recently active clients are forgotten first. Default 1048576 (about 80 MB).
   */
  maxPortEntries?: number;
  /** Handshakes followed at once; the oldest dropped first (counted, not reported). Default 65536. */
  maxHalfOpen?: number;
  /** Outbound UDP flows remembered (so their replies are not probes). Default 65536. */
  maxFlows?: number;
  /** A `packet` event stands for this many packets of one client and protocol. Default 100. */
  packetBatch?: number;
  /** Where events go; called synchronously, in packet order. */
  emit: (event: PacketFilterEvent) => void;
}

/** Packets of a client counted towards a `packet` event are forgotten after this long without one. */
const PACKET_WINDOW_MS = 10_000;
/** A client's recency in the LRU is refreshed at most this often (a Map re-insert per packet costs). */
const REFRESH_MS = 1_000;

type Key = number | string;

interface SourceState {
  /** (protocol slot << 16 | port) → last touched, ms; in order of last touch. */
  ports: Map<number, number> | null;
  /** Packets counted per protocol slot (tcp, udp, icmp) since `countStart`. */
  counts: [number, number, number];
  countStart: number;
  touched: number;
}

interface HalfOpen {
  timeMs: number;
  src: Key;
  sport: number;
  dst: Key;
  dport: number;
  flags: number;
  /** A watched port: its end is a `half-open` event; on any port it may be a probe. */
  watched: boolean;
}

export interface PacketTrackerStats {
  inbound: number;
  outbound: number;
  events: { syn: number; 'half-open': number; probe: number; packet: number };
  /** Handshakes being followed, clients and outbound UDP flows remembered. */
  tracked: { halfOpen: number; sources: number; flows: number };
  /** Entries dropped to stay within the caps (a flood of spoofed sources shows here). */
  evicted: { halfOpen: number; sources: number; flows: number; ports: number };
  /** Port entries remembered over all clients (bounded by `maxPortEntries`). */
  portEntries: number;
}

const PROTOS: readonly PacketProto[] = ['tcp', 'udp', 'icmp'];
const { FIN, SYN, RST, PSH, ACK, URG } = TcpFlag;

/**
 * Turns decoded packets into packet events, in bounded memory whatever the traffic: every table
 * (clients, their ports, handshakes, UDP flows) has a cap and forgets its oldest entry first, so a
 * flood of spoofed sources costs at most the caps, and what it displaces is counted in `stats()`.
 *
 * - `syn`: an inbound SYN without ACK to a watched port (each one, retransmissions included).
 * - `half-open`: such a SYN whose handshake the client did not complete with an ACK within
 *   `handshakeTimeoutMs` (`ended: timeout`), or that the client reset instead (`ended: reset`,
 *   as a SYN scan does after the SYN-ACK). A handshake the host refused (its RST) is not one.
 * - `probe`: a port the client had not touched within `scanWindowMs`, by a SYN whose handshake
 *   did not complete (the host refused it with a RST: a closed port, counted at once; the client
 *   reset it after the SYN-ACK, as `-sS` does: at once; or no ACK within `handshakeTimeoutMs`: a
 *   filtered port), a TCP packet without SYN, ACK or RST (`-sN`, `-sF`, `-sX`) or a UDP datagram
 *   that is not a reply to one the host sent (`-sU`); `ports` is the distinct ports touched in
 *   the window. A completed connection (passive FTP data connections, a browser) is no probe.
 * - `packet`: every `packetBatch` inbound packets of one client and protocol within 10 s; UDP
 *   datagrams of a flow the host started (replies to its DNS queries, a QUIC download) are not
 *   counted.
 *
 * Inbound means "to a local address from another one" (loopback traffic, local to local, counts as
 * inbound); outbound packets only feed the handshake and UDP-reply tables.
 */
export class PacketTracker {
  #local: LocalAddresses;
  readonly #watched: Uint8Array | null;
  readonly #handshakeMs: number;
  readonly #windowMs: number;
  readonly #maxSources: number;
  readonly #maxPorts: number;
  readonly #maxPortEntries: number;
  /** Port entries over every client's `ports`. */
  #portEntries = 0;
  readonly #maxHalfOpen: number;
  readonly #maxFlows: number;
  readonly #batch: number;
  readonly #emit: (event: PacketFilterEvent) => void;
  readonly #sources = new Map<Key, SourceState>();
  /** (client, client port) → handshake; insertion order is SYN time order. */
  readonly #halfOpen = new Map<string, HalfOpen>();
  /** "remote|rport|lport" → last outbound datagram, ms; in order of last use. */
  readonly #flows = new Map<string, number>();
  readonly #stats: PacketTrackerStats = {
    inbound: 0,
    outbound: 0,
    events: { syn: 0, 'half-open': 0, probe: 0, packet: 0 },
    tracked: { halfOpen: 0, sources: 0, flows: 0 },
    evicted: { halfOpen: 0, sources: 0, flows: 0, ports: 0 },
    portEntries: 0,
  };

  constructor(options: PacketTrackerOptions) {
    this.#local = options.local;
    this.#watched = options.watchedPorts;
    this.#handshakeMs = options.handshakeTimeoutMs ?? 5_000;
    this.#windowMs = options.scanWindowMs ?? 60_000;
    this.#maxSources = options.maxSources ?? 16_384;
    this.#maxPorts = options.maxPortsPerSource ?? 1_024;
    this.#maxPortEntries = options.maxPortEntries ?? 1_048_576;
    this.#maxHalfOpen = options.maxHalfOpen ?? 65_536;
    this.#maxFlows = options.maxFlows ?? 65_536;
    this.#batch = options.packetBatch ?? 100;
    this.#emit = options.emit;
  }

  /**
   * Follows one decoded packet (`buf` is the frame it was decoded from) seen at `nowMs`. Returns
   * its direction as the tracker judged it.
   */
  onPacket(buf: Uint8Array, p: DecodedPacket, nowMs: number): 'in' | 'out' | 'other' {
    const v4 = p.family === 4;
    const dstText = v4 ? '' : formatV6(buf, p.dstOffset);
    const dstLocal = v4 ? this.#local.v4.has(p.dst4) : this.#local.v6.has(dstText);
    const srcText = v4 ? '' : formatV6(buf, p.srcOffset);
    const srcLocal = v4 ? this.#local.v4.has(p.src4) : this.#local.v6.has(srcText);
    const src: Key = v4 ? p.src4 : srcText;
    const dst: Key = v4 ? p.dst4 : dstText;
    if (srcLocal && (!dstLocal || p.direction === 'out')) {
      this.#stats.outbound++;
      this.#outbound(p, dst, nowMs);
      return 'out';
    }
    if (!dstLocal) return 'other';
    this.#stats.inbound++;
    this.#inbound(p, src, dst, nowMs);
    return 'in';
  }

  /** The addresses that are this host's, replaced (the host's interfaces changed). */
  setLocal(local: LocalAddresses): void {
    this.#local = local;
  }

  /** Reports the handshakes that timed out and forgets expired UDP flows. Call it now and then. */
  sweep(nowMs: number): void {
    for (const [key, entry] of this.#halfOpen) {
      if (nowMs - entry.timeMs < this.#handshakeMs) break;
      this.#halfOpen.delete(key);
      this.#unanswered(entry, 'timeout', nowMs);
    }
    for (const [key, time] of this.#flows) {
      if (nowMs - time < this.#windowMs) break;
      this.#flows.delete(key);
    }
  }

  stats(): PacketTrackerStats {
    const s = this.#stats;
    s.tracked.halfOpen = this.#halfOpen.size;
    s.tracked.sources = this.#sources.size;
    s.tracked.flows = this.#flows.size;
    s.portEntries = this.#portEntries;
    return s;
  }

  /** Forgets everything it follows (counters stay). */
  clear(): void {
    this.#sources.clear();
    this.#halfOpen.clear();
    this.#flows.clear();
    this.#portEntries = 0;
  }

  #outbound(p: DecodedPacket, dst: Key, nowMs: number): void {
    if (p.proto === IpProto.UDP && p.sport >= 0) {
      const key = `${dst}|${p.dport}|${p.sport}`;
      if (this.#flows.delete(key) === false && this.#flows.size >= this.#maxFlows) {
        this.#flows.delete(this.#flows.keys().next().value as string);
        this.#stats.evicted.flows++;
      }
      this.#flows.set(key, nowMs);
      return;
    }
    if (p.proto !== IpProto.TCP || p.dport < 0 || this.#halfOpen.size === 0) return;
    // The host refusing a handshake (RST to the client's SYN) ends it: a closed port, not
    // half-open, but a probe at once (nmap -sS and -sT against a closed port).
    if ((p.flags & RST) !== 0) {
      const key = halfOpenKey(dst, p.dport, p.sport);
      const entry = this.#halfOpen.get(key);
      if (entry !== undefined && entry.dport === p.sport && entry.src === dst) {
        this.#halfOpen.delete(key);
        this.#handshakeProbe(entry, nowMs);
      }
    }
  }

  #inbound(p: DecodedPacket, src: Key, dst: Key, nowMs: number): void {
    // A datagram of a flow the host started (a reply to its DNS query, a QUIC download) is
    // neither a probe nor counted towards a flood: the host asked for it.
    if (p.proto === IpProto.UDP && p.dport >= 0 && this.#flows.has(`${src}|${p.sport}|${p.dport}`)) return;
    const state = this.#source(src, nowMs);
    const slot =
      p.proto === IpProto.TCP
        ? 0
        : p.proto === IpProto.UDP
          ? 1
          : p.proto === IpProto.ICMP || p.proto === IpProto.ICMPV6
            ? 2
            : -1;
    if (slot >= 0) this.#count(state, slot, p, src, dst, nowMs);
    if (p.dport < 0) return;
    if (slot === 0) {
      const flags = p.flags;
      if ((flags & SYN) !== 0) {
        if ((flags & ACK) !== 0) return; // a SYN-ACK: the answer to a connection the host opened
        const watched = this.#watched === null || this.#watched[p.dport] === 1;
        if (watched) {
          this.#event({
            event: 'syn',
            ip: text(src),
            local: text(dst),
            proto: 'tcp',
            sport: p.sport,
            dport: p.dport,
            flags,
          });
        }
        // Whether it is a probe is known when the handshake ends: refused, reset or unanswered.
        this.#followHandshake(p, src, dst, nowMs, watched);
        return;
      }
      if ((flags & ACK) !== 0) {
        if (this.#halfOpen.size > 0) this.#completed(src, p, false, nowMs);
        return;
      }
      if ((flags & RST) !== 0) {
        if (this.#halfOpen.size > 0) this.#completed(src, p, true, nowMs);
        return;
      }
      // No SYN, ACK or RST: no connection sends this. nmap's NULL, FIN and Xmas scans do.
      const kind: ScanKind =
        flags === 0
          ? 'none'
          : flags === FIN
            ? 'fin'
            : (flags & (FIN | PSH | URG)) === (FIN | PSH | URG)
              ? 'xmas'
              : 'other';
      this.#probe(state, 0, src, dst, p.sport, p.dport, flags, kind, nowMs);
      return;
    }
    if (slot === 1) this.#probe(state, 1, src, dst, p.sport, p.dport, undefined, 'udp', nowMs);
  }

  /** The client's state, created (the least recently active client forgotten at the cap) or refreshed. */
  #source(src: Key, nowMs: number): SourceState {
    let state = this.#sources.get(src);
    if (state === undefined) {
      if (this.#sources.size >= this.#maxSources) this.#evictOldestSource();
      state = { ports: null, counts: [0, 0, 0], countStart: nowMs, touched: nowMs };
      this.#sources.set(src, state);
    } else if (nowMs - state.touched >= REFRESH_MS) {
      state.touched = nowMs;
      this.#sources.delete(src);
      this.#sources.set(src, state);
    }
    return state;
  }

  #count(state: SourceState, slot: number, p: DecodedPacket, src: Key, dst: Key, nowMs: number): void {
    if (nowMs - state.countStart >= PACKET_WINDOW_MS) {
      state.counts[0] = 0;
      state.counts[1] = 0;
      state.counts[2] = 0;
      state.countStart = nowMs;
    }
    const counts = state.counts;
    counts[slot] = (counts[slot] as number) + 1;
    if ((counts[slot] as number) < this.#batch) return;
    counts[slot] = 0;
    this.#event({
      event: 'packet',
      ip: text(src),
      local: text(dst),
      proto: PROTOS[slot] as PacketProto,
      dport: p.dport < 0 ? undefined : p.dport,
      sport: p.sport < 0 ? undefined : p.sport,
      flags: slot === 0 ? p.flags : undefined,
      packets: this.#batch,
    });
  }

  /** Forgets the least recently active client (and its port entries). */
  #evictOldestSource(): void {
    const oldest = this.#sources.entries().next().value as [Key, SourceState];
    this.#sources.delete(oldest[0]);
    this.#portEntries -= oldest[1].ports?.size ?? 0;
    this.#stats.evicted.sources++;
  }

  #probe(
    state: SourceState,
    slot: number,
    src: Key,
    dst: Key,
    sport: number,
    dport: number,
    flags: number | undefined,
    scan: ScanKind,
    nowMs: number,
  ): void {
    let ports = state.ports;
    if (ports === null) {
      ports = new Map();
      state.ports = ports;
    }
    for (const [port, time] of ports) {
      if (nowMs - time < this.#windowMs) break;
      ports.delete(port);
      this.#portEntries--;
    }
    const key = (slot << 16) | dport;
    const seen = ports.delete(key);
    ports.set(key, nowMs);
    if (seen) return;
    this.#portEntries++;
    if (ports.size > this.#maxPorts) {
      ports.delete(ports.keys().next().value as number);
      this.#portEntries--;
      this.#stats.evicted.ports++;
    }
    const distinct = ports.size;
    // The global budget: the least recently active clients go first, this one's oldest ports last.
    while (this.#portEntries > this.#maxPortEntries) {
      const oldest = this.#sources.values().next().value as SourceState;
      if (oldest === state) {
        ports.delete(ports.keys().next().value as number);
        this.#portEntries--;
        this.#stats.evicted.ports++;
      } else this.#evictOldestSource();
    }
    this.#event({
      event: 'probe',
      ip: text(src),
      local: text(dst),
      proto: PROTOS[slot] as PacketProto,
      sport,
      dport,
      flags,
      scan,
      ports: distinct,
    });
  }

  #followHandshake(p: DecodedPacket, src: Key, dst: Key, nowMs: number, watched: boolean): void {
    const key = halfOpenKey(src, p.sport, p.dport);
    if (this.#halfOpen.has(key)) return; // a retransmission: the first SYN's clock keeps running
    if (this.#halfOpen.size >= this.#maxHalfOpen) {
      this.#halfOpen.delete(this.#halfOpen.keys().next().value as string);
      this.#stats.evicted.halfOpen++;
    }
    this.#halfOpen.set(key, {
      timeMs: nowMs,
      src,
      sport: p.sport,
      dst,
      dport: p.dport,
      flags: p.flags,
      watched,
    });
  }

  /** The client's ACK (completed) or RST (abandoned) for a handshake being followed. */
  #completed(src: Key, p: DecodedPacket, reset: boolean, nowMs: number): void {
    const key = halfOpenKey(src, p.sport, p.dport);
    const entry = this.#halfOpen.get(key);
    if (entry === undefined) return;
    this.#halfOpen.delete(key);
    if (reset) this.#unanswered(entry, 'reset', nowMs);
  }

  /** A handshake the client did not complete: a probe of its port, and `half-open` on a watched one. */
  #unanswered(entry: HalfOpen, ended: 'timeout' | 'reset', nowMs: number): void {
    if (entry.watched) this.#emitHalfOpen(entry, ended);
    this.#handshakeProbe(entry, nowMs);
  }

  /** The port of a SYN whose handshake did not complete, as a probe. */
  #handshakeProbe(entry: HalfOpen, nowMs: number): void {
    const state = this.#source(entry.src, nowMs);
    this.#probe(state, 0, entry.src, entry.dst, entry.sport, entry.dport, entry.flags, 'syn', nowMs);
  }

  #emitHalfOpen(entry: HalfOpen, ended: 'timeout' | 'reset'): void {
    this.#event({
      event: 'half-open',
      ip: text(entry.src),
      local: text(entry.dst),
      proto: 'tcp',
      sport: entry.sport,
      dport: entry.dport,
      flags: entry.flags,
      ended,
    });
  }

  #event(event: PacketFilterEvent): void {
    this.#stats.events[event.event]++;
    this.#emit(event);
  }
}

/** A handshake's key: the client and its port (48 bits for IPv4: an exact number). */
/**
 * A handshake by both ports: nmap's SYN scan sends every probe from one source port, so a key
 * without the destination port took each new probe for a retransmission of the first, and one
 * RST missed by the capture stalled the whole scan's detection until that handshake timed out.
 */
function halfOpenKey(src: Key, sport: number, dport: number): string {
  return `${src}|${sport}|${dport}`;
}

function text(key: Key): string {
  return typeof key === 'number' ? formatV4(key) : key;
}

/** A 65 536-entry membership table of ports, from `[from, to]` ranges; `null` for none (every port). */
export function portTable(ranges: readonly (readonly [number, number])[] | null): Uint8Array | null {
  if (ranges === null) return null;
  const table = new Uint8Array(65_536);
  for (const [from, to] of ranges)
    for (let port = Math.max(0, from); port <= Math.min(65_535, to); port++) table[port] = 1;
  return table;
}
