import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';

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
  /** The request path, percent-decoded once (undecodable sequences are kept as sent); no query. */
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
  const rawPath = q === -1 ? url : url.slice(0, q);
  const headers = req.headers;
  return {
    ip,
    timeMs,
    method: (req.method ?? 'GET').toUpperCase(),
    host: (headers.host ?? '').toLowerCase(),
    path: decodeOnce(rawPath),
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

function contentLength(value: number | string | string[] | undefined): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
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
