import { readFileSync } from 'node:fs';
import { checkCidr, parseHostPort } from '../core/ip.js';
import { DEFAULTS } from './defaults.js';
import { DEFAULT_HTTP_CONFIG, type DenyResponseOptions, resolveDenyResponse } from './http.js';
import type { HttpConfig, ProxyConfig, ProxyListenConfig } from './types.js';

/**
 * The reverse proxy's options, resolved in one place: {@link resolveProxyConfig} turns the
 * programmatic form (`createProxy()` options, times in ms) into a {@link ProxyConfig}; the config
 * loader converts `proxy:` to that form and calls the same function, so `check-config` refuses
 * exactly what `run` would.
 */

/** One listener. */
export interface ProxyListenOptions {
  /** `0.0.0.0:8080`, `127.0.0.1:0` (a free port), `[::]:8080` (IPv6 only), `:8080` (every interface). */
  address: string;
  /**
   * Every connection must open with a PROXY protocol v1/v2 header (from a load balancer); one that
   * does not within `proxyProtocolTimeoutMs` is closed. Default false.
   */
  proxyProtocol?: boolean;
  /** Terminate TLS with `tls`. Default: true when `tls` is given. */
  tls?: boolean;
}

/**
 * What a banned client gets: `'drop'` (its connection is reset at accept, before a byte is read;
 * a client named by a trusted proxy's forwarding header is answered instead, since dropping would
 * cut the proxy's shared connection), a status (body from `http.deny`), or a full response.
 */
export type ProxyDenyOption = 'drop' | number | DenyResponseOptions;

/** The proxy's settings in the programmatic form. Times are milliseconds. */
export interface ProxySettings {
  /** Where to listen: one address or listener, or several. Required. */
  listen: string | ProxyListenOptions | readonly (string | ProxyListenOptions)[];
  /** The upstream, `http://127.0.0.1:3000` (or `https://`). One of `target`/`targets` is required. */
  target?: string;
  /** Several upstreams, used round-robin; one refusing connections is skipped for `targetDownMs`. */
  targets?: readonly string[];
  /** Peers whose forwarding header names the client and whose chain is extended. Default `http.trusted_proxies`. */
  trustedProxies?: readonly string[];
  /** Default `http.deny` (403 `Forbidden`). */
  deny?: ProxyDenyOption;
  /** Receiving a request head (slowloris), answered 408 after; at least 1. Default 10 000. */
  headerTimeoutMs?: number;
  /** Receiving a whole request, body included, answered 408 after; at least headerTimeoutMs. Default 60 000. */
  requestTimeoutMs?: number;
  /**
   * Between two reads of a request body (nginx's `client_body_timeout`): a client that sends
   * nothing for this long is answered 408, logged and judged; at least 1. Default 10 000.
   */
  bodyTimeoutMs?: number;
  /**
   * A client connection with no traffic either way is closed; 0: never. Default 0: the header,
   * keep-alive and upstream timeouts already bound every phase (a client that stops reading stalls
   * the upstream, which then times out), and an idle timer is re-armed on every read and write.
   */
  idleTimeoutMs?: number;
  /** An idle keep-alive client connection is closed; at least 1. Default 5 000. */
  keepAliveTimeoutMs?: number;
  /** Connecting to, or waiting between reads from, the upstream; answered 504 after; at least 1. Default 60 000. */
  upstreamTimeoutMs?: number;
  /** Receiving the PROXY protocol header; at least 1. Default 5 000. */
  proxyProtocolTimeoutMs?: number;
  /** `close()` lets requests in flight finish for this long (0: not at all), then closes their connections. Default 5 000. */
  shutdownTimeoutMs?: number;
  /** Largest request head, bytes (1 024 to 1 048 576); larger is answered 431. Default 16 384. */
  maxHeaderSize?: number;
  /**
   * Request header fields accepted (1 to 1000); more is answered 431. Node keeps only the first
   * 1000 header lines of a request, so a client sending more could push the proxy's own
   * forwarding headers out of the upstream's view. Default 200.
   */
  maxHeaders?: number;
  /** Concurrent connections per client address; 0: unlimited. Default 256. */
  maxConnectionsPerIp?: number;
  /** Connections kept to each upstream; at least 1. Default 256. */
  maxSockets?: number;
  /**
   * Requests one client (as judged, after trusted proxies) may have at the upstreams at once;
   * more are answered 503 with `Retry-After: 1`, so no client takes the whole pool. At least 1.
   * Default a quarter of `maxSockets` (64).
   */
  maxUpstreamPerIp?: number;
  /**
   * A request body is read up to this many bytes before an upstream connection is taken (a slow
   * upload holds no upstream socket until then); the rest streams. 0: stream at once. Default 65 536.
   */
  bodyBufferSize?: number;
  /** How long a target that refused a connection is skipped, when others remain (0: not at all). Default 5 000. */
  targetDownMs?: number;
  /** Send the client's `Host` upstream (true) or the target's (false). Default true. */
  preserveHost?: boolean;
  /** PEM files for TLS listeners (read now, again on `reloadTls()`). */
  tls?: { cert: string; key: string } | null;
  /** An access log to write: its file, `combined` (default) or `json`, and how often it is flushed (ms, default 1 000). */
  accessLog?: { path: string; format?: 'combined' | 'json'; flushIntervalMs?: number } | null;
}

