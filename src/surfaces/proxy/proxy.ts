import { EventEmitter } from 'node:events';
import {
  type ClientRequest,
  createServer,
  type IncomingMessage,
  type Server,
  ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { CidrSet } from '../../core/prefix-trie.js';
import { type AccessLog, createAccessLog } from '../../sources/http/access-log.js';
import type { HttpEvent } from '../../sources/http/http-event.js';
import { createHttpPipeline, type HttpEngine, type HttpPipeline } from '../../sources/http/pipeline.js';
import { ConnectionLimit } from '../../sources/socket/connection-limit.js';
import { type ClientConnection, ClientConnections, clientConnectionOf } from './client-connections.js';
import { connections, installGate } from './connection-gate.js';
import { removeResponseHopByHop } from './forwarded-headers.js';
import {
  type ProxyOptions,
  type ResolvedListener,
  type ResolvedProxyOptions,
  resolveProxyOptions,
} from './options.js';
import {
  answer,
  Exchange,
  exchangeOf,
  forwardTo,
  type Pass,
  type PassContext,
  runPasses,
  WEB_PASSES,
  WS_PASSES,
} from './passes.js';
import { createProxyStats, type ProxyStats } from './stats.js';
import { TargetPool } from './targets.js';
import { TlsCredentials } from './tls-credentials.js';
import { endSocket, isConnectError, rawResponse, upstreamStatus } from './upstream-errors.js';

/** One listening address, known once listening (port 0 becomes the real port). */
export interface ProxyAddress {
  /** As configured: `0.0.0.0:8080`. */
  readonly listen: string;
  /** As bound: `0.0.0.0`, `::1`. */
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** `http://127.0.0.1:8080`, `https://[::1]:8443`. */
  readonly url: string;
  readonly proxyProtocol: boolean;
  readonly tls: boolean;
}

/** Events of a {@link PortcullisProxy}. None is `error`: a proxy never throws at its user. */
export interface ProxyEventMap {
  /** An upstream failed a request: the client got `status` (502 or 504). */
  upstreamError: [error: Error, target: string, status: number];
}

const WEB_PASS_LIST: readonly Pass[] = Object.values(WEB_PASSES);
const WS_PASS_LIST: readonly Pass[] = Object.values(WS_PASSES);
const UPSTREAM_ERROR_LOG_INTERVAL_MS = 1_000;
/** Without a decision subscription on the engine, open connections are checked against bans this often. */
const BAN_POLL_MS = 50;

/**
 * The reverse proxy: listeners guarded by the engine, forwarding to one or more upstreams over
 * http-proxy-3 with keep-alive agents. Build it with {@link createProxy}.
 */
export class PortcullisProxy extends EventEmitter<ProxyEventMap> implements PassContext {
  readonly guard: HttpEngine;
  readonly pipeline: HttpPipeline;
  readonly pool: TargetPool;
  readonly drop: boolean;
  readonly maxHeaders: number;
  readonly stats: ProxyStats = createProxyStats();
  /**
   * Told the time (ms) each forwarded request spent in the proxy before going upstream (the
   * admin metrics' `portcullis_http_added_latency_seconds`). Default none: nothing is measured.
   */
  latency: { record(ms: number): void } | undefined = undefined;
  readonly logger: Logger;
  readonly clients: ClientConnections;
  readonly bodyBufferSize: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  #accessLog: AccessLog | undefined;
  #ownsAccessLog = false;
  readonly #options: ResolvedProxyOptions;
  readonly #servers: Server[] = [];
  readonly #addresses: ProxyAddress[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #credentials: TlsCredentials | null;
  readonly #limit: ConnectionLimit | null;
  readonly #trusted: CidrSet;
  readonly #lastErrorLog = new Map<string, number>();
  #stopWatchingBans: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  /** Use {@link createProxy}: the constructor validates and builds, but does not listen. */
  constructor(guard: HttpEngine, options: ProxyOptions) {
    super();
    const resolved = resolveProxyOptions(options, guard.config.http);
    this.#options = resolved;
    this.guard = guard;
    this.logger = options.logger ?? silentLogger;
    this.drop = resolved.drop;
    this.maxHeaders = resolved.maxHeaders;
    this.#trusted = new CidrSet(resolved.trustedProxies);
    this.#credentials =
      resolved.tls === null ? null : new TlsCredentials(resolved.tls.cert, resolved.tls.key);
    this.#limit = resolved.maxConnectionsPerIp > 0 ? new ConnectionLimit(resolved.maxConnectionsPerIp) : null;
    this.clients = new ClientConnections(resolved.maxUpstreamPerIp);
    this.bodyBufferSize = resolved.bodyBufferSize;
    this.bodyTimeoutMs = resolved.bodyTimeoutMs;
    this.idleTimeoutMs = resolved.idleTimeoutMs;
    this.pipeline = createHttpPipeline(guard, {
      trustedProxies: resolved.trustedProxies,
      forwardedHeader: resolved.forwardedHeader,
      deny: resolved.denyResponse,
      onError: (error) =>
        this.logger.warn({ event: 'proxy-observe-error', err: error }, 'error while judging a request'),
    });
    this.pool = new TargetPool(resolved.targets, {
      maxSockets: resolved.maxSockets,
      downMs: resolved.targetDownMs,
      upstreamTimeoutMs: resolved.upstreamTimeoutMs,
      changeOrigin: !resolved.preserveHost,
      // No per-request listener beyond proxyRes: upstream timeouts are watched per connection.
      setup: (proxy) => {
        proxy.on('proxyReqWs', this.#onProxyReqWs);
        proxy.on('proxyReq', onProxyReq);
        proxy.on('proxyRes', onProxyRes);
        // Client sockets of WebSockets report their errors here; a reset client is not our error.
        proxy.on('error', this.#onSocketError);
        proxy.on('econnreset', ignore);
      },
    });
  }

  /** Where the proxy listens, in the order of `listen`. Empty before `listen()`. */
  get addresses(): readonly ProxyAddress[] {
    return this.#addresses;
  }

  get accessLog(): AccessLog | undefined {
    return this.#accessLog;
  }

  /** Opens the access log and starts every listener. Rejects (having closed what it opened) on failure. */
  async listen(accessLog: ProxyOptions['accessLog']): Promise<void> {
    if (accessLog !== undefined && accessLog !== null) {
      if ('write' in accessLog && typeof accessLog.write === 'function')
        this.#accessLog = accessLog as AccessLog;
      else {
        const spec = accessLog as { path: string; format?: 'combined' | 'json'; flushIntervalMs?: number };
        this.#accessLog = await createAccessLog(spec, (error) =>
          this.logger.error(
            { event: 'access-log-error', err: error },
            `access log ${spec.path}: write failed`,
          ),
        );
        this.#ownsAccessLog = true;
      }
    }
    this.#watchBans();
    for (const listener of this.#options.listeners) this.#addresses.push(await this.#listen(listener));
  }

  /**
   * A ban closes the banned client's open connections and WebSockets at once: on the engine's
   * ban event when it has a decision feed, else by checking every connected client every 50 ms.
   */
  #watchBans(): void {
    const cut = (target: string) => {
      const closed = this.clients.cut(target, (ip) => this.guard.isBanned(ip), this.drop);
      this.stats.closedOnBan += closed;
    };
    if (this.guard.subscribe !== undefined) {
      this.#stopWatchingBans = this.guard.subscribe({
        ban: (decision) => {
          if (!decision.dryRun) cut(decision.target);
        },
      });
      return;
    }
    const timer = setInterval(() => {
      for (const ip of [...this.clients.clients]) if (this.guard.isBanned(ip)) cut(ip);
    }, BAN_POLL_MS);
    timer.unref();
    this.#stopWatchingBans = () => clearInterval(timer);
  }

  /** Writes the access log's pending lines and opens its file again (after logrotate). */
  async reopenAccessLog(): Promise<void> {
    await this.#accessLog?.reopen();
  }

  /**
   * Reads the TLS certificate and key again (SIGHUP); new connections use them. Returns false
   * (and logs why) when they do not load: the previous pair stays in use.
   */
  reloadTls(): boolean {
    if (this.#credentials === null) return true;
    try {
      this.#credentials.reload();
      this.logger.info(
        { event: 'tls-reload' },
        `TLS certificate reloaded from ${this.#credentials.certPath}`,
      );
      return true;
    } catch (error) {
      this.logger.error(
        { event: 'tls-reload-failed', error: (error as Error).message },
        'TLS certificate NOT reloaded; keeping the running one',
      );
      return false;
    }
  }

  /**
   * Graceful stop: listeners close at once, idle connections too; requests in flight get
   * `shutdownTimeoutMs` to finish, then every connection left (WebSockets included) is closed.
   * Upstream connections and the access log (when the proxy opened it) are closed last.
   * Idempotent; resolves when every handle is released.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown(this.#options.shutdownTimeoutMs);
    return this.#closing;
  }

  /** Immediate stop: every connection is closed now. Resolves when handles are released. */
  destroy(): Promise<void> {
    this.#closing ??= this.#shutdown(0);
    for (const socket of this.#sockets) socket.destroy();
    return this.#closing;
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#stopWatchingBans?.();
    this.#stopWatchingBans = undefined;
    const closed = this.#servers.map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    const deadline = Date.now() + graceMs;
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      for (const server of this.#servers) server.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, graceMs)));
    }
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(closed);
    this.pool.destroy();
    this.pipeline.close();
    if (this.#ownsAccessLog) await this.#accessLog?.close();
  }

  async #listen(listener: ResolvedListener): Promise<ProxyAddress> {
    const o = this.#options;
    const server = createServer({
      maxHeaderSize: o.maxHeaderSize,
      headersTimeout: o.headerTimeoutMs,
      requestTimeout: o.requestTimeoutMs,
      // Node checks the two timeouts above every this often (30 s by default).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(o.headerTimeoutMs / 4))),
      noDelay: true,
    });
    server.keepAliveTimeout = o.keepAliveTimeoutMs;
    // Node keeps no more header lines than this; one more tells a request over the cap (→ 431).
    server.maxHeadersCount = o.maxHeaders + 1;
    // 0 (the default) keeps Node from re-arming a timer on every read and write.
    server.timeout = o.idleTimeoutMs;
    server.on('request', this.#onRequest);
    server.on('upgrade', this.#onUpgrade);
    server.on('clientError', this.#onClientError);
    // Listening takes socket timeouts from Node (which would close silently): see #onTimeout.
    server.on('timeout', this.#onTimeout);
    if (listener.proxyProtocol && this.#trusted.size === 0) {
      this.logger.warn(
        { event: 'proxy-protocol-untrusted', listen: listener.address },
        'a PROXY protocol listener with no trusted_proxies believes any peer: set trusted_proxies to the load balancer',
      );
    }
    installGate(server, {
      bans: this.guard,
      drop: this.drop,
      trusted: this.#trusted,
      proxyProtocol: listener.proxyProtocol,
      proxyProtocolTimeoutMs: o.proxyProtocolTimeoutMs,
      tls: listener.tls ? this.#credentials : null,
      handshakeTimeoutMs: o.headerTimeoutMs,
      limit: this.#limit,
      sockets: this.#sockets,
      stats: this.stats,
      logger: this.logger,
      firstByteTimeoutMs: o.headerTimeoutMs,
      onConnection: (socket, info) => this.clients.add(socket, info.peer, info.trusted),
      onFirstBytes: (socket, chunk) => {
        const client = clientConnectionOf(socket);
        if (client === undefined) return;
        client.head = chunk.subarray(0, 2048);
        // Empty lines before the request line are allowed (RFC 9112 §2.2) and skipped by Node's parser.
        let start = 0;
        while (start < chunk.length && (chunk[start] === 0x0d || chunk[start] === 0x0a)) start++;
        const eol = chunk.indexOf(0x0a, start);
        if (eol !== -1) client.firstLine = chunk.toString('latin1', start, eol).replace(/\r$/, '');
      },
    });
    this.#servers.push(server);
    const { host, port, ipv6Only } = listener.address;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          new PortcullisError(
            ErrorCodes.PROXY_LISTEN,
            `proxy.listen: cannot listen on ${listener.text}: ${error.code ?? error.message}`,
            { cause: error },
          ),
        );
      };
      server.once('error', onError);
      server.listen({ host, port, ipv6Only }, () => {
        server.removeListener('error', onError);
        resolve();
      });
    });
    server.on('error', (error) =>
      this.logger.error({ event: 'proxy-listener-error', err: error }, 'listener error'),
    );
    const bound = server.address() as AddressInfo;
    const family = bound.family === 'IPv6' ? 'IPv6' : 'IPv4';
    const hostText = family === 'IPv6' ? `[${bound.address}]` : bound.address;
    return {
      listen: listener.text,
      address: bound.address,
      port: bound.port,
      family,
      url: `${listener.tls ? 'https' : 'http'}://${hostText}:${bound.port}`,
      proxyProtocol: listener.proxyProtocol,
      tls: listener.tls,
    };
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    // A connection is held to the header timeout until its first request, then to the idle one.
    if (socket.timeout === this.#options.headerTimeoutMs) socket.setTimeout(this.#options.idleTimeoutMs);
    runPasses(WEB_PASS_LIST, new Exchange(req, res, socket, undefined), this);
  };

  readonly #onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    // Node took its own listeners off the socket: until http-proxy-3 owns it, errors are ignored.
    socket.on('error', ignore);
    runPasses(WS_PASS_LIST, new Exchange(req, null, socket, head), this);
  };

  readonly #onProxyReqWs = (proxyReq: ClientRequest, req: IncomingMessage): void => {
    const exchange = exchangeOf(req);
    if (exchange === undefined) return;
    proxyReq.once('upgrade', () => {
      exchange.status = 101;
    });
    proxyReq.once('response', (response: IncomingMessage) => {
      exchange.status = response.statusCode ?? 0;
    });
  };

  readonly #onSocketError = (error: Error): void => {
    this.logger.debug({ event: 'proxy-socket-error', error: error.message }, 'client socket error');
  };

  /** http-proxy-3's error callback: retry, or 502/504. */
  readonly onProxyError = (error: Error, req: IncomingMessage, res: ServerResponse | Socket): void => {
    const exchange = exchangeOf(req);
    // The proxy answered it itself (408, 400): the upstream request was cut on purpose.
    if (exchange?.answered === true) return;
    if (!(res instanceof ServerResponse)) {
      this.#upgradeFailed(error, exchange, res);
      return;
    }
    // The client went away (its request errored, or it reset): nothing to answer.
    if (res.destroyed || req.socket.destroyed) return;
    const target = exchange?.target;
    const connectFailed = isConnectError(error);
    if (connectFailed && target !== undefined) this.pool.markDown(target);
    if (
      exchange !== undefined &&
      !res.headersSent &&
      target !== undefined &&
      this.#retry(exchange, error, connectFailed)
    ) {
      return;
    }
    const status = upstreamStatus(error);
    if (status === 504) this.stats.gatewayTimeout++;
    else this.stats.badGateway++;
    this.#reportUpstreamError(error, target?.url ?? '?', status);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    const body = status === 504 ? 'Gateway Timeout\n' : 'Bad Gateway\n';
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  };

  /**
   * Sends a request again when the upstream did not answer it: a connect error (to another
   * target), or, once, a connection reset before any answer (a pooled keep-alive connection the
   * upstream closed meanwhile; idempotent methods only). Only requests without a body, which the
   * first attempt has consumed.
   */
  #retry(exchange: Exchange, error: Error, connectFailed: boolean): boolean {
    const req = exchange.req;
    const headers = req.headers;
    if (headers['transfer-encoding'] !== undefined) return false;
    if (headers['content-length'] !== undefined && headers['content-length'] !== '0') return false;
    let next: ReturnType<TargetPool['pick']> | undefined;
    if (connectFailed) {
      if (exchange.attempts >= this.pool.targets.length) return false;
      next = this.pool.alternative(exchange.target as NonNullable<Exchange['target']>);
    } else if (
      exchange.attempts === 1 &&
      (error as NodeJS.ErrnoException).code === 'ECONNRESET' &&
      (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS')
    ) {
      next = this.pool.pick();
    }
    if (next === undefined) return false;
    this.stats.retries++;
    forwardTo(exchange, this, next);
    return true;
  }

  #upgradeFailed(error: Error, exchange: Exchange | undefined, socket: Socket): void {
    // After the switch the bytes are the application's: never write HTTP into them.
    if (exchange !== undefined && exchange.status === 101) return;
    if (exchange?.target !== undefined && isConnectError(error)) this.pool.markDown(exchange.target);
    const status = upstreamStatus(error);
    if (status === 504) this.stats.gatewayTimeout++;
    else this.stats.badGateway++;
    if (exchange !== undefined) exchange.status = status;
    this.#reportUpstreamError(error, exchange?.target?.url ?? '?', status);
    // http-proxy-3 ends the socket right after this callback; the answer goes out first.
    if (socket.writable && socket.bytesWritten === 0) socket.write(rawResponse(status));
  }

  #reportUpstreamError(error: Error, target: string, status: number): void {
    if (this.listenerCount('upstreamError') > 0) this.emit('upstreamError', error, target, status);
    const now = Date.now();
    if (now - (this.#lastErrorLog.get(target) ?? 0) < UPSTREAM_ERROR_LOG_INTERVAL_MS) return;
    this.#lastErrorLog.set(target, now);
    this.logger.warn(
      {
        event: 'upstream-error',
        target,
        status,
        error: (error as NodeJS.ErrnoException).code ?? error.message,
      },
      `upstream ${target} failed (${(error as NodeJS.ErrnoException).code ?? error.message}): answered ${status}`,
    );
  }

  /**
   * Requests Node's parser refused: garbage (400), a head over `max_header_size` (431), too slow
   * (408), a body cut short (400). A request whose body was arriving is answered on its own
   * response, so it is logged and judged once, with this status; anything else gets its own line
   * and event (with the partial request line, when the connection's first bytes held one).
   */
  readonly #onClientError = (error: NodeJS.ErrnoException, socket: Socket): void => {
    this.stats.clientErrors++;
    const code = error.code;
    const client = clientConnectionOf(socket);
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable || client?.closing === true) {
      socket.destroy();
      return;
    }
    const status =
      code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? 408
          : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
            ? 413
            : 400;
    const open = client?.incomplete();
    if (client !== undefined) client.closing = true;
    if (open !== undefined) {
      answer(open as Exchange, status, true);
      return;
    }
    // Responses still owed to pipelined requests: nothing may be written between them.
    if (client !== undefined && client.live.size > 0) socket.destroy();
    else if (socket.bytesWritten === 0 || client?.live.size === 0) endSocket(socket, rawResponse(status));
    else socket.destroy();
    this.#unparsed(socket, client, status);
  };

  /**
   * Socket timeouts (Node would close the connection silently): a body silent for `timeouts.body`
   * is answered 408 on its response; a request head begun and not finished gets a 408 line and
   * event of its own; an idle or silent connection is closed without a word.
   */
  readonly #onTimeout = (socket: Socket): void => {
    const client = clientConnectionOf(socket);
    if (client === undefined || client.closing || socket.destroyed) {
      socket.destroy();
      return;
    }
    const open = client.incomplete();
    if (open !== undefined) {
      client.closing = true;
      this.stats.bodyTimeouts++;
      answer(open as Exchange, 408, true);
      return;
    }
    if (client.live.size === 0 && socket.bytesRead > client.idleAt) {
      client.closing = true;
      this.stats.clientErrors++;
      endSocket(socket, rawResponse(408));
      this.#unparsed(socket, client, 408);
      return;
    }
    socket.destroy();
  };

  /** Logs and judges a request that never parsed: its partial request line when one is known. */
  #unparsed(socket: Socket, client: ClientConnection | undefined, status: number): void {
    const peer = connections.get(socket)?.peer ?? null;
    const line = client !== undefined && client.requests === 0 ? partialRequest(client.head) : NO_REQUEST;
    this.#accessLog?.write({
      ip: peer,
      timeMs: Date.now(),
      method: line.method === '' ? '-' : line.method,
      url: line.url,
      protocol: line.protocol,
      status,
      bytes: 0,
      referer: '',
      userAgent: '',
      host: '',
      durationMs: 0,
    });
    if (peer !== null && this.pipeline.observing)
      void this.pipeline.observe(clientErrorEvent(peer, status, this.guard.clock.now(), line));
  }
}

