import { defineFieldCatalogue } from './catalogue.js';

/** What a packet watcher saw (see `src/sources/packets/tracker.ts` for each one's exact rule). */
export type PacketEventKind = 'syn' | 'half-open' | 'probe' | 'packet';

/** The transport protocol of a packet event (ICMPv6 is `icmp`). */
export type PacketProto = 'tcp' | 'udp' | 'icmp';

/**
 * How a probe touched its port: nmap's `-sS`/`-sT` (`syn`), `-sN` (`none`: no flags; not `null`,
 * which YAML reads as nothing), `-sF` (`fin`), `-sX` (`xmas`), `-sU` (`udp`).
 */
export type ScanKind = 'syn' | 'none' | 'fin' | 'xmas' | 'udp' | 'other';

/** TCP flag bits, as the `syn` ... `urg` fields read them. */
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;

/**
 * A packet watcher's event, as packet filters read it: `syn` for a connection attempt (SYN
 * without ACK) to a watched port, `half-open` for a SYN whose handshake did not complete, `probe`
 * for a port the client had not touched within the watcher's scan window (a port scan, any
 * kind), and `packet` for every `packets` inbound packets of one client and protocol (floods).
 * Fields a kind of event does not have are `undefined`.
 */
export interface PacketFilterEvent {
  readonly event: PacketEventKind;
  /** The client: the packet's source address. */
  readonly ip: string;
  /** The packet's destination: one of the watcher's local addresses. */
  readonly local?: string | undefined;
  /** The destination port (ICMP: none). */
  readonly dport?: number | undefined;
  /** The source port (ICMP: none). */
  readonly sport?: number | undefined;
  readonly proto?: PacketProto | undefined;
  /** The TCP flags of the packet (FIN 0x01 ... URG 0x20); none for UDP and ICMP. */
  readonly flags?: number | undefined;
  /** `probe` events: how the port was touched. */
  readonly scan?: ScanKind | undefined;
  /** `probe` events: distinct ports (per protocol) the client touched within the scan window. */
  readonly ports?: number | undefined;
  /** `packet` events: packets this event stands for; a jail counts it as that many failures. */
  readonly packets?: number | undefined;
  /** `half-open` events: `timeout` (no ACK in time) or `reset` (the client reset it). */
  readonly ended?: 'timeout' | 'reset' | undefined;
}

const PORT = 'a port like 22, a list like [80, 443], a range like "8000-8999" or { gte: 1024 }';
const COUNT = 'a count like 20, a range like "10-100" or { gte: 20 }';
const flag = (bit: number) => (e: PacketFilterEvent) =>
  e.flags === undefined ? undefined : (e.flags & bit) !== 0;

/**
 * The fields of packet-watcher events, as `filter:` names them:
 *
 * ```yaml
 * filter: { event: probe }                              # every new port a client touches
 * filter: { event: half-open, dport: [22, 443] }
 * filter: { event: packet, proto: udp }                 # counted per packet (weight)
 * filter: { event: probe, scan: [none, fin, xmas] }
 * filter: { event: syn, dport: 22 }
 * ```
 */
export const PACKET_FIELDS = defineFieldCatalogue<PacketFilterEvent>('packets', {
  event: {
    type: 'keyword',
    values: ['syn', 'half-open', 'probe', 'packet'],
    description:
      '`syn` (a SYN to a watched port), `half-open` (a handshake that did not complete), `probe` (a port new for the client within the scan window) or `packet` (every N packets of a client).',
    get: (e) => e.event,
  },
  dport: {
    type: 'number',
    integer: true,
    min: 0,
    max: 65_535,
    expected: PORT,
    description: 'The destination port (none for ICMP).',
    get: (e) => e.dport,
  },
  proto: {
    type: 'keyword',
    values: ['tcp', 'udp', 'icmp'],
    fold: 'lower',
    description: 'The protocol: tcp, udp or icmp (ICMPv6 included; case-insensitive).',
    get: (e) => e.proto,
  },
  ports: {
    type: 'number',
    integer: true,
    min: 0,
    expected: COUNT,
    description: 'Distinct ports the client touched within the scan window (probe events).',
    get: (e) => e.ports,
  },
  ip: {
    type: 'keyword',
    description: 'The client (source) address; exact, a list, or { match: "<regex>" }.',
    get: (e) => e.ip,
  },
  local: {
    type: 'keyword',
    description: 'The local (destination) address the packet was sent to.',
    get: (e) => e.local,
  },
  sport: {
    type: 'number',
    integer: true,
    min: 0,
    max: 65_535,
    expected: PORT,
    description: 'The source port (none for ICMP).',
    get: (e) => e.sport,
  },
  packets: {
    type: 'number',
    integer: true,
    min: 0,
    expected: COUNT,
    description: 'Packets a packet event stands for (it counts as that many failures).',
    get: (e) => e.packets,
  },
  scan: {
    type: 'keyword',
    values: ['syn', 'none', 'fin', 'xmas', 'udp', 'other'],
    description:
      'How a probe touched its port: syn (SYN scans and connects), none (no flags: NULL scans), fin, xmas (FIN+PSH+URG), udp, other flags without ACK.',
    get: (e) => e.scan,
  },
  ended: {
    type: 'keyword',
    values: ['timeout', 'reset'],
    description: 'How a half-open handshake ended: timeout (no ACK in time) or reset (by the client).',
    get: (e) => e.ended,
  },
  syn: { type: 'boolean', description: 'The TCP SYN flag.', get: flag(SYN) },
  ack: { type: 'boolean', description: 'The TCP ACK flag.', get: flag(ACK) },
  fin: { type: 'boolean', description: 'The TCP FIN flag.', get: flag(FIN) },
  rst: { type: 'boolean', description: 'The TCP RST flag.', get: flag(RST) },
  psh: { type: 'boolean', description: 'The TCP PSH flag.', get: flag(PSH) },
  urg: { type: 'boolean', description: 'The TCP URG flag.', get: flag(URG) },
});
