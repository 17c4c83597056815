import { type ClientRequest, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../core/logger.js';
import type { AccessLog } from '../../sources/http/access-log.js';
import type { Denial } from '../../sources/http/deny.js';
import { httpEventOf } from '../../sources/http/http-event.js';
import { normalizeTarget } from '../../sources/http/normalize-path.js';
import type { HttpPipeline } from '../../sources/http/pipeline.js';
import { type ClientConnection, type ClientConnections, clientConnectionOf } from './client-connections.js';
import { type ConnectionInfo, connections, dropSocket } from './connection-gate.js';
import { removeHopByHop, setForwardedHeaders } from './forwarded-headers.js';
import type { ProxyStats } from './stats.js';
import type { Target, TargetPool } from './targets.js';
import { endSocket, rawResponse } from './upstream-errors.js';

/**
 * A request's journey through the proxy, as an ordered list of small named passes (the shape of
 * http-proxy-3's `WEB_PASSES`). Each pass looks at one {@link Exchange} and returns:
 * `undefined` to go on, `false` when it answered (the journey ends), or a promise of "go on?"
 * for the passes that may wait (a pipelined request's turn, rate jails, a body being buffered).
 * For an ordinary request nothing before `forward` waits on I/O or runs a
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
  /** The connection's state (pipelined exchanges, slow-client checks); absent off the proxy's gate. */
  readonly client: ClientConnection | undefined;
  /** The client whose upstream share this exchange holds. */
  upstreamHeldBy: string | null = null;
  /** The proxy answered it itself (408, 400, 503): the upstream's answer is not wanted. */
  answered = false;
  /** The request to the upstream, once it has a socket. */
  proxyReq: ClientRequest | undefined = undefined;
  /** The body read so far followed by the rest, when it was buffered before forwarding. */
  body: Readable | undefined = undefined;

  constructor(req: IncomingMessage, res: ServerResponse | null, socket: Socket, head: Buffer | undefined) {
    this.req = req;
    this.res = res;
    this.socket = socket;
    this.head = head;
    this.connection = connections.get(socket) ?? unknownConnection(socket);
    this.client = clientConnectionOf(socket);
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
  /** Request header fields accepted (`max_headers`); more is answered 431. */
  readonly maxHeaders: number;
  readonly stats: ProxyStats;
  readonly logger: Logger;
  readonly clients: ClientConnections;
  /** Request body bytes read before the upstream is asked (0: stream at once). */
  readonly bodyBufferSize: number;
  /** Between two reads of a request body, ms. */
  readonly bodyTimeoutMs: number;
  /** The socket timeout outside a body, ms (0: none). */
  readonly idleTimeoutMs: number;
  /** The callback given to http-proxy-3 for every forwarded request. */
  readonly onProxyError: (error: Error, req: IncomingMessage, res: ServerResponse | Socket) => void;
  /** Told the time (ms) each forwarded request spent in the passes; set by the admin metrics. */
  readonly latency?: { record(ms: number): void } | undefined;
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
  if (exchange.client !== undefined) proxy.clients.begin(exchange.client, exchange);
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
/**
 * Pipelined requests on one connection take turns: a request is judged (ban check, rate) only
 * once the one before it on the same connection was answered and judged, so 200 wrong passwords
 * written at once reach the upstream `maxretry` times, not 200. Waits only for a pipelining client;
 * every request is in the access log (the pass before), whether or not its turn came.
 */
function takeTurn(exchange: Exchange, proxy: PassContext): undefined | Promise<boolean> {
  if (exchange.res === null) return undefined; // an upgrade: the connection is handed over
  const waiting = proxy.pipeline.turn(exchange.req, exchange.res);
  // A connection that died while the request waited: logged (status 0), never forwarded.
  return waiting;
}

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

/**
 * HTTP/1.x only: another major version is answered 505, and a first request line naming another
 * protocol (`OPTIONS / RTSP/1.0`, which Node's parser reads as HTTP/1.0) 400. Logged and judged.
 */
function checkProtocol(exchange: Exchange, proxy: PassContext): undefined | false {
  const req = exchange.req;
  let status = req.httpVersionMajor === 1 ? 0 : 505;
  const head = exchange.client?.requests === 1 ? exchange.client.firstLine : undefined;
  if (status === 0 && head !== undefined && !HTTP_LINE.test(head)) status = 400;
  // Node kept one header line past the cap: the request has more than `max_headers`.
  if (status === 0 && req.rawHeaders.length > 2 * proxy.maxHeaders) status = 431;
  if (status === 0) return undefined;
  proxy.stats.badProtocol++;
  answer(exchange, status, true);
  return false;
}

const HTTP_LINE = / HTTP\/\d\.\d$/;

/**
 * A request body is read (under `timeouts.body` between reads) up to `body_buffer_size` before
 * an upstream connection is taken: a slow upload holds no upstream socket until then. What is
 * read is sent first, then the rest streams.
 */
function readBody(exchange: Exchange, proxy: PassContext): undefined | Promise<boolean> {
  const { req, res } = exchange;
  if (res === null || !hasBody(req) || req.complete) return undefined;
  watchBody(exchange, proxy);
  const limit = proxy.bodyBufferSize;
  if (limit === 0) return undefined;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (go: boolean, ended: boolean) => {
      if (settled) return;
      settled = true;
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onAbort);
      res.removeListener('close', onAbort);
      if (go && !exchange.answered && !res.destroyed) {
        req.pause();
        exchange.body = bufferedBody(chunks, req, ended);
        resolve(true);
      } else resolve(false);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) done(true, false);
    };
    const onEnd = () => done(true, true);
    const onAbort = () => done(false, false);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onAbort);
    res.once('close', onAbort);
  });
}