interface PartialRequest {
  method: string;
  url: string;
  protocol: string;
}

const NO_REQUEST: PartialRequest = { method: '', url: '', protocol: '' };
const REQUEST_START = /^([A-Z][A-Z0-9_-]{0,31}) (\S{1,8192})(?: (\S{0,16}))?/;

/** The method, target and protocol of the request line the client began, if it looks like one. */
function partialRequest(head: Buffer | undefined): PartialRequest {
  if (head === undefined) return NO_REQUEST;
  const text = head.toString('latin1');
  const eol = text.search(/\r?\n/);
  const match = REQUEST_START.exec(eol === -1 ? text : text.slice(0, eol));
  if (match === null) return NO_REQUEST;
  return { method: match[1] as string, url: match[2] as string, protocol: match[3] ?? '' };
}

function ignore(): void {}

/** Keeps the upstream request on its exchange, so the proxy's own answer (408) can cut it. */
function onProxyReq(proxyReq: ClientRequest, req: IncomingMessage): void {
  const exchange = exchangeOf(req);
  if (exchange === undefined) return;
  exchange.proxyReq = proxyReq;
  if (exchange.answered) proxyReq.destroy();
}

function onProxyRes(proxyRes: IncomingMessage, _req: IncomingMessage, res: ServerResponse): void {
  if (proxyRes.statusCode === 101) return;
  removeResponseHopByHop(proxyRes.headers);
  // A ban marked the connection to close after this response: http-proxy-3 would otherwise
  // write `Connection: keep-alive` over the mark, and the client could keep the connection.
  if (res.getHeader('connection') === 'close') proxyRes.headers.connection = 'close';
}

