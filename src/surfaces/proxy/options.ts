import { readFileSync } from 'node:fs';
import { DEFAULTS } from '../../config/defaults.js';
import type { HttpConfig } from '../../config/types.js';
import { ConfigError } from '../../core/errors.js';
import { parseCidr } from '../../core/ip.js';
import type { Logger } from '../../core/logger.js';
import type { AccessLog, AccessLogFormat } from '../../sources/http/access-log.js';
import type { ForwardedHeader } from '../../sources/http/client-ip.js';
import type { DenyResponse } from '../../sources/http/deny.js';
import { type ListenAddress, parseListenAddress } from './listen-address.js';

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
export type ProxyDenyOption =
  | 'drop'
  | number
  | { status?: number; body?: string; contentType?: string /** An HTML file, read now. */; page?: string };

/**
 * Options of {@link createProxy}. The resolved `proxy:` section of a configuration file
 * (`config.proxy`) is a valid value. Times are milliseconds.
 */
export interface ProxyOptions {
  /** Where to listen: one address or listener, or several. Required. */
  listen: string | ProxyListenOptions | readonly (string | ProxyListenOptions)[];
  /** The upstream, `http://127.0.0.1:3000` (or `https://`). One of `target`/`targets` is required. */
  target?: string;
  /** Several upstreams, used round-robin; one refusing connections is skipped for `targetDownMs`. */
  targets?: readonly string[];
  /** Peers whose forwarding header names the client and whose chain is extended. Default `http.trusted_proxies`. */
  trustedProxies?: readonly string[];
  /** The header trusted peers name the client in. Default `http.forwarded_header` (`x-forwarded-for`). */
  forwardedHeader?: ForwardedHeader;
  /** Default `http.deny` (403 `Forbidden`). */
  deny?: ProxyDenyOption;
  /** Receiving a request head (slowloris), answered 408 after. Default 10 000. */
  headerTimeoutMs?: number;
  /** Receiving a whole request, body included, answered 408 after. Default 60 000. */
  requestTimeoutMs?: number;
  /**
   * A client connection with no traffic either way is closed; 0: never. Default 0: the header,
   * keep-alive and upstream timeouts already bound every phase (a client that stops reading stalls
   * the upstream, which then times out), and an idle timer is re-armed on every read and write.
   */
  idleTimeoutMs?: number;
  /** An idle keep-alive client connection is closed. Default 5 000. */
  keepAliveTimeoutMs?: number;
  /** Connecting to, or waiting between reads from, the upstream; answered 504 after. Default 60 000. */
  upstreamTimeoutMs?: number;
  /** Receiving the PROXY protocol header. Default 5 000. */
  proxyProtocolTimeoutMs?: number;
  /** `close()` lets requests in flight finish for this long, then closes their connections. Default 5 000. */
  shutdownTimeoutMs?: number;
  /** Largest request head, bytes; larger is answered 431. Default 16 384. */
  maxHeaderSize?: number;
  /** Concurrent connections per client address; 0 or absent: unlimited. */
  maxConnectionsPerIp?: number;
  /** Connections kept to each upstream. Default 256. */
  maxSockets?: number;
  /** How long a target that refused a connection is skipped, when others remain. Default 5 000. */
  targetDownMs?: number;
  /** Send the client's `Host` upstream (true) or the target's (false). Default true. */
  preserveHost?: boolean;
  /** PEM files for TLS listeners (read now, again on `reloadTls()`). */
  tls?: { cert: string; key: string } | null;
  /** An access log to write (opened, and closed with the proxy), or an open one to share. */
  accessLog?: { path: string; format?: AccessLogFormat; flushIntervalMs?: number } | AccessLog | null;
  /** Upstream errors, refused connections and TLS problems are logged here. Default silent. */
  logger?: Logger;
}

/** One listener, parsed. */
export interface ResolvedListener {
  text: string;
  address: ListenAddress;
  proxyProtocol: boolean;
  tls: boolean;
}

/** {@link ProxyOptions} validated, every default applied. */
export interface ResolvedProxyOptions {
  listeners: ResolvedListener[];
  targets: readonly string[];
  trustedProxies: readonly string[];
  forwardedHeader: ForwardedHeader;
  drop: boolean;
  /** The deny response (for `drop`: what a client behind a trusted proxy gets). */
  denyResponse: DenyResponse;
  headerTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  upstreamTimeoutMs: number;
  proxyProtocolTimeoutMs: number;
  shutdownTimeoutMs: number;
  maxHeaderSize: number;
  maxConnectionsPerIp: number;
  maxSockets: number;
  targetDownMs: number;
  preserveHost: boolean;
  tls: { cert: string; key: string } | null;
}

/**
 * Validates options at the top, as undici does: every problem is collected and thrown as one
 * {@link ConfigError} whose lines name the option (`proxy.headerTimeoutMs: ...`).
 */
