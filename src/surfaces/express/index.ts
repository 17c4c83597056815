import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReportResult } from '../../core/types.js';
import type { AccessLog } from '../../sources/http/access-log.js';
import type { ForwardedHeader } from '../../sources/http/client-ip.js';
import {
  createHttpPipeline,
  type HttpEngine,
  type HttpPipeline,
  type HttpPipelineOptions,
  pipelineFor,
  type ReportFields,
} from '../../sources/http/pipeline.js';

/**
 * `portcullis/express`: the guard as Express middleware (Express 4 and 5). Nothing here imports
 * Express at run time; the types are Node's, which Express's request and response extend.
 *
 * ```ts
 * const guard = await createGuard('portcullis.yaml');
 * const shield = portcullis(guard);
 * app.use(shield);
 * app.post('/login', async (req, res) => {
 *   if (!(await checkPassword(req))) {
 *     await shield.fail(req); // or guard.fail(req)
 *     return res.status(401).end();
 *   }
 *   ...
 * });
 * ```
 */

/** The request as this middleware reads it: Node's, plus Express's `originalUrl` when present. */
export type ExpressRequestLike = IncomingMessage & { originalUrl?: string };
type Next = (error?: unknown) => void;

export interface ExpressGuardOptions {
  /** Status sent to a banned client. Default `http.deny.status` (403). */
  status?: number;
  /** Plain-text body sent to a banned client. Default `http.deny.body` (`Forbidden`). */
  body?: string;
  /** An HTML file (read once, now) sent to a banned client instead of `body`. Default `http.deny.page`. */
  page?: string;
  /** Overrides `http.trusted_proxies` for this middleware (CIDRs). */
  trustedProxies?: readonly string[];
  /** Overrides `http.forwarded_header` for this middleware. */
  forwardedHeader?: ForwardedHeader;
  /** Told about unexpected errors while observing. Default: the guard's `error` event. */
  onError?: (error: Error) => void;
  /**
   * Writes every exchange (refused ones included) to this access log, in the proxy's formats, so a
   * log jail can read it: `accessLog: await createAccessLog({ path, format: 'combined' })`.
   */
  accessLog?: AccessLog;
}

/** An Express middleware that also takes application-known failures. */
export interface PortcullisMiddleware {
  (req: ExpressRequestLike, res: ServerResponse, next: Next): void;
  /**
   * Reports a failure the application knows about (a wrong password) for the client of `req`.
   * `jail` defaults to the only jail with `source: api` (or an http jail with neither filter nor
   * rate); rejects with `PC_ERR_UNKNOWN_JAIL` when that is ambiguous.
   */
  fail(req: ExpressRequestLike, jail?: string, fields?: ReportFields): Promise<ReportResult>;
}

/** What {@link portcullis} returns: the middleware and the pipeline it runs. */
export interface PortcullisExpressMiddleware extends PortcullisMiddleware {
  readonly pipeline: HttpPipeline;
}

/**
 * Express middleware: a banned client gets the deny response (403, `Retry-After` while the ban
 * has an end) before any route runs; a client over a rate jail's rate gets 429; every finished or
 * aborted exchange is judged by the http jails' filters afterwards, off the request's path.
 * Without options it shares the guard's default pipeline (as `guard.express()` and
 * `guard.fail()` do).
 */
export function portcullis(
  guard: HttpEngine,
  options: ExpressGuardOptions = {},
): PortcullisExpressMiddleware {
  const pipeline = hasPipelineOptions(options)
    ? createHttpPipeline(guard, pipelineOptions(options))
    : pipelineFor(guard);
  const accessLog = options.accessLog;
  const middleware = function portcullisMiddleware(
    req: ExpressRequestLike,
    res: ServerResponse,
    next: Next,
  ): void {
    const url = req.originalUrl ?? req.url;
    let admitted: boolean | Promise<boolean>;
    if (accessLog === undefined) admitted = pipeline.admit(req, res, url);
    else {
      const ip = pipeline.clientIp(req);
      accessLog.track(req, res, ip, url);
      admitted = pipeline.admit(req, res, url, ip);
    }
    if (admitted === true) {
      next();
      return;
    }
    if (admitted === false) return;
    admitted.then((ok) => {
      if (ok) next();
    }, next);
  } as PortcullisExpressMiddleware;
  (middleware as { fail: PortcullisMiddleware['fail'] }).fail = (req, jail, fields) =>
    pipeline.fail(pipeline.clientIp(req), jail, fields);
  Object.defineProperty(middleware, 'pipeline', { value: pipeline, enumerable: true });
  return middleware;
}

function hasPipelineOptions(options: ExpressGuardOptions): boolean {
  return (
    options.status !== undefined ||
    options.body !== undefined ||
    options.page !== undefined ||
    options.trustedProxies !== undefined ||
    options.forwardedHeader !== undefined ||
    options.onError !== undefined
  );
}

function pipelineOptions(options: ExpressGuardOptions): HttpPipelineOptions {
  const deny: NonNullable<HttpPipelineOptions['deny']> = {};
  if (options.status !== undefined) deny.status = options.status;
  if (options.page !== undefined) {
    deny.body = readFileSync(options.page, 'utf8');
    deny.contentType = 'text/html; charset=utf-8';
  } else if (options.body !== undefined) {
    deny.body = options.body;
    deny.contentType = 'text/plain; charset=utf-8';
  }
  const out: HttpPipelineOptions = { deny };
  if (options.trustedProxies !== undefined) out.trustedProxies = options.trustedProxies;
  if (options.forwardedHeader !== undefined) out.forwardedHeader = options.forwardedHeader;
  if (options.onError !== undefined) out.onError = options.onError;
  return out;
}

export { type AccessLog, createAccessLog } from '../../sources/http/access-log.js';
export type { Denial } from '../../sources/http/deny.js';
export type { HttpPipeline } from '../../sources/http/pipeline.js';