function clientErrorEvent(ip: string, status: number, timeMs: number, line: PartialRequest): HttpEvent {
  const q = line.url.indexOf('?');
  return {
    ip,
    timeMs,
    method: line.method,
    host: '',
    path: q === -1 ? line.url : line.url.slice(0, q),
    url: line.url,
    query: q === -1 ? '' : line.url.slice(q + 1),
    status,
    userAgent: '',
    referer: '',
    bytesSent: 0,
    durationMs: 0,
    aborted: false,
    headers: {},
  };
}

/**
 * Starts the reverse proxy over `guard`: listens on every address of `options.listen` and
 * forwards to `target`(s). Every request goes through the guard's HTTP pipeline (ban check, rate
 * jails, http jails after the response), exactly as the Express middleware's do.
 *
 * ```ts
 * const guard = await createGuard('portcullis.yaml');
 * const proxy = await createProxy(guard, { listen: '0.0.0.0:8080', target: 'http://127.0.0.1:3000', deny: 'drop' });
 * console.log(proxy.addresses[0].url);
 * await proxy.close();
 * ```
 *
 * Rejects with a `ConfigError` for invalid options and `PC_ERR_PROXY_LISTEN` when an address
 * cannot be bound (what did listen is closed first).
 */
export async function createProxy(guard: HttpEngine, options: ProxyOptions): Promise<PortcullisProxy> {
  const proxy = new PortcullisProxy(guard, options);
  try {
    await proxy.listen(options.accessLog);
  } catch (error) {
    await proxy.destroy();
    throw error;
  }
  return proxy;
}
