import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';
import { DEFAULTS } from './defaults.js';
import type { DenyResponseConfig, HttpConfig } from './types.js';

/** Content type of a `deny.page`; a `deny.body` is `DEFAULTS.http.denyContentType`. */
const PAGE_CONTENT_TYPE = 'text/html; charset=utf-8';

/** The response a banned client gets when nothing is configured: 403 `Forbidden`. */
export const DEFAULT_DENY_RESPONSE: DenyResponseConfig = Object.freeze({
  status: DEFAULTS.http.denyStatus,
  body: DEFAULTS.http.denyBody,
  contentType: DEFAULTS.http.denyContentType,
});

/** `http:` with nothing configured, for configs built by hand (`config.http ?? DEFAULT_HTTP_CONFIG`). */
export const DEFAULT_HTTP_CONFIG: HttpConfig = Object.freeze({
  trustedProxies: Object.freeze([]) as readonly string[],
  forwardedHeader: DEFAULTS.http.forwardedHeader,
  deny: DEFAULT_DENY_RESPONSE,
});

/** A deny response as written: everything optional, inherited from a base response. */
export interface DenyResponseOptions {
  /** 200..599. Default the base's (`http.deny.status`, 403). */
  status?: number;
  /** Plain text (`text/plain` unless `contentType` says otherwise). Default the base's. */
  body?: string;
  /** Default `text/plain; charset=utf-8` for `body`, `text/html; charset=utf-8` for `page`. */
  contentType?: string;
  /** An HTML file sent instead of `body`, read now (a relative path is the caller's to resolve). */
  page?: string;
}

/**
 * The one place a deny response is resolved (`http.deny`, `proxy.deny`, the middleware's and the
 * pipeline's overrides): `spec` over `base`, a bare number being a status. Problems name `where`
 * (`proxy.deny.page: cannot read ...`) and go to `problems`; without it they are thrown as a
 * {@link ConfigError}.
 */
export function resolveDenyResponse(
  spec: DenyResponseOptions | number | undefined,
  base: DenyResponseConfig = DEFAULT_DENY_RESPONSE,
  options: { where?: string; problems?: string[] } = {},
): DenyResponseConfig {
  const where = options.where ?? 'deny';
  const problems: string[] = options.problems ?? [];
  const own = typeof spec === 'number' ? { status: spec } : (spec ?? {});
  let body = own.body ?? base.body;
  let contentType = own.body === undefined ? base.contentType : DEFAULTS.http.denyContentType;
  if (own.page !== undefined) {
    try {
      body = readFileSync(own.page, 'utf8');
      contentType = PAGE_CONTENT_TYPE;
    } catch (error) {
      problems.push(
        `${where}.page: cannot read ${own.page}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  const status = own.status ?? base.status;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    problems.push(`${where}.status: expected a status from 200 to 599, got ${JSON.stringify(status)}`);
  }
  const response = { status, body, contentType: own.contentType ?? contentType };
  if (options.problems === undefined && problems.length > 0) throw new ConfigError(problems);
  return response;
}
