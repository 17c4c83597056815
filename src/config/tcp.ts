import * as z from 'zod';
import { DURATION_PATTERN, parseDuration } from '../core/duration.js';
import { checkCidr, parseHostPort } from '../core/ip.js';
import {
  type FieldFilterSpec,
  fieldFilterWarnings,
  validateFieldFilter,
} from '../detection/filters/fields/filter-schema.js';
import { SOCKET_FIELDS } from '../detection/filters/fields/socket-fields.js';
import { loadTcpRule, TcpRuleError } from '../sources/socket/tcp-rules.js';

/**
 * The `tcp:` section: TCP guard listeners, each forwarding one port to one upstream service
 * (SSH, SMTP, IMAP, a database, a game server) and judging its connections with socket jails
 * (`source: { socket: NAME }`). The schema (shape) and the resolution (defaults, units, the
 * checks that need the whole file) are both here; `schema.ts` and `load.ts` only wire them in.
 */

/** Every default of a TCP listener, written once. Times in ms. */
export const TCP_DEFAULTS = {
  /** Concurrent connections one client address may hold; 0: unlimited. */
  maxConnectionsPerIp: 256,
  /** Concurrent connections the listener holds in all; 0: unlimited. */
  maxConnections: 10_000,
  /** A connection with no byte either way is closed; 0: never. SSH keep-alives are 15-60 s apart. */
  idleTimeoutMs: 600_000,
  /** Connecting to the upstream. */
  connectTimeoutMs: 10_000,
  /** Receiving a PROXY protocol header (when `proxy_protocol: true`). */
  proxyProtocolTimeoutMs: 5_000,
  /** With `sni: true`: how long the client's first bytes (its TLS ClientHello) are waited for. */
  sniTimeoutMs: 5_000,
  deny: 'reset',
  sni: false,
  proxyProtocol: false,
} as const;

/** One listener, resolved (every default applied). Times are milliseconds. */
export interface TcpListenerConfig {
  /** Its name under `tcp:`; sources call it `tcp:NAME`, jails `source: { socket: NAME }`. */
  readonly name: string;
  /** As written: `0.0.0.0:2222`, `[::]:6380` (IPv6 only), `:2222` (every interface). */
  readonly listen: string;
  /** `undefined`: every interface. */
  readonly host: string | undefined;
  readonly port: number;
  /** An IPv6 address: the listener takes IPv6 only (so `0.0.0.0:p` and `[::]:p` can coexist). */
  readonly ipv6Only: boolean;
  /** The upstream, as written (`127.0.0.1:22`). */
  readonly target: string;
  readonly targetHost: string;
  readonly targetPort: number;
  /** Send a PROXY protocol header of this version to the upstream; `null`: none. */
  readonly proxyProtocolUpstream: 1 | 2 | null;
  /** Every client connection must open with a PROXY v1/v2 header (from a trusted load balancer). */
  readonly proxyProtocol: boolean;
  /** Peers allowed to send that header; empty: any. */
  readonly trustedProxies: readonly string[];
  /** 0: unlimited. */
  readonly maxConnectionsPerIp: number;
  /** 0: unlimited. */
  readonly maxConnections: number;
  /** 0: never. */
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly proxyProtocolTimeoutMs: number;
  /** Read the TLS ClientHello's server name (without terminating TLS) for the `sni` field. */
  readonly sni: boolean;
  readonly sniTimeoutMs: number;
  /** `reset`: a TCP RST; `drop`: a plain close (FIN). Either way, not a byte is sent. */
  readonly deny: 'reset' | 'drop';
}

const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const durationRe = new RegExp(DURATION_PATTERN);

function badAddress(what: string, example: string, text: unknown): string {
  return `expected ${what} like "${example}" (an IP address or host name, IPv6 in brackets, and a port from ${what === 'an upstream' ? 1 : 0} to 65535), got ${show(text)}`;
}

/** A duration; `zero` says what 0 means (absent: 0 is refused). */
function tcpDuration(zero?: string) {
  const expected = `a duration like "10s"${zero === undefined ? ' longer than 0' : ` (0: ${zero})`}`;
  return z
    .union([z.string(), z.number()], { error: (issue) => `expected ${expected}, got ${show(issue.input)}` })
    .refine(
      (value) => {
        if (typeof value === 'string' && !durationRe.test(value.trim())) return false;
        let ms: number;
        try {
          ms = parseDuration(value);
        } catch {
          return false;
        }
        return ms > 0 || (ms === 0 && zero !== undefined);
      },
      { error: (issue) => `expected ${expected}, got ${show(issue.input)}` },
    );
}