/** Holds the connection to `timeouts.body` between reads until the body is in (then the idle timeout). */
function watchBody(exchange: Exchange, proxy: PassContext): void {
  const { socket, req } = exchange;
  socket.setTimeout(proxy.bodyTimeoutMs);
  req.once('end', () => {
    if (socket.timeout === proxy.bodyTimeoutMs) socket.setTimeout(proxy.idleTimeoutMs);
  });
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function bufferedBody(chunks: Buffer[], req: IncomingMessage, ended: boolean): Readable {
  const body = new PassThrough({ highWaterMark: 64 * 1024 });
  for (const chunk of chunks) body.write(chunk);
  if (ended) body.end();
  else req.pipe(body);
  return body;
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

/**
 * Hands the request to http-proxy-3 (keep-alive agent, next target), within the client's share of
 * upstream requests (`max_upstream_per_ip`; 503 past it). Errors: `onProxyError`.
 */
function forward(exchange: Exchange, proxy: PassContext): false {
  const ip = exchange.ip;
  if (ip !== null && exchange.client !== undefined && !proxy.clients.takeUpstream(exchange, ip)) {
    proxy.stats.overUpstreamShare++;
    answer(exchange, 503, false, { 'Retry-After': '1' });
    return false;
  }
  // The proxy's added latency (metrics): one clock read when measured, a field test otherwise.
  proxy.latency?.record(performance.now() - exchange.startedAt);
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
  // The upstream routes what the jails judged: dot segments, duplicate slashes and encoded
  // unreserved characters resolved (the access log and filters already hold the raw target).
  exchange.req.url = normalizeTarget(exchange.req.url ?? '/');
  const forwarder = exchange.req.headers.connection === undefined ? target.proxy : target.keepAliveProxy;
  const res = exchange.res as ServerResponse;
  if (exchange.body === undefined) forwarder.web(exchange.req, res, proxy.onProxyError);
  else forwarder.web(exchange.req, res, { buffer: exchange.body }, proxy.onProxyError);
}

/** Hands an upgrade to http-proxy-3, which pipes the two sockets once the upstream switches. */
function forwardUpgrade(exchange: Exchange, proxy: PassContext): false {
  const target = proxy.pool.pick();
  exchange.target = target;
  exchange.attempts++;
  proxy.stats.upgrades++;
  // A WebSocket is one client's, even through a trusted proxy: a ban of that client closes it.
  if (exchange.client !== undefined) proxy.clients.upgraded(exchange.client, exchange.ip);
  // The upstream routes the path the jails judged, as for any request.
  exchange.req.url = normalizeTarget(exchange.req.url ?? '/');
  target.proxy.ws(exchange.req, exchange.socket, exchange.head ?? Buffer.alloc(0), proxy.onProxyError);
  return false;
}

/** The passes of an HTTP request, in order. */
export const WEB_PASSES = Object.freeze({
  identifyClient,
  accessLog,
  takeTurn,
  refuseBanned,
  limitRate,
  observe,
  checkProtocol,
  readBody,
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

/**
 * The proxy's own answer to an exchange (`status` with its reason as body): on the response when
 * it is the one being written and nothing was sent yet, else the connection is closed. `close`:
 * the connection closes after it. The exchange is logged and judged with this status.
 */
export function answer(
  exchange: Exchange,
  status: number,
  close: boolean,
  headers: Record<string, string> = {},
): void {
  exchange.answered = true;
  exchange.proxyReq?.destroy();
  const { res, socket } = exchange;
  const body = `${STATUS_CODES[status] ?? 'Error'}\n`;
  if (res === null) {
    exchange.status = status;
    endSocket(socket, rawResponse(status, undefined, headers));
    return;
  }
  const current = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  if (res.headersSent || (close && current !== res)) {
    socket.destroy();
    return;
  }
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    ...(close ? { Connection: 'close' } : {}),
  });
  res.end(body);
}

/** Writes a refusal: on the response, or raw on an upgrade's socket. */
function refuse(exchange: Exchange, proxy: PassContext, denial: Denial): void {
  if (exchange.res !== null) {
    proxy.pipeline.deny(exchange.res, denial);
    return;
  }
  // An upgrade is refused on the raw socket, with the same body and type as any request.
  exchange.status = denial.status;
  const headers: Record<string, string> = {};
  if (denial.retryAfterS !== undefined) headers['Retry-After'] = String(denial.retryAfterS);
  const response = proxy.pipeline.denyResponseOf(denial);
  endSocket(exchange.socket, rawResponse(denial.status, response.body, headers, response.contentType));
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
