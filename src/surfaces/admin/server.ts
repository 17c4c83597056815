import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type AdminConfig, AdminToken } from '../../config/admin.js';
import { type Clock, systemClock } from '../../core/clock.js';
import { parseDuration } from '../../core/duration.js';
import { ErrorCodes, isPortcullisError, PortcullisError } from '../../core/errors.js';
import { normalizeIp, parseIp } from '../../core/ip.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { Control, DecisionFilter } from '../../operate/control.js';
import { type ClientIpResolver, createClientIpResolver } from '../../sources/http/client-ip.js';
import { LogThrottle } from '../../sources/log/log-throttle.js';
import { AuthFailures, PEER_BUDGET_FACTOR } from './auth.js';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.js';
import { AdminHttpError, COMMON_HEADERS, readJson, sendError, sendJson } from './http.js';
import { openApiDocument } from './openapi.js';
import { EVENT_TYPES, EventStream, type EventStreamStats, type EventType } from './sse.js';

/** What `/metrics` renders; see `src/operate/metrics.ts`. */
export interface MetricsEndpoint {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface AdminServerOptions {
  /** The running daemon, as the operator sees it. */
  control: Control;
  /**
   * The admin settings in force: read on every request, so a reload (SIGHUP) that changes the
   * token, `auth_failures` or `trusted_proxies` applies at once (a changed token also ends the
   * event streams opened with the old one). `listen`, `dashboard` and `metrics` (which routes are
   * served, and so what the OpenAPI document lists) are read at start only.
   */
  config: () => AdminConfig;
  /** Served at `/metrics` when `metrics` is on; absent: 404. */
  metrics?: MetricsEndpoint;
  /** Sources started and not stopping; `/readyz` also needs the store. Default: always. */
  ready?: () => boolean;
  logger?: Logger;
  clock?: Clock;
  /** SSE heartbeat interval, ms. Default 15 000. */
  heartbeatMs?: number;
  /** Bytes an SSE client may leave unread for `sseSlowClientMs` (4x: at once) before it is dropped. Default 1 MiB. */
  sseMaxBufferBytes?: number;
  /** Default 5 000 ms. */
  sseSlowClientMs?: number;
  /** Concurrent SSE clients. Default 32. */
  sseMaxClients?: number;
  /** An SSE client whose socket has left bytes undrained this long is dropped. Default 60 000 ms. */
  sseStallMs?: number;
  /** Longest life of one SSE stream (then ended; the client reconnects). Default 3 600 000 ms. */
  sseMaxLifetimeMs?: number;
  /** Largest request body, bytes. Default 16 384. */
  maxBodyBytes?: number;
}

export interface AdminServerStats {
  requests: number;
  /** Requests refused for a missing or wrong token, or from a refused client. */
  unauthorized: number;
  /** Wrong tokens counted (brute-force jail). */
  authFailures: number;
  /** Clients refused after too many wrong tokens, since start. */
  authBlocks: number;
  /** Clients refused right now. */
  authBlockedNow: number;
  events: EventStreamStats;
}

const DEFAULT_MAX_BODY = 16_384;
const MAX_LIMIT = 10_000;
const DEFAULT_LIMIT = 1_000;
const REASON_MAX = 200;

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Path segments after the route's prefix (the jail name, the target). */
  rest: string;
  client: string | null;
}

type Handler = (ctx: Context) => Promise<void> | void;

interface Route {
  /** Exact path, or a prefix ending in `/` whose remainder is `rest`. */
  path: string;
  prefix?: boolean;
  /** Needs the bearer token. */
  auth: boolean;
  /** HEAD is not answered like GET (405). */
  noHead?: boolean;
  methods: Readonly<Record<string, Handler>>;
}

/**
 * The admin listener: a plain `node:http` server with the HTTP API (`/v1/...`), the event feed
 * (`/v1/events`, Server-Sent Events), `/metrics`, `/healthz`, `/readyz`, the OpenAPI document and
 * the dashboard (`/`). Every endpoint but the health checks and the dashboard page itself needs
 * `Authorization: Bearer <token>`; wrong tokens are counted per client and a client that sends
 * too many is refused for a while (429), the right token included.
 */
