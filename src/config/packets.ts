import * as z from 'zod';
import { DURATION_PATTERN, formatDuration, parseDuration } from '../core/duration.js';
import { parseIp } from '../core/ip.js';
import {
  type FieldFilterSpec,
  fieldFilterWarnings,
  validateFieldFilter,
} from '../detection/filters/fields/filter-schema.js';
import { PACKET_FIELDS } from '../detection/filters/fields/packet-fields.js';
import { formatV4, formatV6 } from '../sources/packets/decode.js';
import {
  bundledSocketRules,
  loadSocketRule,
  type SocketRule,
  SocketRuleError,
  type SocketRuleKind,
} from '../sources/socket/socket-rules.js';

/**
 * The `packets:` section (packet watchers on libpcap) and the side of a jail that reads them
 * (`source: { packets: NAME }`): the schema, every default, and the bundled packet rules of
 * `rules/socket/` (those that say `source: packets`).
 */

/** Every default of a packet watcher, written once. */
export const PACKET_DEFAULTS = {
  filter: 'tcp or udp or icmp or icmp6',
  /** Headers only: Ethernet + VLAN + IPv6 + extension headers + TCP fit in 96 bytes. */
  snaplen: 96,
  bufferSize: 16 * 1024 * 1024,
  handshakeTimeout: '5s',
  scanWindow: '60s',
  pollInterval: '10ms',
  maxSources: 16_384,
  maxPortsPerSource: 1_024,
  /** Port entries over all clients (about 28 bytes each in V8: about 30 MB). */
  maxPortEntries: 1_048_576,
  maxHalfOpen: 65_536,
  packetBatch: 100,
} as const;

const durationRe = new RegExp(DURATION_PATTERN);
const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));

/** A duration of at least `minMs` and at most `maxMs`. */
const boundedDuration = (minMs: number, maxMs: number) =>
  z
    .union([z.string(), z.number()], {
      error: (issue) => `expected a duration like "5s", got ${show(issue.input)}`,
    })
    .check((ctx) => {
      const value = ctx.value;
      const ms = typeof value === 'string' && !durationRe.test(value) ? Number.NaN : safeDuration(value);
      if (Number.isNaN(ms)) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `expected a duration like "5s", got ${show(value)}`,
        });
      } else if (ms < minMs || ms > maxMs) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `expected a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, got ${show(value)}`,
        });
      }
    });

function safeDuration(value: string | number): number {
  try {
    return parseDuration(value);
  } catch {
    return Number.NaN;
  }
}

const PORT_RANGE = /^(\d{1,5})-(\d{1,5})$/;
const portSchema = z.union([z.number().int().min(0).max(65_535), z.string().regex(PORT_RANGE)], {
  error: (issue) => `expected a port like 22 or a range like "8000-8999", got ${show(issue.input)}`,
});
const count = (min: number, max: number) => z.number().int().min(min).max(max);

/** One watcher: `edge: { interface: eth0, ports: [22, 443] }`. */
export const packetWatcherSchema = z.strictObject({
  /** The interface to capture on (`eth0`), or `any` (every interface, Linux cooked headers). Required. */
  interface: z
    .string()
    .min(1)
    .max(64)
    .describe('The interface to capture on ("eth0"), or "any" for every interface.'),
  /** A BPF filter in tcpdump syntax, compiled by libpcap in the kernel. Default "tcp or udp or icmp or icmp6". */
  filter: z
    .string()
    .max(4096)
    .optional()
    .describe(`A BPF filter (tcpdump syntax), applied in the kernel. Default "${PACKET_DEFAULTS.filter}".`),
  /** Addresses that are this host's: only packets to them are inbound and counted. Default the host's own (os.networkInterfaces(), read again every 2 s). */
  local: z
    .array(z.string())
    .min(1)
    .optional()
    .describe(
      "Addresses that are this host's: only packets sent to them are counted. Default every address of the host's interfaces, read again every 2s.",
    ),
  /** Ports whose SYNs are `syn` events and whose handshakes are followed (`half-open`); ports or "a-b" ranges. Default every port. */
  ports: z
    .array(portSchema)
    .min(1)
    .optional()
    .describe(
      'Ports whose SYNs are syn events and whose handshakes are followed (half-open): ports or "a-b" ranges. Probes count on every port. Default every port.',
    ),
  /** Bytes kept of each packet (headers only), 64 to 65535. Default 96. */
  snaplen: count(64, 65_535)
    .optional()
    .describe(`Bytes kept of each packet (headers only), 64 to 65535. Default ${PACKET_DEFAULTS.snaplen}.`),
  /** The kernel ring buffer in bytes, 65536 to 1073741824; a larger one rides out longer bursts. Default 16 MiB. */
  buffer_size: count(65_536, 1_073_741_824)
    .optional()
    .describe(
      `The kernel ring buffer in bytes (65536 to 1073741824); larger rides out longer bursts before drops. Default ${PACKET_DEFAULTS.bufferSize}.`,
    ),
  /** A SYN whose handshake the client has not completed after this long is a half-open event; 100ms to 5m. Default 5s. */
  handshake_timeout: boundedDuration(100, 300_000)
    .optional()
    .describe(
      `A SYN whose handshake the client has not completed after this long is a half-open event; 100ms to 5m. Default ${PACKET_DEFAULTS.handshakeTimeout}.`,
    ),
  /** How long a port stays "touched" by a client (probe events count new ones); 1s to 1d. Default 60s. */
  scan_window: boundedDuration(1_000, 86_400_000)
    .optional()
    .describe(
      `How long a port stays touched by a client: a probe event is a port new within it; 1s to 1d. Default ${PACKET_DEFAULTS.scanWindow}.`,
    ),
  /** How often the capture is read (the detection latency); 1ms to 1s. Default 10ms. */
  poll_interval: boundedDuration(1, 1_000)
    .optional()
    .describe(
      `How often the kernel ring is read (adds to detection latency); 1ms to 1s. Default ${PACKET_DEFAULTS.pollInterval}.`,
    ),
  /**
   * Clients remembered at once (ports touched, packet counts); the least recently active are
   * forgotten. About 350 bytes each, so the cap (131072) costs about 46 MB. 16 to 131072. Default 16384.
   */
  max_sources: count(16, 131_072)
    .optional()
    .describe(
      `Clients remembered at once (ports, packet counts; about 350 bytes each); the least recently active are forgotten first; 16 to 131072. Default ${PACKET_DEFAULTS.maxSources}.`,
    ),
  /** A packet event stands for this many packets of one client and protocol (within 10 s); 1 to 100000. Default 100. */
  packet_batch: count(1, 100_000)
    .optional()
    .describe(
      `A packet event stands for this many packets of one client and protocol within 10s; 1 to 100000. Default ${PACKET_DEFAULTS.packetBatch}.`,
    ),
});