export function resolveProxyOptions(
  options: ProxyOptions,
  http: HttpConfig | undefined,
): ResolvedProxyOptions {
  const problems: string[] = [];
  const d = DEFAULTS.proxy;
  const httpDeny: DenyResponse = http?.deny ?? {
    status: DEFAULTS.http.denyStatus,
    body: DEFAULTS.http.denyBody,
    contentType: 'text/plain; charset=utf-8',
  };

  const listenList = (
    typeof options.listen === 'string' || !Array.isArray(options.listen) ? [options.listen] : options.listen
  ) as (string | ProxyListenOptions | undefined)[];
  const listeners: ResolvedListener[] = [];
  if (options.listen === undefined || listenList.length === 0)
    problems.push('proxy.listen: at least one address is required');
  listenList.forEach((entry, i) => {
    if (entry === undefined) return;
    const spec = typeof entry === 'string' ? { address: entry } : entry;
    try {
      const tls = spec.tls ?? (options.tls !== undefined && options.tls !== null);
      if (tls && (options.tls === undefined || options.tls === null)) {
        problems.push(`proxy.listen.${i}.tls: needs proxy.tls { cert, key }`);
      }
      listeners.push({
        text: spec.address,
        address: parseListenAddress(spec.address, `proxy.listen.${i}`),
        proxyProtocol: spec.proxyProtocol ?? false,
        tls,
      });
    } catch (error) {
      problems.push(...((error as ConfigError).problems ?? [String(error)]));
    }
  });

  const targets = options.targets ?? (options.target === undefined ? [] : [options.target]);
  if ((options.target === undefined) === (options.targets === undefined) || targets.length === 0) {
    problems.push('proxy: set exactly one of target or targets');
  }
  targets.forEach((url, i) => {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      problems.push(`proxy.targets.${i}: expected an http:// or https:// URL, got ${JSON.stringify(url)}`);
    }
  });

  const trustedProxies = options.trustedProxies ?? http?.trustedProxies ?? [];
  trustedProxies.forEach((cidr, i) => {
    if (parseCidr(cidr) === null)
      problems.push(
        `proxy.trustedProxies.${i}: expected an IP address or CIDR range, got ${JSON.stringify(cidr)}`,
      );
  });

  let drop = false;
  let denyResponse = httpDeny;
  const deny = options.deny;
  if (deny === 'drop') drop = true;
  else if (typeof deny === 'number') denyResponse = { ...httpDeny, status: deny };
  else if (deny !== undefined && deny !== null && typeof deny === 'object') {
    let body = deny.body ?? httpDeny.body;
    let contentType =
      deny.contentType ?? (deny.body === undefined ? httpDeny.contentType : 'text/plain; charset=utf-8');
    if (deny.page !== undefined) {
      try {
        body = readFileSync(deny.page, 'utf8');
        contentType = 'text/html; charset=utf-8';
      } catch (error) {
        problems.push(`proxy.deny.page: cannot read ${deny.page}: ${(error as NodeJS.ErrnoException).code}`);
      }
    }
    denyResponse = { status: deny.status ?? httpDeny.status, body, contentType };
  } else if (deny !== undefined) {
    problems.push(
      `proxy.deny: expected "drop", a status or { status, body, page }, got ${JSON.stringify(deny)}`,
    );
  }
  if (!Number.isInteger(denyResponse.status) || denyResponse.status < 200 || denyResponse.status > 599) {
    problems.push(
      `proxy.deny.status: expected a status from 200 to 599, got ${JSON.stringify(denyResponse.status)}`,
    );
  }

  const positive = (key: keyof ProxyOptions, fallback: number, min = 1): number => {
    const value = options[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      problems.push(`proxy.${key}: expected a number of at least ${min}, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return value;
  };
  const resolved: ResolvedProxyOptions = {
    listeners,
    targets,
    trustedProxies,
    forwardedHeader: options.forwardedHeader ?? http?.forwardedHeader ?? DEFAULTS.http.forwardedHeader,
    drop,
    denyResponse,
    headerTimeoutMs: positive('headerTimeoutMs', d.headerTimeoutMs),
    requestTimeoutMs: positive('requestTimeoutMs', d.requestTimeoutMs),
    idleTimeoutMs: positive('idleTimeoutMs', d.idleTimeoutMs, 0),
    keepAliveTimeoutMs: positive('keepAliveTimeoutMs', d.keepAliveTimeoutMs),
    upstreamTimeoutMs: positive('upstreamTimeoutMs', d.upstreamTimeoutMs),
    proxyProtocolTimeoutMs: positive('proxyProtocolTimeoutMs', d.proxyProtocolTimeoutMs),
    shutdownTimeoutMs: positive('shutdownTimeoutMs', d.shutdownTimeoutMs, 0),
    maxHeaderSize: positive('maxHeaderSize', d.maxHeaderSize, 1024),
    maxConnectionsPerIp: positive('maxConnectionsPerIp', 0, 0),
    maxSockets: positive('maxSockets', d.maxSockets),
    targetDownMs: positive('targetDownMs', d.targetDownMs, 0),
    preserveHost: options.preserveHost ?? true,
    tls: options.tls ?? null,
  };
  if (resolved.requestTimeoutMs < resolved.headerTimeoutMs) {
    problems.push(
      `proxy.requestTimeoutMs: must be at least headerTimeoutMs (${resolved.headerTimeoutMs}), got ${resolved.requestTimeoutMs}`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return resolved;
}