const count = (zero: string) =>
  z
    .number({ error: (issue) => `expected a whole number (0: ${zero}), got ${show(issue.input)}` })
    .int({ error: (issue) => `expected a whole number (0: ${zero}), got ${show(issue.input)}` })
    .min(0, { error: (issue) => `expected a whole number (0: ${zero}), got ${show(issue.input)}` });

const d = TCP_DEFAULTS;
const ms = (value: number) => (value % 60_000 === 0 ? `${value / 60_000}m` : `${value / 1000}s`);

/** One `tcp:` listener as written. */
export const tcpListenerSchema = z
  .strictObject({
    /** `0.0.0.0:2222`, `[::]:6380` (IPv6 only) or `:2222` (every interface); port 0 to 65535. Required. */
    listen: z
      .string({ error: (issue) => badAddress('an address', '0.0.0.0:2222', issue.input) })
      .refine((text) => parseHostPort(text) !== null, {
        error: (issue) => badAddress('an address', '0.0.0.0:2222', issue.input),
      })
      .describe('Where to listen: "0.0.0.0:2222", "[::]:6380" (IPv6 only) or ":2222" (every interface).'),
    /** The service guarded: `127.0.0.1:22`, `[::1]:6379`, `db.internal:5432`. Required. */
    target: z
      .string({ error: (issue) => badAddress('an upstream', '127.0.0.1:22', issue.input) })
      .refine(
        (text) => {
          const parsed = parseHostPort(text);
          return parsed !== null && parsed.host !== undefined && parsed.port > 0;
        },
        { error: (issue) => badAddress('an upstream', '127.0.0.1:22', issue.input) },
      )
      .describe('The service guarded, host:port: "127.0.0.1:22", "[::1]:6379", "db.internal:5432".'),
    /** Open each upstream connection with a PROXY protocol header naming the client: `v1` or `v2`. Default none. */
    proxy_protocol_upstream: z
      .enum(['v1', 'v2'], {
        error: (issue) =>
          `expected "v1" or "v2" (the PROXY protocol version the upstream reads), got ${show(issue.input)}`,
      })
      .optional()
      .describe(
        'Open each upstream connection with a PROXY protocol header naming the real client, "v1" (text) or "v2" (binary), for an upstream that reads it (nginx, HAProxy, Postfix, Dovecot). Default none.',
      ),
    /** Every client connection must open with a PROXY v1/v2 header, from trusted_proxies. Default false. */
    proxy_protocol: z
      .boolean()
      .optional()
      .describe(
        `Every client connection must open with a PROXY protocol v1/v2 header (from a load balancer in trusted_proxies); others are closed. Default ${d.proxyProtocol}.`,
      ),
    /** Peers whose PROXY header is believed. Default http.trusted_proxies. */
    trusted_proxies: z
      .array(
        z.string().refine((text) => checkCidr(text).ok, {
          error: (issue) =>
            `expected an IP address or CIDR range like "10.0.0.0/8", got ${show(issue.input)}`,
        }),
      )
      .optional()
      .describe(
        'Peers whose PROXY protocol header is believed (with proxy_protocol). Default http.trusted_proxies.',
      ),
    /** Concurrent connections one client address may hold; more are refused at accept; 0: unlimited. Default 256. */
    max_connections_per_ip: count('unlimited')
      .optional()
      .describe(
        `Concurrent connections one client address may hold; more are refused at accept (end: refused); 0: unlimited. Default ${d.maxConnectionsPerIp}.`,
      ),
    /** Concurrent connections in all; more are refused at accept; 0: unlimited. Default 10000. */
    max_connections: count('unlimited')
      .optional()
      .describe(
        `Concurrent connections the listener holds in all; more are refused at accept; 0: unlimited. Default ${d.maxConnections}.`,
      ),
    /** A connection with no byte either way for this long is closed (end: timeout); 0: never. Default 10m. */
    idle_timeout: tcpDuration('never')
      .optional()
      .describe(
        `A connection with no byte either way for this long is closed (end: timeout); 0: never. Default ${ms(d.idleTimeoutMs)}.`,
      ),
    /** Connecting to the upstream; the client is closed after (end: upstream-error). Default 10s. */
    connect_timeout: tcpDuration()
      .optional()
      .describe(
        `Connecting to the upstream; after it the client is closed (end: upstream-error). Default ${ms(d.connectTimeoutMs)}.`,
      ),
    /** Receiving the PROXY protocol header (with proxy_protocol). Default 5s. */
    proxy_protocol_timeout: tcpDuration()
      .optional()
      .describe(
        `Receiving the PROXY protocol header (with proxy_protocol). Default ${ms(d.proxyProtocolTimeoutMs)}.`,
      ),
    /** Read the server name from the client's TLS ClientHello (TLS is not terminated) for the sni field. Default false. */
    sni: z
      .boolean()
      .optional()
      .describe(
        `Read the server name of the client's TLS ClientHello (TLS passes through untouched) as the sni event field; the upstream is connected once the ClientHello is in (or sni_timeout passed): for TLS services only. Default ${d.sni}.`,
      ),
    /** With sni: how long the ClientHello is waited for before connecting without it. Default 5s. */
    sni_timeout: tcpDuration()
      .optional()
      .describe(
        `With sni: how long the ClientHello is waited for before connecting without it. Default ${ms(d.sniTimeoutMs)}.`,
      ),
    /** A banned client's connection: `reset` (TCP RST) or `drop` (closed with a FIN); never a byte. Default reset. */
    deny: z
      .enum(['reset', 'drop'], {
        error: (issue) => `expected "reset" or "drop", got ${show(issue.input)}`,
      })
      .optional()
      .describe(
        `A banned (or refused) client's connection is closed at accept, before a byte reaches the upstream: "reset" sends a TCP RST (nothing left on this host), "drop" closes it with a FIN, like a service hanging up. Default ${d.deny}.`,
      ),
  })
  .describe('A TCP guard listener: one port forwarded to one upstream service.');

