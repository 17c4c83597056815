import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { normalizePath } from './normalize-path.js';

/**
 * One finished (or aborted) HTTP exchange, as HTTP filters see it. Built by the pipeline after the
 * response, never before, so building it costs the allowed request nothing.
 */
export interface HttpEvent {
  /** Canonical client address (after `trusted_proxies`). */
  ip: string;
  /** When the response finished, ms since the epoch (the guard's clock). */
  timeMs: number;
  /** Upper-case request method. */
  method: string;
  /** The `Host` header, lower-cased, as sent (with its port, if any); `''` when absent. */
  host: string;
  /**
   * The request path as the application routes it (see {@link judgedPath}): normalised (dot
   * segments, duplicate slashes, absolute-form, encoded unreserved characters), without a trailing
   * `/` (but `/` itself) and without the query, then percent-decoded once (undecodable sequences
   * kept as sent). Case is kept; HTTP filters match it case-insensitively.
   */
  path: string;
  /** The request target exactly as received: raw path and query, nothing decoded. */
  url: string;
  /** The raw query string without `?`; `''` when absent. */
  query: string;
  /** Response status; 0 when the client went away before any status was sent. */
  status: number;
  /** `User-Agent`, `''` when absent. */
  userAgent: string;
  /** `Referer`, `''` when absent. */
  referer: string;
  /**
   * Body bytes of the response, from its `Content-Length` (Express sets it for `send`, `json`,
   * files); 0 when unknown (chunked, aborted). Read from the header so the request pays nothing.
   */
  bytesSent: number;
  /** From the request reaching the guard to the response finishing, ms. */
  durationMs: number;
  /** True when the connection closed before the response was complete. */
  aborted: boolean;
  /** The request headers (names lower-case), read by `headers:` filters. Not copied. */
  headers: IncomingHttpHeaders;
}

/**
 * Builds the event of a finished exchange. `url` is the request target to use: Express rewrites
 * `req.url` inside mounted routers, so the Express surface passes `req.originalUrl`. Without `res`
 * (a rate jail judging a request before it is answered) the response fields are zero.
 *
 * @param startedAt `performance.now()` when the request arrived.
 * @param timeMs event time, ms since the epoch.
 */
export function httpEventOf(
  req: IncomingMessage,
  res: ServerResponse | undefined,
  ip: string,
  url: string,
  startedAt: number,
  timeMs: number,
): HttpEvent {
  const aborted = res !== undefined && !res.writableFinished;
  const q = url.indexOf('?');
  const headers = req.headers;
  return {
    ip,
    timeMs,
    method: (req.method ?? 'GET').toUpperCase(),
    host: (headers.host ?? '').toLowerCase(),
    path: judgedPath(url),
    url,
    query: q === -1 ? '' : url.slice(q + 1),
    status: res === undefined || (aborted && !res.headersSent) ? 0 : res.statusCode,
    userAgent: headers['user-agent'] ?? '',
    referer: headers.referer ?? '',
    bytesSent: res === undefined ? 0 : contentLength(res.getHeader('content-length')),
    durationMs: Math.max(0, performance.now() - startedAt),
    aborted,
    headers,
  };
}

/** The clock an {@link ExchangeEvent} reads its time from. */
export interface EventClock {
  now(): number;
}

/**
 * The event of an exchange the pipeline tracks: created when the request is admitted, read when
 * the response closes. Each field is worked out when a filter first reads it (an allowed request
 * usually needs one or two: `status`, `path`), so a request pays one small object and no string
 * work for the fields nobody looks at. Read while the close is handled, it equals
 * {@link httpEventOf}'s, field for field: the response no longer changes, and the times (`timeMs`,
 * `durationMs`) are taken at that first read, still inside the close handler.
 */
export class ExchangeEvent implements HttpEvent {
  readonly ip: string;
  readonly url: string;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #startedAt: number;
  readonly #clock: EventClock;
  #timeMs: number | undefined;
  #durationMs: number | undefined;
  #method: string | undefined;
  #host: string | undefined;
  #path: string | undefined;

  /** @param startedAt `performance.now()` when the request arrived. */
  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    ip: string,
    url: string,
    startedAt: number,
    clock: EventClock,
  ) {
    this.ip = ip;
    this.url = url;
    this.#req = req;
    this.#res = res;
    this.#startedAt = startedAt;
    this.#clock = clock;
  }

  get timeMs(): number {
    this.#timeMs ??= this.#clock.now();
    return this.#timeMs;
  }

  get durationMs(): number {
    this.#durationMs ??= Math.max(0, performance.now() - this.#startedAt);
    return this.#durationMs;
  }

  get method(): string {
    this.#method ??= (this.#req.method ?? 'GET').toUpperCase();
    return this.#method;
  }

  get host(): string {
    this.#host ??= (this.#req.headers.host ?? '').toLowerCase();
    return this.#host;
  }

  get path(): string {
    this.#path ??= judgedPath(this.url);
    return this.#path;
  }

  get query(): string {
    const q = this.url.indexOf('?');
    return q === -1 ? '' : this.url.slice(q + 1);
  }

  get status(): number {
    const res = this.#res;
    // As in `httpEventOf`: 0 only when aborted before any status (the cheaper test first).
    return res.headersSent || res.writableFinished ? res.statusCode : 0;
  }

  get userAgent(): string {
    return this.#req.headers['user-agent'] ?? '';
  }

  get referer(): string {
    return this.#req.headers.referer ?? '';
  }

  get bytesSent(): number {
    return contentLength(this.#res.getHeader('content-length'));
  }

  get aborted(): boolean {
    return !this.#res.writableFinished;
  }

  get headers(): IncomingHttpHeaders {
    return this.#req.headers;
  }
}

function contentLength(value: number | string | string[] | undefined): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * The `path` HTTP jails judge, from a raw request target: {@link normalizePath} (what the reverse
 * proxy forwards), one trailing `/` dropped (Express, Rails and most routers serve `/login/` as
 * `/login`; write `(/|$)` to tell them apart), then {@link decodeOnce}. `/./LOGIN/?x=1` → `/LOGIN`.
 */
export function judgedPath(target: string): string {
  let path = normalizePath(target);
  if (path.length > 1 && path.charCodeAt(path.length - 1) === 47 /* / */) path = path.slice(0, -1);
  return decodeOnce(path);
}

/**
 * Percent-decodes once. A malformed sequence (`%zz`, an overlong `%c0%af`) is kept as sent while
 * the valid ones around it are still decoded, so `/%2eenv%zz` reads `/.env%zz`.
 */
export function decodeOnce(text: string): string {
  if (text.indexOf('%') === -1) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(PERCENT_RUN, decodeRun);
  }
}

const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;

function decodeRun(run: string): string {
  try {
    return decodeURIComponent(run);
  } catch {
    // Decode byte by byte: ASCII escapes still decode, invalid UTF-8 stays escaped.
    return run.replace(/%([0-7][0-9A-Fa-f])/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
  }
}