/** `packets:`: watchers by name. */
export const packetsSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
      error: (issue) => `watcher names are letters, digits, "-", "_" and ".", got ${show(issue.input)}`,
    }),
    packetWatcherSchema,
  )
  .describe(
    'Packet watchers (libpcap) by name: jails with source: { packets: NAME } judge what they see. They only watch: bans are enforced by the proxy, the TCP guard and the firewall actions.',
  );

/** `source: { packets: NAME }` of a jail. */
export const packetsSourceSchema = z.strictObject({
  /** The packet watcher (under `packets:`) whose events the jail judges. Required. */
  packets: z.string().describe('The packets: watcher whose events the jail judges.'),
});

/** One watcher, resolved: every default applied, times in ms. */
export interface PacketWatcherConfig {
  readonly name: string;
  readonly interface: string;
  readonly filter: string;
  /** Canonical addresses; `null`: the host's own, read at start and every 2 s after. */
  readonly local: readonly string[] | null;
  /** `[from, to]` ranges; `null`: every port. */
  readonly ports: readonly (readonly [number, number])[] | null;
  readonly snaplen: number;
  readonly bufferSize: number;
  readonly handshakeTimeoutMs: number;
  readonly scanWindowMs: number;
  readonly pollIntervalMs: number;
  readonly maxSources: number;
  readonly maxPortsPerSource: number;
  readonly maxPortEntries: number;
  readonly maxHalfOpen: number;
  readonly packetBatch: number;
}

/** Resolves `packets:`; problems (`name: packets.edge.local.0: ...`) go to `problems`. */
export function resolvePacketWatchers(
  options: z.output<typeof packetsSchema> | undefined,
  name: string,
  problems: string[],
): PacketWatcherConfig[] {
  const out: PacketWatcherConfig[] = [];
  for (const [watcher, o] of Object.entries(options ?? {})) {
    const at = (...path: (string | number)[]) => `${name}: ${['packets', watcher, ...path].join('.')}`;
    const local = o.local?.map((text, i) => {
      const parsed = parseIp(text);
      if (parsed === null || text.includes('/')) {
        problems.push(
          `${at('local', i)}: expected an IP address of this host like "192.0.2.10", got ${show(text)}`,
        );
        return text;
      }
      return normalizeLocal(text);
    });
    const ports = o.ports?.map((port, i): [number, number] => {
      if (typeof port === 'number') return [port, port];
      const match = PORT_RANGE.exec(port) as RegExpExecArray;
      const from = Number(match[1]);
      const to = Number(match[2]);
      if (from > to || to > 65_535)
        problems.push(`${at('ports', i)}: expected a range of ports like "8000-8999", got ${show(port)}`);
      return [from, to];
    });
    out.push({
      name: watcher,
      interface: o.interface,
      filter: o.filter ?? PACKET_DEFAULTS.filter,
      local: local ?? null,
      ports: ports ?? null,
      snaplen: o.snaplen ?? PACKET_DEFAULTS.snaplen,
      bufferSize: o.buffer_size ?? PACKET_DEFAULTS.bufferSize,
      handshakeTimeoutMs: parseDuration(o.handshake_timeout ?? PACKET_DEFAULTS.handshakeTimeout),
      scanWindowMs: parseDuration(o.scan_window ?? PACKET_DEFAULTS.scanWindow),
      pollIntervalMs: parseDuration(o.poll_interval ?? PACKET_DEFAULTS.pollInterval),
      maxSources: o.max_sources ?? PACKET_DEFAULTS.maxSources,
      maxPortsPerSource: PACKET_DEFAULTS.maxPortsPerSource,
      maxPortEntries: PACKET_DEFAULTS.maxPortEntries,
      maxHalfOpen: PACKET_DEFAULTS.maxHalfOpen,
      packetBatch: o.packet_batch ?? PACKET_DEFAULTS.packetBatch,
    });
  }
  return out;
}

