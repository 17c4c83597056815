/**
 * `portcullis/proxy`: the reverse proxy (`createProxy`), its access log and the PROXY protocol
 * parser. A separate entry point, so that importing the engine never loads http-proxy-3.
 */

export {
  type AccessLog,
  type AccessLogEntry,
  type AccessLogFormat,
  type AccessLogOptions,
  accessLogMiddleware,
  createAccessLog,
  formatCombined,
  formatJsonLine,
} from '../../sources/http/access-log.js';
export { ConnectionLimit } from '../../sources/socket/connection-limit.js';
export {
  encodeProxyV1,
  encodeProxyV2,
  type ProxyHeader,
  parseProxyHeader,
  readProxyHeader,
} from '../../sources/socket/proxy-protocol.js';
export { type ConnectionInfo, connections } from './connection-gate.js';
export { setForwardedHeaders } from './forwarded-headers.js';
export { type ListenAddress, parseListenAddress } from './listen-address.js';
export type {
  ProxyDenyOption,
  ProxyListenOptions,
  ProxyOptions,
  ResolvedListener,
  ResolvedProxyOptions,
} from './options.js';
export { resolveProxyOptions } from './options.js';
export { Exchange, type Pass, type PassContext, runPasses, WEB_PASSES, WS_PASSES } from './passes.js';
export { createProxy, PortcullisProxy, type ProxyAddress, type ProxyEventMap } from './proxy.js';
export { createProxyStats, type ProxyStats } from './stats.js';
export { type Target, TargetPool, type TargetPoolOptions } from './targets.js';
export { TlsCredentials } from './tls-credentials.js';
export { isConnectError, UpstreamTimeoutError, upstreamStatus } from './upstream-errors.js';
