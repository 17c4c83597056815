import { DEFAULT_HTTP_CONFIG } from '../../config/http.js';
import { type ProxySettings, resolveProxyConfig } from '../../config/proxy.js';
import type { HttpConfig } from '../../config/types.js';
import { ConfigError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AccessLog, AccessLogFormat } from '../../sources/http/access-log.js';
import type { ForwardedHeader } from '../../sources/http/client-ip.js';
import type { DenyResponse } from '../../sources/http/deny.js';
import { type ListenAddress, parseListenAddress } from './listen-address.js';

export type { ProxyDenyOption, ProxyListenOptions } from '../../config/proxy.js';

/**
 * Options of {@link createProxy}: the {@link ProxySettings} (listeners, targets, deny, timeouts in
 * milliseconds, TLS) with an open access log allowed and a logger. The resolved `proxy:` section of
 * a configuration file (`config.proxy`) is a valid value.
 */
export interface ProxyOptions extends Omit<ProxySettings, 'accessLog'> {
  /** The header trusted peers name the client in. Default `http.forwarded_header` (`x-forwarded-for`). */
  forwardedHeader?: ForwardedHeader;
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
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  upstreamTimeoutMs: number;
  proxyProtocolTimeoutMs: number;
  shutdownTimeoutMs: number;
  maxHeaderSize: number;
  maxHeaders: number;
  maxConnectionsPerIp: number;
  maxSockets: number;
  maxUpstreamPerIp: number;
  bodyBufferSize: number;
  targetDownMs: number;
  preserveHost: boolean;
  tls: { cert: string; key: string } | null;
}

/**
 * Validates options at the top, as undici does, with the same rules as the config loader
 * ({@link resolveProxyConfig}): every problem is collected and thrown as one {@link ConfigError}
 * whose lines name the option (`proxy.headerTimeoutMs: ...`).
 */
export function resolveProxyOptions(
  options: ProxyOptions,
  http: HttpConfig | undefined,
): ResolvedProxyOptions {
  const problems: string[] = [];
  const base = http ?? DEFAULT_HTTP_CONFIG;
  const { accessLog, logger: _logger, forwardedHeader, ...settings } = options;
  // An access log already open is the caller's; a file to open is checked like the config's.
  const logSpec = accessLog === undefined || accessLog === null || 'write' in accessLog ? null : accessLog;
  const config = resolveProxyConfig({ ...settings, accessLog: logSpec }, base, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const { listen, deny, accessLog: _none, ...rest } = config;
  return {
    ...rest,
    listeners: listen.map((listener, i) => ({
      text: listener.address,
      address: parseListenAddress(listener.address, `proxy.listen.${i}`),
      proxyProtocol: listener.proxyProtocol,
      tls: listener.tls,
    })),
    forwardedHeader: forwardedHeader ?? base.forwardedHeader,
    drop: deny === 'drop',
    denyResponse: deny === 'drop' ? base.deny : deny,
  };
}