/** `tcp:`: listeners by name. */
export const tcpSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, {
      error: (issue) => `listener names are letters, digits, "-", "_" and ".", got ${show(issue.input)}`,
    }),
    tcpListenerSchema,
  )
  .describe(
    'TCP guard listeners by name: each forwards one port to one service and feeds the jails with source: { socket: NAME }.',
  );

/** A jail's `source: { socket: NAME }`. */
export const socketSourceSchema = z.strictObject({
  /** The `tcp:` listener whose connections the jail judges. Required. */
  socket: z.string().describe('The tcp: listener whose connections the jail judges.'),
});

export type TcpOptions = z.output<typeof tcpSchema>;
type TcpListenerOptions = z.output<typeof tcpListenerSchema>;

/**
 * Resolves the `tcp:` section: defaults, units, and the checks across listeners (two listeners on
 * one address). Problems (`name: tcp.ssh.listen: ...`) go to `problems`.
 */
export function resolveTcpListeners(
  tcp: TcpOptions | undefined,
  trustedDefault: readonly string[],
  name: string,
  problems: string[],
): TcpListenerConfig[] {
  const out: TcpListenerConfig[] = [];
  const bound = new Map<string, string>();
  for (const [listener, options] of Object.entries(tcp ?? {})) {
    const resolved = resolveListener(listener, options, trustedDefault);
    const key = `${resolved.host ?? '*'}|${resolved.port}`;
    const other = bound.get(key);
    if (other !== undefined && resolved.port !== 0) {
      problems.push(`${name}: tcp.${listener}.listen: ${resolved.listen} is already tcp.${other}'s address`);
    }
    bound.set(key, listener);
    out.push(resolved);
  }
  return out;
}

function resolveListener(
  name: string,
  o: TcpListenerOptions,
  trustedDefault: readonly string[],
): TcpListenerConfig {
  const listen = parseHostPort(o.listen) as { host: string | undefined; port: number };
  const target = parseHostPort(o.target) as { host: string; port: number };
  const time = (value: string | number | undefined, fallback: number) =>
    value === undefined ? fallback : parseDuration(value);
  return {
    name,
    listen: o.listen,
    host: listen.host,
    port: listen.port,
    ipv6Only: listen.host !== undefined && listen.host.indexOf(':') !== -1,
    target: o.target,
    targetHost: target.host,
    targetPort: target.port,
    proxyProtocolUpstream:
      o.proxy_protocol_upstream === undefined ? null : o.proxy_protocol_upstream === 'v1' ? 1 : 2,
    proxyProtocol: o.proxy_protocol ?? d.proxyProtocol,
    trustedProxies: o.trusted_proxies ?? trustedDefault,
    maxConnectionsPerIp: o.max_connections_per_ip ?? d.maxConnectionsPerIp,
    maxConnections: o.max_connections ?? d.maxConnections,
    idleTimeoutMs: time(o.idle_timeout, d.idleTimeoutMs),
    connectTimeoutMs: time(o.connect_timeout, d.connectTimeoutMs),
    proxyProtocolTimeoutMs: time(o.proxy_protocol_timeout, d.proxyProtocolTimeoutMs),
    sni: o.sni ?? d.sni,
    sniTimeoutMs: time(o.sni_timeout, d.sniTimeoutMs),
    deny: o.deny ?? d.deny,
  };
}