export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #control: Control;
  readonly #logger: Logger;
  readonly #auth: AuthFailures;
  readonly #events: EventStream;
  readonly #server: Server;
  readonly #routes: Route[];
  readonly #maxBody: number;
  readonly #authLog = new LogThrottle(60_000, 10);
  readonly #sockets = new Set<Socket>();
  #resolver: { proxies: readonly string[]; resolver: ClientIpResolver } | undefined;
  /** What the OpenAPI document lists: the routes built at start. */
  readonly #features: { metrics: boolean; dashboard: boolean };
  /** The token the open streams were last checked against. */
  #streamToken: AdminToken | undefined;
  #address: AddressInfo | undefined;
  #closing: Promise<void> | undefined;
  readonly #stats = { requests: 0, unauthorized: 0 };

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#control = options.control;
    this.#logger = options.logger ?? silentLogger;
    this.#auth = new AuthFailures(options.clock ?? systemClock);
    this.#maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.#events = new EventStream({
      subscribe: (listener) => this.#control.subscribe(listener),
      valid: (tag) => !(tag instanceof AdminToken) || tag.sameAs(this.#options.config().token),
      ...(options.clock === undefined ? {} : { now: () => (options.clock as Clock).now() }),
      ...(options.sseStallMs === undefined ? {} : { stallMs: options.sseStallMs }),
      ...(options.sseMaxLifetimeMs === undefined ? {} : { maxLifetimeMs: options.sseMaxLifetimeMs }),
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
      ...(options.sseMaxBufferBytes === undefined ? {} : { maxBufferBytes: options.sseMaxBufferBytes }),
      ...(options.sseMaxClients === undefined ? {} : { maxClients: options.sseMaxClients }),
      ...(options.sseSlowClientMs === undefined ? {} : { slowClientMs: options.sseSlowClientMs }),
    });
    this.#features = { metrics: options.metrics !== undefined, dashboard: options.config().dashboard };
    this.#routes = this.#buildRoutes();
    this.#server = createServer(
      { maxHeaderSize: 16_384, requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 },
      (req, res) => void this.#handle(req, res),
    );
    this.#server.maxHeadersCount = 100;
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('clientError', (_error, socket: Socket) => {
      if (socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Listens on `config().host:port`. Rejects (having released the port) when it cannot. */
  async start(): Promise<void> {
    const { host, port, listen } = this.#options.config();
    await new Promise<void>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) => {
        reject(
          new PortcullisError(
            ErrorCodes.ADMIN_LISTEN,
            `admin.listen: cannot listen on ${listen}: ${error.code === 'EADDRINUSE' ? 'address in use' : error.message}`,
            { cause: error },
          ),
        );
      };
      this.#server.once('error', failed);
      this.#server.listen({ host, port, ipv6Only: host === '::' ? false : undefined }, () => {
        this.#server.off('error', failed);
        resolve();
      });
    });
    this.#address = this.#server.address() as AddressInfo;
  }

  /** The bound address (port 0 becomes the real port); after `start()`. */
  get address(): AddressInfo {
    if (this.#address === undefined) throw new Error('the admin server is not listening');
    return this.#address;
  }

  /** `http://127.0.0.1:9191`. */
  get url(): string {
    const { address, family, port } = this.address;
    return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  get stats(): AdminServerStats {
    return {
      ...this.#stats,
      authFailures: this.#auth.total,
      authBlocks: this.#auth.blocks,
      authBlockedNow: this.#auth.blockedNow,
      events: this.#events.stats,
    };
  }

  /**
   * Ends the event streams opened with a token that is no longer the configured one; resolves how
   * many. Runs before every request and at each heartbeat; a host may call it right after a reload.
   */
  revalidateStreams(): number {
    const token = this.#options.config().token;
    if (token === this.#streamToken) return 0;
    this.#streamToken = token;
    return this.#events.endWhere((tag) => tag instanceof AdminToken && !tag.sameAs(token));
  }

  /** Ends the event streams, stops listening and closes every connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#events.close();
      this.#server.close(() => resolve());
      // Idle keep-alive connections and streams would hold close() open.
      this.#server.closeIdleConnections();
      for (const socket of this.#sockets) socket.destroy();
    });
    return this.#closing;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#stats.requests++;
    try {
      this.revalidateStreams();
      this.#checkHost(req);
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://admin.invalid');
      } catch {
        throw new AdminHttpError(400, 'bad_request', 'the request target is not a valid path');
      }
      const path = url.pathname;
      const route = this.#routes.find((r) => (r.prefix ? path.startsWith(r.path) : path === r.path));
      if (route === undefined) throw new AdminHttpError(404, 'not_found', `no such endpoint: ${path}`);
      // HEAD is GET without the body, except for the event stream (it would hold a stream slot).
      const method =
        req.method === 'HEAD' && route.methods.GET !== undefined && !route.noHead
          ? 'GET'
          : (req.method ?? '');
      const handler = route.methods[method];
      if (handler === undefined) {
        const allow = Object.keys(route.methods).join(', ');
        throw new AdminHttpError(
          405,
          'method_not_allowed',
          `${req.method} is not allowed here; use ${allow}`,
          {
            Allow: allow,
          },
        );
      }
      const client = this.#clientOf(req);
      if (route.auth) this.#authenticate(req, client, viaOf(req, client));
      let rest = '';
      if (route.prefix) {
        try {
          rest = decodeURIComponent(path.slice(route.path.length));
        } catch {
          throw new AdminHttpError(400, 'bad_request', 'the path is not valid percent-encoding');
        }
      }
      await handler({ req, res, url, rest, client });
    } catch (error) {
      this.#fail(res, error);
    }
  }

  #fail(res: ServerResponse, error: unknown): void {
    let answer: AdminHttpError;
    if (error instanceof AdminHttpError) answer = error;
    else if (isPortcullisError(error, ErrorCodes.UNKNOWN_JAIL))
      answer = new AdminHttpError(404, 'unknown_jail', error.message);
    else if (isPortcullisError(error, ErrorCodes.INVALID_IP))
      answer = new AdminHttpError(400, 'bad_target', error.message);
    else if (isPortcullisError(error, ErrorCodes.INVALID_DURATION))
      answer = new AdminHttpError(400, 'bad_request', error.message);
    else {
      this.#logger.error({ event: 'admin-error', err: error }, 'admin API: unexpected error');
      answer = new AdminHttpError(500, 'internal', 'internal error (see the daemon log)');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, answer);
  }

  #clientOf(req: IncomingMessage): string | null {
    const proxies = this.#options.config().trustedProxies;
    if (this.#resolver?.proxies !== proxies) {
      this.#resolver = { proxies, resolver: createClientIpResolver({ trustedProxies: proxies }) };
    }
    return this.#resolver.resolver.resolve(req);
  }

  /**
   * Throws 401 / 429 unless the request carries the token and its client is not refused. `via`:
   * the trusted peer that named `client` (X-Forwarded-For); it is charged too, with a larger budget.
   */
  #authenticate(req: IncomingMessage, client: string | null, via: string | null): void {
    const config = this.#options.config();
    const blockedMs = this.#auth.blockedFor(client, via);
    if (blockedMs > 0) {
      this.#stats.unauthorized++;
      throw new AdminHttpError(
        429,
        'too_many_auth_failures',
        'too many wrong tokens from this address; try again later',
        { 'Retry-After': String(Math.ceil(blockedMs / 1000)) },
      );
    }
    const header = req.headers.authorization;
    if (header === undefined) {
      this.#stats.unauthorized++;
      throw new AdminHttpError(401, 'unauthorized', 'this endpoint needs Authorization: Bearer <token>', {
        'WWW-Authenticate': 'Bearer realm="portcullis"',
      });
    }
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (match !== null && config.token.matches(match[1] as string)) return;
    this.#stats.unauthorized++;
    const result = this.#auth.fail(client, config.authFailures, via);
    const gate = this.#authLog.take();
    if (gate.allowed || result.blocked || result.peerBlocked) {
      const more = gate.suppressed > 0 ? ` (${gate.suppressed} more not logged)` : '';
      const banS = Math.round(config.authFailures.banTimeMs / 1000);
      this.#logger.warn(
        {
          event: 'admin-auth-failed',
          client,
          ...(via === null ? {} : { via }),
          failures: result.failures,
          blocked: result.blocked,
          ...(result.peerBlocked ? { peerBlocked: true } : {}),
        },
        result.peerBlocked
          ? `admin: everything through trusted proxy ${via} refused for ${banS}s after ${config.authFailures.maxRetry * PEER_BUDGET_FACTOR} wrong tokens sent through it`
          : result.blocked
            ? `admin: ${client ?? 'unknown client'} refused for ${banS}s after ${result.failures} wrong tokens`
            : `admin: wrong token from ${client ?? 'unknown client'} (${result.failures}/${config.authFailures.maxRetry})${more}`,
      );
    }
    throw new AdminHttpError(401, 'bad_token', 'the token is wrong', {
      'WWW-Authenticate': 'Bearer realm="portcullis", error="invalid_token"',
    });
  }

  #buildRoutes(): Route[] {
    const control = this.#control;
    const json = (handler: (ctx: Context) => unknown | Promise<unknown>): Handler => {
      return async (ctx) => sendJson(ctx.res, 200, await handler(ctx));
    };
    const routes: Route[] = [
      {
        path: '/healthz',
        auth: false,
        methods: { GET: ({ res }) => sendJson(res, 200, { status: 'ok' }) },
      },
      { path: '/readyz', auth: false, methods: { GET: ({ res }) => this.#ready(res) } },
      { path: '/v1/status', auth: true, methods: { GET: json(() => control.status()) } },
      {
        path: '/v1/jails/',
        prefix: true,
        auth: true,
        methods: {
          GET: json(({ rest }) => {
            if (rest === '' || rest.includes('/'))
              throw new AdminHttpError(404, 'not_found', 'name a jail: /v1/jails/{name}');
            return control.jail(rest);
          }),
        },
      },
      {
        path: '/v1/decisions',
        auth: true,
        methods: {
          GET: json(async ({ url }) => {
            const decisions = await control.decisions(decisionFilter(url));
            return { count: decisions.length, decisions };
          }),
          POST: (ctx) => this.#ban(ctx),
          DELETE: (ctx) => this.#unban(ctx, ctx.url.searchParams.get('target')),
        },
      },
      {
        path: '/v1/decisions/',
        prefix: true,
        auth: true,
        methods: { DELETE: (ctx) => this.#unban(ctx, ctx.rest) },
      },
      { path: '/v1/events', auth: true, noHead: true, methods: { GET: (ctx) => this.#stream(ctx) } },
      {
        path: '/v1/openapi.json',
        auth: true,
        methods: { GET: ({ res }) => sendJson(res, 200, openApiDocument(this.#features)) },
      },
    ];
    if (this.#options.metrics !== undefined) {
      const metrics = this.#options.metrics;
      routes.push({
        path: '/metrics',
        auth: true,
        methods: {
          GET: async ({ res }) => {
            const text = await metrics.render();
            res.writeHead(200, {
              ...COMMON_HEADERS,
              'Content-Type': metrics.contentType,
              'Content-Length': Buffer.byteLength(text),
            });
            res.end(text);
          },
        },
      });
    }
    if (this.#features.dashboard) {
      // The page holds no data (it asks for the token and then calls the API), so it is served to anyone.
      routes.push({
        path: '/',
        auth: false,
        methods: {
          GET: ({ res }) => {
            res.writeHead(200, {
              ...COMMON_HEADERS,
              'Content-Type': 'text/html; charset=utf-8',
              'Content-Security-Policy': DASHBOARD_CSP,
              'Content-Length': Buffer.byteLength(DASHBOARD_HTML),
            });
            res.end(DASHBOARD_HTML);
          },
        },
      });
    }
    return routes;
  }

  /**
   * Refuses (421) a request whose Host is not this listener's own loopback name: a web page the
   * operator visits can point its own domain at 127.0.0.1 (DNS rebinding) and would then be
   * same-origin with the API. With `allow_remote` (a TLS proxy in front, any name) every Host is
   * taken. A request without Host (HTTP/1.0) is no browser's.
   */
  #checkHost(req: IncomingMessage): void {
    const header = req.headers.host;
    if (header === undefined) return;
    const config = this.#options.config();
    if (config.allowRemote) return;
    const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(header.trim());
    const name = match?.[1]?.toLowerCase();
    const port = match?.[2];
    const listenName = config.host.includes(':') ? `[${config.host}]` : config.host.toLowerCase();
    const names = new Set(['localhost', '127.0.0.1', '[::1]', listenName]);
    if (name !== undefined && names.has(name) && (port === undefined || Number(port) === this.#address?.port))
      return;
    throw new AdminHttpError(
      421,
      'misdirected_request',
      `Host ${JSON.stringify(header.slice(0, 100))} is not this admin listener (use localhost, 127.0.0.1 or [::1] with its port; set admin.allow_remote for other names)`,
    );
  }

  #ready(res: ServerResponse): void {
    const status = this.#control.status();
    const sources = this.#options.ready?.() ?? true;
    const ready = status.store.available && sources && this.#closing === undefined;
    sendJson(res, ready ? 200 : 503, {
      ready,
      store: status.store,
      sources: sources && this.#closing === undefined,
    });
  }

  async #ban({ req, res }: Context): Promise<void> {
    const body = await readJson(req, this.#maxBody);
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw new AdminHttpError(400, 'bad_request', 'expected a JSON object like {"target": "192.0.2.7"}');
    const { target, jail, bantime, reason, ...unknown } = body as Record<string, unknown>;
    const extra = Object.keys(unknown);
    if (extra.length > 0)
      throw new AdminHttpError(
        400,
        'bad_request',
        `unknown field(s): ${extra.join(', ')} (expected target, jail, bantime, reason)`,
      );
    if (typeof target !== 'string' || target === '')
      throw new AdminHttpError(
        400,
        'bad_target',
        'target: expected an IP address or CIDR range like "192.0.2.7"',
      );
    if (jail !== undefined && typeof jail !== 'string')
      throw new AdminHttpError(400, 'bad_request', 'jail: expected a jail name');
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > REASON_MAX))
      throw new AdminHttpError(
        400,
        'bad_request',
        `reason: expected a text of at most ${REASON_MAX} characters`,
      );
    let bantimeMs: number | undefined;
    if (bantime !== undefined) {
      const invalid = new AdminHttpError(
        400,
        'bad_request',
        `bantime: expected a duration like "1h", seconds as a number, or -1 for permanent, got ${JSON.stringify(bantime)}`,
      );
      if (typeof bantime !== 'string' && typeof bantime !== 'number') throw invalid;
      try {
        bantimeMs = parseDuration(bantime);
      } catch {
        throw invalid;
      }
      if (bantimeMs === 0) throw invalid;
    }
    let decision: Awaited<ReturnType<Control['ban']>>;
    try {
      decision = await this.#control.ban(target, {
        ...(jail === undefined ? {} : { jail }),
        ...(bantimeMs === undefined ? {} : { bantimeMs }),
        ...(reason === undefined ? {} : { reason }),
      });
    } catch (error) {
      // A jail named in the body is a bad request, not a missing resource.
      if (isPortcullisError(error, ErrorCodes.UNKNOWN_JAIL))
        throw new AdminHttpError(400, 'unknown_jail', error.message);
      throw error;
    }
    sendJson(res, 201, decision);
  }

  async #unban({ res, url }: Context, target: string | null): Promise<void> {
    if (target === null || target === '')
      throw new AdminHttpError(
        400,
        'bad_target',
        'name the target: DELETE /v1/decisions/{target} or ?target=',
      );
    const jail = url.searchParams.get('jail') ?? undefined;
    const lifted = await this.#control.unban(target, jail === undefined ? {} : { jail });
    if (lifted === 0)
      throw new AdminHttpError(
        404,
        'not_banned',
        `${target} is not banned${jail === undefined ? '' : ` by ${jail}`}`,
      );
    sendJson(res, 200, { target, unbanned: lifted });
  }

  #stream({ res, url }: Context): void {
    // The token it was opened with: a reload that replaces it ends the stream.
    const token = this.#options.config().token;
    const asked = url.searchParams.get('types');
    let types: Set<EventType> = new Set(EVENT_TYPES);
    if (asked !== null) {
      const list = asked.split(',').map((t) => t.trim());
      const bad = list.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
      if (bad.length > 0)
        throw new AdminHttpError(
          400,
          'bad_request',
          `types: unknown event type(s) ${bad.join(', ')}; expected ${EVENT_TYPES.join(', ')}`,
        );
      types = new Set(list as EventType[]);
    }
    if (this.#events.full) {
      this.#events.refused();
      throw new AdminHttpError(503, 'too_many_streams', 'too many event streams are open; try again later', {
        'Retry-After': '5',
      });
    }
    this.#events.add(res, types, token);
  }
}

/** The socket peer when it is not the client itself (a trusted proxy named the client), else `null`. */
function viaOf(req: IncomingMessage, client: string | null): string | null {
  const raw = req.socket.remoteAddress;
  if (raw === undefined) return null;
  const peer = normalizeIp(raw);
  return peer === null || peer === client ? null : peer;
}

function decisionFilter(url: URL): DecisionFilter {
  const params = url.searchParams;
  const filter: DecisionFilter = {};
  const jail = params.get('jail');
  if (jail !== null && jail !== '') filter.jail = jail;
  const ip = params.get('ip');
  if (ip !== null && ip !== '') {
    if (parseIp(ip) === null)
      throw new AdminHttpError(400, 'bad_target', `ip: not an IP address: ${JSON.stringify(ip)}`);
    filter.ip = ip;
  }
  const limit = params.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!/^\d+$/.test(limit) || n < 1 || n > MAX_LIMIT)
      throw new AdminHttpError(
        400,
        'bad_request',
        `limit: expected a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limit)}`,
      );
    filter.limit = n;
  } else filter.limit = DEFAULT_LIMIT;
  return filter;
}

/** Builds and starts the admin listener. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server = new AdminServer(options);
  await server.start();
  return server;
}