interface Limit {
  /** The key in the configuration file, under `proxy.`. */
  readonly yaml: string;
  /** The option's name when it is not the table's key. */
  readonly option?: string;
  readonly min: number;
  readonly max?: number;
  /** What 0 means, when it is allowed (`min: 0`). */
  readonly zero?: string;
  readonly integer?: boolean;
}

/**
 * Bounds of the proxy's numbers, the one definition behind the config schema
 * (`proxy.timeouts.header`) and {@link resolveProxyConfig} (`headerTimeoutMs`). A time whose 0
 * would make Node time out at once, or never, is at least 1 ms.
 */
export const PROXY_LIMITS = {
  headerTimeoutMs: { yaml: 'timeouts.header', min: 1 },
  requestTimeoutMs: { yaml: 'timeouts.request', min: 1 },
  bodyTimeoutMs: { yaml: 'timeouts.body', min: 1 },
  idleTimeoutMs: { yaml: 'timeouts.idle', min: 0, zero: 'never' },
  keepAliveTimeoutMs: { yaml: 'timeouts.keep_alive', min: 1 },
  upstreamTimeoutMs: { yaml: 'timeouts.upstream', min: 1 },
  proxyProtocolTimeoutMs: { yaml: 'timeouts.proxy_protocol', min: 1 },
  shutdownTimeoutMs: { yaml: 'timeouts.shutdown', min: 0, zero: 'close at once' },
  targetDownMs: { yaml: 'target_down_time', min: 0, zero: 'never skip a target' },
  accessLogFlushIntervalMs: {
    yaml: 'access_log.flush_interval',
    option: 'accessLog.flushIntervalMs',
    min: 1,
  },
  maxHeaderSize: { yaml: 'max_header_size', min: 1024, max: 1_048_576, integer: true },
  maxHeaders: { yaml: 'max_headers', min: 1, max: 1000, integer: true },
  maxConnectionsPerIp: { yaml: 'max_connections_per_ip', min: 0, zero: 'unlimited', integer: true },
  maxSockets: { yaml: 'max_sockets', min: 1, integer: true },
  maxUpstreamPerIp: { yaml: 'max_upstream_per_ip', min: 1, integer: true },
  bodyBufferSize: {
    yaml: 'body_buffer_size',
    min: 0,
    max: 16_777_216,
    zero: 'stream at once',
    integer: true,
  },
} as const satisfies Record<string, Limit>;

export type ProxyLimitKey = keyof typeof PROXY_LIMITS;

/** The message for a listen address {@link parseHostPort} refuses. */
export function badListenAddress(text: unknown): string {
  return `expected an address like "0.0.0.0:8080", "[::]:8080" or ":8080" (an IP address or host name, and a port from 0 to 65535), got ${JSON.stringify(text)}`;
}