/** A jail's options as far as socket jails are concerned. */
interface SocketJailInput {
  source?: unknown;
  filter?: unknown;
  enabled?: boolean | undefined;
}

export interface SocketJailResolution {
  /** The named rule's settings (`maxretry`, `findtime`, `bantime`): below the jail's own, above `defaults`. */
  ruleSettings: Record<string, unknown>;
  /** The validated filter; `null` for a jail that is not a socket jail. */
  socketFilter: FieldFilterSpec | null;
  /** Complete error lines; empty when valid. */
  problems: string[];
  /** Valid but probably unintended (a slow regex). */
  warnings: string[];
}

/**
 * Resolves the socket side of one jail: `source: { socket: NAME }` must name a `tcp:` listener;
 * `filter` is a bundled rule (`conn-flood`), a rule file, or inline fields, validated against the
 * socket event fields (every regex compiled by RE2). Other jails are left alone.
 */
export function resolveSocketJail(
  jailName: string,
  own: SocketJailInput,
  defaults: SocketJailInput,
  options: { name: string; baseDir: string; listeners: readonly string[] },
): SocketJailResolution {
  const out: SocketJailResolution = { ruleSettings: {}, socketFilter: null, problems: [], warnings: [] };
  const source = own.source ?? defaults.source;
  const at = (...path: (string | number)[]) => `${options.name}: ${['jails', jailName, ...path].join('.')}`;
  if (source === 'socket') {
    out.problems.push(
      `${at('source')}: name the listener whose connections the jail judges: source: { socket: NAME } with NAME one of tcp: (${listOf(options.listeners)})`,
    );
    return out;
  }
  if (source === null || typeof source !== 'object' || !('socket' in source)) return out;
  const listener = (source as { socket: string }).socket;
  if (!options.listeners.includes(listener)) {
    out.problems.push(
      `${at('source', 'socket')}: no tcp: listener named ${JSON.stringify(listener)} (${options.listeners.length === 0 ? 'the file has no tcp: section' : `known: ${listOf(options.listeners)}`})`,
    );
  }
  const filter = own.filter ?? defaults.filter;
  if (filter === undefined || filter === null) {
    out.problems.push(
      `${at('filter')}: a socket jail needs a filter: a rule (conn-flood, idle-connect, short-sessions, concurrency) or fields like { event: close, bytes_in: 0 }`,
    );
    return out;
  }
  let spec: FieldFilterSpec;
  let rule: string | null = null;
  if (typeof filter === 'string') {
    try {
      const loaded = loadTcpRule(filter, options.baseDir);
      spec = loaded.filter;
      rule = filter;
      out.ruleSettings = { ...loaded.jail };
    } catch (error) {
      if (!(error instanceof TcpRuleError)) throw error;
      out.problems.push(`${at('filter')}: ${error.message}`);
      return out;
    }
  } else {
    const result = validateFieldFilter(SOCKET_FIELDS, filter);
    if (result.spec === null) {
      for (const problem of result.problems)
        out.problems.push(`${at('filter', ...problem.path)}: ${problem.message}`);
      return out;
    }
    spec = result.spec;
  }
  for (const [path, message] of fieldFilterWarnings(SOCKET_FIELDS, spec)) {
    const where =
      rule === null ? `filter.${path.join('.')}` : `filter: rule ${JSON.stringify(rule)}: ${path.join('.')}`;
    out.warnings.push(`${options.name}: jails.${jailName}.${where}: ${message}`);
  }
  out.socketFilter = spec;
  return out;
}

function listOf(names: readonly string[]): string {
  return names.length === 0 ? 'none' : names.join(', ');
}
