/** Counters of one proxy since it started. */
export interface ProxyStats {
  /** Connections accepted (before any check). */
  connections: number;
  /** Requests (and upgrade requests) that reached the pipeline. */
  requests: number;
  /** Banned clients' connections closed without a byte (`deny: drop`), at accept or mid-connection. */
  dropped: number;
  /** Banned clients answered with the deny response. */
  denied: number;
  /** Requests refused with 429 by a rate jail. */
  rateLimited: number;
  /** Connections closed because their address held `max_connections_per_ip` already. */
  overConnectionLimit: number;
  /** Answered 502: the upstream refused, reset or could not be reached. */
  badGateway: number;
  /** Answered 504: the upstream was silent for `timeouts.upstream`. */
  gatewayTimeout: number;
  /** Requests sent again to another target (or a fresh connection) after a connect error. */
  retries: number;
  /** Requests Node's parser refused (400 garbage, 408 too slow, 431 head too large). */
  clientErrors: number;
  /** Request bodies answered 408 after `timeouts.body` without a byte. */
  bodyTimeouts: number;
  /** Requests answered 400/505 for a protocol other than HTTP/1.x (`RTSP/1.0`, `HTTP/2.0`). */
  badProtocol: number;
  /** Requests answered 503: their client had `max_upstream_per_ip` requests at the upstreams. */
  overUpstreamShare: number;
  /** Connections (WebSockets included) closed because their client was banned while connected. */
  closedOnBan: number;
  /** Connections closed for a missing or invalid PROXY protocol header. */
  proxyProtocolErrors: number;
  /** TLS handshakes that failed or timed out. */
  tlsErrors: number;
  /** WebSocket (and other) upgrades handed to the upstream. */
  upgrades: number;
}

export function createProxyStats(): ProxyStats {
  return {
    connections: 0,
    requests: 0,
    dropped: 0,
    denied: 0,
    rateLimited: 0,
    overConnectionLimit: 0,
    badGateway: 0,
    gatewayTimeout: 0,
    retries: 0,
    clientErrors: 0,
    bodyTimeouts: 0,
    badProtocol: 0,
    overUpstreamShare: 0,
    closedOnBan: 0,
    proxyProtocolErrors: 0,
    tlsErrors: 0,
    upgrades: 0,
  };
}
