import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../core/logger.js';
import type { AccessLog } from '../../sources/http/access-log.js';
import type { Denial } from '../../sources/http/deny.js';
import { httpEventOf } from '../../sources/http/http-event.js';
import type { HttpPipeline } from '../../sources/http/pipeline.js';
import { type ConnectionInfo, connections, dropSocket } from './connection-gate.js';
import { removeHopByHop, setForwardedHeaders } from './forwarded-headers.js';
import type { ProxyStats } from './stats.js';
import type { Target, TargetPool } from './targets.js';
import { endSocket, rawResponse } from './upstream-errors.js';

/**
 * A request's journey through the proxy, as an ordered list of small named passes (the shape of
 * http-proxy-3's `WEB_PASSES`). Each pass looks at one {@link Exchange} and returns:
 * `undefined` to go on, `false` when it answered (the journey ends), or a promise of "go on?"
 * for the one pass that may wait (rate jails). Nothing before `forward` waits on I/O or runs a
 * regular expression for an allowed client; it allocates the exchange (and, when http jails
 * observe, the pipeline's after-response listener). Filters run after the response.
 */
export type Pass = (exchange: Exchange, proxy: PassContext) => undefined | false | Promise<boolean>;

/** One request (or upgrade request) and what the passes learnt about it. */
export class Exchange {
  readonly req: IncomingMessage;
  /** `null` for an upgrade: the answer is written on `socket`. */
  readonly res: ServerResponse | null;
  readonly socket: Socket;
  /** The first bytes after an upgrade request's head. */
  readonly head: Buffer | undefined;
  readonly connection: ConnectionInfo;
  /** The client, as judged (after trusted proxies); `null` when it cannot be known. */
  ip: string | null = null;
  target: Target | undefined = undefined;
  /** Targets tried so far. */
  attempts = 0;
  /** Upgrades: the upstream's answer (101 when switched), for the log line written at close. */
  status = 0;
  readonly startedAt: number;

  constructor(req: IncomingMessage, res: ServerResponse | null, socket: Socket, head: Buffer | undefined) {
    this.req = req;
    this.res = res;
    this.socket = socket;
    this.head = head;
    this.connection = connections.get(socket) ?? unknownConnection(socket);
    this.startedAt = performance.now();
  }
}

function unknownConnection(socket: Socket): ConnectionInfo {
  // A socket that did not come through the gate (a server the proxy did not create).
  return { peer: socket.remoteAddress ?? null, trusted: false, encrypted: 'encrypted' in socket };
}

/** What passes may use: the proxy, seen from inside. */
export interface PassContext {
  readonly pipeline: HttpPipeline;
  readonly pool: TargetPool;
  readonly accessLog: AccessLog | undefined;
  readonly drop: boolean;
  readonly stats: ProxyStats;
  readonly logger: Logger;
  /** The callback given to http-proxy-3 for every forwarded request. */
  readonly onProxyError: (error: Error, req: IncomingMessage, res: ServerResponse | Socket) => void;
}

const kExchange = Symbol('portcullis.exchange');
type WithExchange = IncomingMessage & { [kExchange]?: Exchange };

/** The exchange of a request the proxy is handling. */
export function exchangeOf(req: IncomingMessage): Exchange | undefined {
  return (req as WithExchange)[kExchange];
}

/** Who is asking: PROXY protocol client, trusted forwarding headers, or the peer. */
function identifyClient(exchange: Exchange, proxy: PassContext): undefined {
  (exchange.req as WithExchange)[kExchange] = exchange;
  proxy.stats.requests++;
  exchange.ip = proxy.pipeline.clientIp(exchange.req);
  return undefined;
}

/** Every exchange is logged, refused ones included (log jails read the file). */
function accessLog(exchange: Exchange, proxy: PassContext): undefined {
  const log = proxy.accessLog;
  if (log === undefined) return undefined;
  if (exchange.res !== null) log.track(exchange.req, exchange.res, exchange.ip, exchange.req.url);
  else exchange.socket.once('close', () => logUpgrade(exchange, log));
  return undefined;
}

/** A banned client is refused here: its connection dropped (`deny: drop`) or the deny response. */
function refuseBanned(exchange: Exchange, proxy: PassContext): undefined | false {
  const ip = exchange.ip;
  if (ip === null) return undefined;
  const denial = proxy.pipeline.check(ip);
  if (denial === undefined) return undefined;
  // Dropping is for the client's own connection; one named by a trusted proxy shares it with others.
  if (proxy.drop && ip === exchange.connection.peer) {
    proxy.stats.dropped++;
    dropSocket(exchange.socket);
    return false;
  }
  proxy.stats.denied++;
  refuse(exchange, proxy, denial);
  return false;
}

/** Rate jails (in-memory, per instance): 429 over the rate. */
function limitRate(exchange: Exchange, proxy: PassContext): undefined | Promise<boolean> {
  const ip = exchange.ip;
  if (ip === null || !proxy.pipeline.hasRateJails) return undefined;
  const limited = proxy.pipeline.rate(exchange.req, ip, exchange.req.url);
  if (limited === undefined) return undefined;
  return limited.then((denial) => {
    if (denial === undefined) return true;
    proxy.stats.rateLimited++;
    refuse(exchange, proxy, denial);
    return false;
  });
}

