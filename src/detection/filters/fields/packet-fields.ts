import { defineFieldCatalogue } from './catalogue.js';

/**
 * A packet watcher's event, as packet filters read it: `syn` for a connection attempt, `scan`
 * when one client has touched many ports, `flood` when it sends too many packets. Provisional:
 * the watcher defines the exact meaning of each count.
 */
export interface PacketFilterEvent {
  readonly event: 'syn' | 'scan' | 'flood';
  /** The destination port (for `scan`, the last one probed). */
  readonly dport?: number | undefined;
  /** `tcp`, `udp` or `icmp`. */
  readonly proto?: 'tcp' | 'udp' | 'icmp' | undefined;
  /** Distinct ports the client probed within the watcher's window (`scan`). */
  readonly ports?: number | undefined;
}

/** The fields of packet-watcher events: `{ event: scan, ports: { gte: 20 } }`. */
export const PACKET_FIELDS = defineFieldCatalogue<PacketFilterEvent>('packets', {
  event: {
    type: 'keyword',
    values: ['syn', 'scan', 'flood'],
    description: '`syn` (a connection attempt), `scan` (many ports) or `flood` (too many packets).',
    get: (e) => e.event,
  },
  dport: {
    type: 'number',
    integer: true,
    min: 0,
    max: 65_535,
    expected: 'a port like 22, a list like [80, 443], a range like "8000-8999" or { gte: 1024 }',
    description: 'The destination port.',
    get: (e) => e.dport,
  },
  proto: {
    type: 'keyword',
    values: ['tcp', 'udp', 'icmp'],
    fold: 'lower',
    description: 'The protocol: tcp, udp or icmp (case-insensitive).',
    get: (e) => e.proto,
  },
  ports: {
    type: 'number',
    integer: true,
    min: 0,
    expected: 'a count like 20, a range like "10-100" or { gte: 20 }',
    description: 'Distinct ports the client probed within the watcher window (scan events).',
    get: (e) => e.ports,
  },
});