/** An address as the watcher writes it: dotted quad, or RFC 5952 IPv6 (zone dropped, mapped IPv4 unwrapped). */
export function normalizeLocal(text: string): string {
  const parsed = parseIp(text);
  if (parsed === null) return text;
  if (parsed.family === 4) return formatV4(parsed.v4);
  return formatV6(parsed.bytes, 0);
}

/** The packet watcher's rules in `rules/socket/`: those saying `source: packets`. */
const PACKET_RULES: SocketRuleKind = {
  source: 'packets',
  label: 'packet rule',
  fields: PACKET_FIELDS,
  unmarked: 'never',
  misfiled: (reference) =>
    `rule ${JSON.stringify(reference)} is not a packet watcher rule (known: ${bundledPacketRules().join(', ')}); TCP guard rules go on jails with source: { socket: NAME }`,
};

export type PacketRule = SocketRule;
export { SocketRuleError as PacketRuleError };

/**
 * Reads a packet rule: a bundled name (`port-scan` → `rules/socket/port-scan.yaml`) or a YAML file
 * (relative to `baseDir`). Its filter is validated against the packet fields. Throws
 * {@link SocketRuleError}.
 */
export function loadPacketRule(reference: string, baseDir: string = process.cwd()): PacketRule {
  return loadSocketRule(PACKET_RULES, reference, baseDir);
}

/** Names of the bundled packet rules. */
export function bundledPacketRules(): string[] {
  return bundledSocketRules(PACKET_RULES);
}

/** The jail options this module reads (a subset of the config file's jail shape). */
interface PacketJailInput {
  source?: unknown;
  filter?: unknown;
}

export interface PacketJailResolution {
  /** The named rule's settings: below the jail's own, above `defaults`. */
  ruleSettings: Record<string, unknown>;
  /** The validated filter; `null` for a jail of another source. */
  packetFilter: FieldFilterSpec | null;
  problems: string[];
  warnings: string[];
}

/**
 * Resolves and validates the packet side of one jail at config load: the watcher it names must
 * exist, and its filter (a rule name, a rule file, or inline fields) must be a valid filter over
 * {@link PACKET_FIELDS}. Jails of other sources get an empty resolution.
 */
export function resolvePacketJail(
  jailName: string,
  own: PacketJailInput,
  defaults: PacketJailInput,
  options: { name: string; baseDir: string; watchers: readonly string[] },
): PacketJailResolution {
  const out: PacketJailResolution = { ruleSettings: {}, packetFilter: null, problems: [], warnings: [] };
  const source = own.source ?? defaults.source;
  if (source === null || typeof source !== 'object' || !('packets' in source)) return out;
  const at = (...path: (string | number)[]) => `${options.name}: ${['jails', jailName, ...path].join('.')}`;
  const watcher = (source as { packets: string }).packets;
  if (!options.watchers.includes(watcher)) {
    out.problems.push(
      `${at('source', 'packets')}: no packet watcher named ${JSON.stringify(watcher)} (${options.watchers.length === 0 ? 'the file has no packets: section' : `known: ${options.watchers.join(', ')}`})`,
    );
  }
  const filter = own.filter ?? defaults.filter;
  if (filter === undefined || filter === null) {
    out.problems.push(
      `${at('filter')}: a packets jail needs a filter: a rule (${bundledPacketRules().join(', ')}) or fields like { event: probe }`,
    );
    return out;
  }
  let spec: FieldFilterSpec;
  let rule: string | null = null;
  if (typeof filter === 'string') {
    try {
      const loaded = loadPacketRule(filter, options.baseDir);
      spec = loaded.filter;
      rule = filter;
      out.ruleSettings = { ...loaded.jail };
    } catch (error) {
      if (!(error instanceof SocketRuleError)) throw error;
      out.problems.push(`${at('filter')}: ${error.message}`);
      return out;
    }
  } else {
    const result = validateFieldFilter(PACKET_FIELDS, filter);
    if (result.spec === null) {
      for (const problem of result.problems)
        out.problems.push(`${at('filter', ...problem.path)}: ${problem.message}`);
      return out;
    }
    spec = result.spec;
  }
  for (const [path, message] of fieldFilterWarnings(PACKET_FIELDS, spec)) {
    const where =
      rule === null ? `filter.${path.join('.')}` : `filter: rule ${JSON.stringify(rule)}: ${path.join('.')}`;
    out.warnings.push(`${options.name}: jails.${jailName}.${where}: ${message}`);
  }
  out.packetFilter = spec;
  return out;
}