/** After the response, the exchange goes to the http jails' filters. */
function observe(exchange: Exchange, proxy: PassContext): undefined {
  if (exchange.ip === null) return undefined;
  if (exchange.res !== null) proxy.pipeline.track(exchange.req, exchange.res, exchange.ip, exchange.req.url);
  else if (proxy.pipeline.observing) exchange.socket.once('close', () => observeUpgrade(exchange, proxy));
  return undefined;
}

/** X-Forwarded-For/-Proto/-Host and X-Real-IP for the upstream; hop-by-hop headers removed. */
function forwardedHeaders(exchange: Exchange): undefined {
  const { connection } = exchange;
  removeHopByHop(exchange.req.headers, exchange.res === null);
  const peer = connection.peer ?? exchange.ip;
  if (peer !== null) {
    setForwardedHeaders(exchange.req.headers, peer, connection.trusted, exchange.ip, connection.encrypted);
  }
  return undefined;
}

/** Hands the request to http-proxy-3 (keep-alive agent, next target). Errors: `onProxyError`. */
function forward(exchange: Exchange, proxy: PassContext): false {
  forwardTo(exchange, proxy, proxy.pool.pick());
  return false;
}

/**
 * Sends the request to `target`. A client's `Connection` header (`close`, or a browser's
 * `keep-alive`) is replaced by `keep-alive` upstream with options built once per target; the
 * client's own header stays on the request for its response.
 */
export function forwardTo(exchange: Exchange, proxy: PassContext, target: Target): void {
  exchange.target = target;
  exchange.attempts++;
  const forwarder = exchange.req.headers.connection === undefined ? target.proxy : target.keepAliveProxy;
  forwarder.web(exchange.req, exchange.res as ServerResponse, proxy.onProxyError);
}

/** Hands an upgrade to http-proxy-3, which pipes the two sockets once the upstream switches. */
function forwardUpgrade(exchange: Exchange, proxy: PassContext): false {
  const target = proxy.pool.pick();
  exchange.target = target;
  exchange.attempts++;
  proxy.stats.upgrades++;
  target.proxy.ws(exchange.req, exchange.socket, exchange.head ?? Buffer.alloc(0), proxy.onProxyError);
  return false;
}

/** The passes of an HTTP request, in order. */
export const WEB_PASSES = Object.freeze({
  identifyClient,
  accessLog,
  refuseBanned,
  limitRate,
  observe,
  forwardedHeaders,
  forward,
});

/** The passes of an upgrade request (WebSocket): the same journey, forwarded as an upgrade. */
export const WS_PASSES = Object.freeze({ ...WEB_PASSES, forward: forwardUpgrade });

/**
 * Runs `passes` from `from` on: synchronously while each goes on; after a promise, from the pass
 * that follows. A pass that throws is a bug: the client gets a 502 rather than a hung request.
 */
export function runPasses(passes: readonly Pass[], exchange: Exchange, proxy: PassContext, from = 0): void {
  try {
    for (let i = from; i < passes.length; i++) {
      const result = (passes[i] as Pass)(exchange, proxy);
      if (result === undefined) continue;
      if (result === false) return;
      result.then(
        (go) => {
          if (go) runPasses(passes, exchange, proxy, i + 1);
        },
        (error: unknown) => passFailed(exchange, proxy, error),
      );
      return;
    }
  } catch (error) {
    passFailed(exchange, proxy, error);
  }
}

function passFailed(exchange: Exchange, proxy: PassContext, error: unknown): void {
  proxy.logger.error({ event: 'proxy-bug', err: error }, 'unexpected error while handling a request');
  const res = exchange.res;
  if (res === null) endSocket(exchange.socket, rawResponse(502));
  else if (!res.headersSent) {
    res.statusCode = 502;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end('Bad Gateway\n');
  } else res.destroy();
}

/** Writes a refusal: on the response, or raw on an upgrade's socket. */
function refuse(exchange: Exchange, proxy: PassContext, denial: Denial): void {
  if (exchange.res !== null) {
    proxy.pipeline.deny(exchange.res, denial);
    return;
  }
  exchange.status = denial.status;
  const headers: Record<string, string> = {};
  if (denial.retryAfterS !== undefined) headers['Retry-After'] = String(denial.retryAfterS);
  endSocket(exchange.socket, rawResponse(denial.status, undefined, headers));
}

function logUpgrade(exchange: Exchange, log: AccessLog): void {
  const req = exchange.req;
  log.write({
    ip: exchange.ip,
    timeMs: Date.now(),
    method: req.method ?? '-',
    url: req.url ?? '/',
    protocol: `HTTP/${req.httpVersion}`,
    status: exchange.status,
    bytes: exchange.socket.bytesWritten,
    referer: req.headers.referer ?? '',
    userAgent: req.headers['user-agent'] ?? '',
    host: req.headers.host ?? '',
    durationMs: performance.now() - exchange.startedAt,
  });
}

function observeUpgrade(exchange: Exchange, proxy: PassContext): void {
  const req = exchange.req;
  const now = proxy.pipeline.guard.clock.now();
  const event = httpEventOf(req, undefined, exchange.ip as string, req.url ?? '/', exchange.startedAt, now);
  void proxy.pipeline.observe({ ...event, status: exchange.status, bytesSent: exchange.socket.bytesWritten });
}