/** The message for a target that is not an http(s) URL, or `undefined` for a good one. */
export function badTargetUrl(text: unknown): string | undefined {
  if (typeof text === 'string' && URL.canParse(text) && /^https?:$/.test(new URL(text).protocol)) {
    return undefined;
  }
  return `expected an http:// or https:// URL like "http://127.0.0.1:3000", got ${JSON.stringify(text)}`;
}

export interface ResolveProxyOptions {
  /** Name keys as the configuration file does (`proxy.timeouts.header`), not as options (`proxy.headerTimeoutMs`). */
  fileKeys?: boolean;
}

/**
 * Validates proxy settings and applies every default (`DEFAULTS.proxy`, then `http`). Problems,
 * one line each naming the key (`proxy.listen.0: ...`), are pushed to `problems`; the result is
 * then not to be used.
 */
export function resolveProxyConfig(
  options: ProxySettings,
  http: HttpConfig = DEFAULT_HTTP_CONFIG,
  problems: string[] = [],
  { fileKeys = false }: ResolveProxyOptions = {},
): ProxyConfig {
  const d = DEFAULTS.proxy;
  const key = (name: ProxyLimitKey) => {
    const limit: Limit = PROXY_LIMITS[name];
    return `proxy.${fileKeys ? limit.yaml : (limit.option ?? name)}`;
  };
  const hasTls = options.tls !== undefined && options.tls !== null;

  const list = (
    typeof options.listen === 'string' || !Array.isArray(options.listen) ? [options.listen] : options.listen
  ) as (string | ProxyListenOptions | undefined)[];
  if (options.listen === undefined || list.length === 0) {
    problems.push('proxy.listen: at least one address is required');
  }
  const listen: ProxyListenConfig[] = [];
  list.forEach((entry, i) => {
    if (entry === undefined) return;
    const spec = typeof entry === 'string' ? { address: entry } : entry;
    if (parseHostPort(spec.address) === null) {
      problems.push(
        `proxy.listen.${i}${typeof entry === 'string' ? '' : '.address'}: ${badListenAddress(spec.address)}`,
      );
    }
    const tls = spec.tls ?? hasTls;
    if (tls && !hasTls) problems.push(`proxy.listen.${i}.tls: needs proxy.tls { cert, key }`);
    listen.push({ address: spec.address, proxyProtocol: spec.proxyProtocol ?? d.proxyProtocol, tls });
  });

  const targets = options.targets ?? (options.target === undefined ? [] : [options.target]);
  if ((options.target === undefined) === (options.targets === undefined) || targets.length === 0) {
    problems.push('proxy: set exactly one of target or targets');
  }
  targets.forEach((url, i) => {
    const bad = badTargetUrl(url);
    if (bad !== undefined) problems.push(`proxy.targets.${i}: ${bad}`);
  });

  const trustedProxies = options.trustedProxies ?? http.trustedProxies;
  if (options.trustedProxies !== undefined) {
    options.trustedProxies.forEach((cidr, i) => {
      const checked = checkCidr(cidr);
      if (!checked.ok) {
        problems.push(
          `proxy.${fileKeys ? 'trusted_proxies' : 'trustedProxies'}.${i}: ${checked.reason ?? `expected an IP address or CIDR range, got ${JSON.stringify(cidr)}`}`,
        );
      }
    });
  }

  const deny = options.deny;
  let resolvedDeny: ProxyConfig['deny'] = http.deny;
  if (deny === 'drop') resolvedDeny = 'drop';
  else if (typeof deny === 'number' || (typeof deny === 'object' && deny !== null)) {
    resolvedDeny = resolveDenyResponse(deny, http.deny, { where: 'proxy.deny', problems });
  } else if (deny !== undefined) {
    problems.push(
      `proxy.deny: expected "drop", a status or { status, body, page }, got ${JSON.stringify(deny)}`,
    );
  }

  const number = (name: ProxyLimitKey, value: number | undefined, fallback: number): number => {
    const limit: Limit = PROXY_LIMITS[name];
    if (value === undefined) return fallback;
    const max = limit.max ?? Number.MAX_SAFE_INTEGER;
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < limit.min ||
      value > max ||
      (limit.integer === true && !Number.isInteger(value))
    ) {
      const range =
        limit.max === undefined ? `of at least ${limit.min}` : `from ${limit.min} to ${limit.max}`;
      const zero = limit.zero === undefined ? '' : ` (0: ${limit.zero})`;
      problems.push(`${key(name)}: expected a number ${range}${zero}, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return value;
  };

  const tls = hasTls ? (options.tls as { cert: string; key: string }) : null;
  for (const file of ['cert', 'key'] as const) {
    if (tls === null) break;
    try {
      readFileSync(tls[file]);
    } catch (error) {
      problems.push(`proxy.tls.${file}: cannot read ${tls[file]}: ${(error as NodeJS.ErrnoException).code}`);
    }
  }

  const log = options.accessLog;
  const maxSockets = number('maxSockets', options.maxSockets, d.maxSockets);
  const resolved: ProxyConfig = {
    listen,
    targets,
    trustedProxies,
    deny: resolvedDeny,
    headerTimeoutMs: number('headerTimeoutMs', options.headerTimeoutMs, d.headerTimeoutMs),
    requestTimeoutMs: number('requestTimeoutMs', options.requestTimeoutMs, d.requestTimeoutMs),
    bodyTimeoutMs: number('bodyTimeoutMs', options.bodyTimeoutMs, d.bodyTimeoutMs),
    idleTimeoutMs: number('idleTimeoutMs', options.idleTimeoutMs, d.idleTimeoutMs),
    keepAliveTimeoutMs: number('keepAliveTimeoutMs', options.keepAliveTimeoutMs, d.keepAliveTimeoutMs),
    upstreamTimeoutMs: number('upstreamTimeoutMs', options.upstreamTimeoutMs, d.upstreamTimeoutMs),
    proxyProtocolTimeoutMs: number(
      'proxyProtocolTimeoutMs',
      options.proxyProtocolTimeoutMs,
      d.proxyProtocolTimeoutMs,
    ),
    shutdownTimeoutMs: number('shutdownTimeoutMs', options.shutdownTimeoutMs, d.shutdownTimeoutMs),
    maxHeaderSize: number('maxHeaderSize', options.maxHeaderSize, d.maxHeaderSize),
    maxHeaders: number('maxHeaders', options.maxHeaders, d.maxHeaders),
    maxConnectionsPerIp: number('maxConnectionsPerIp', options.maxConnectionsPerIp, d.maxConnectionsPerIp),
    maxSockets,
    maxUpstreamPerIp: number(
      'maxUpstreamPerIp',
      options.maxUpstreamPerIp,
      Math.max(1, Math.floor(maxSockets * d.maxUpstreamShare)),
    ),
    bodyBufferSize: number('bodyBufferSize', options.bodyBufferSize, d.bodyBufferSize),
    targetDownMs: number('targetDownMs', options.targetDownMs, d.targetDownMs),
    preserveHost: options.preserveHost ?? d.preserveHost,
    tls,
    accessLog:
      log === undefined || log === null
        ? null
        : {
            path: log.path,
            format: log.format ?? d.accessLogFormat,
            flushIntervalMs: number(
              'accessLogFlushIntervalMs',
              log.flushIntervalMs,
              d.accessLogFlushIntervalMs,
            ),
          },
  };
  if (resolved.requestTimeoutMs < resolved.headerTimeoutMs) {
    problems.push(
      fileKeys
        ? `${key('requestTimeoutMs')}: must be at least timeouts.header`
        : `${key('requestTimeoutMs')}: must be at least headerTimeoutMs (${resolved.headerTimeoutMs}), got ${resolved.requestTimeoutMs}`,
    );
  }
  return resolved;
}
