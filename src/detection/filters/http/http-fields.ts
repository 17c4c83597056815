import type { HttpEvent } from '../../../sources/http/http-event.js';
import { defineFieldCatalogue } from '../fields/catalogue.js';

/**
 * The fields of HTTP exchanges, as `filter:` names them (see `HttpFilterSpec` for each one's
 * syntax). Declared in the order `distinct:` lists them in its errors; the compiler runs the cheap
 * checks (status, method) before the regexes whatever the order.
 */
export const HTTP_FIELDS = defineFieldCatalogue<HttpEvent>('http', {
  path: {
    type: 'text',
    description:
      'Regex on the path as the app routes it (normalised, percent-decoded once, no trailing slash, no query); case-insensitive unless it starts with (?-i).',
    get: (e) => e.path,
    scanLimit: 8_192,
  },
  url: {
    type: 'text',
    description: 'Regex on the raw request target (path and query exactly as sent).',
    get: (e) => e.url,
    scanLimit: 8_192,
  },
  query: {
    type: 'text',
    description: 'Regex on the raw query string (without `?`).',
    get: (e) => e.query,
    scanLimit: 8_192,
  },
  host: { type: 'text', description: 'Regex on the `Host` header (lower-case).', get: (e) => e.host },
  method: {
    type: 'keyword',
    fold: 'upper',
    pattern: /^[A-Za-z-]{1,32}$/,
    regex: false,
    expected: 'an HTTP method',
    description: '`POST` or a list; compared case-insensitively.',
    get: (e) => e.method,
  },
  status: {
    type: 'number',
    integer: true,
    min: 100,
    max: 599,
    classes: true,
    comparisons: false,
    expected: 'a status like 404, "4xx" or "500-599"',
    description: '`404`, `"4xx"`, `"500-599"`, or a list of them; 0 (aborted before a status) matches none.',
    get: (e) => e.status,
  },
  user_agent: {
    type: 'text',
    description: "Regex on `User-Agent` ('' when absent).",
    get: (e) => e.userAgent,
  },
  referer: { type: 'text', description: "Regex on `Referer` ('' when absent).", get: (e) => e.referer },
  headers: {
    type: 'map',
    keyPattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/,
    keyExpected: 'a header name',
    keyFold: 'lower',
    description: 'Header name → regex on its value (\'\' when absent, so "^$" means missing).',
    get: (e, name) => headerText(e.headers[name]),
  },
});

function headerText(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : value.join(', ');
}

/**
 * How a `path` regex is compiled: case-insensitive, because the applications jails protect route
 * paths that way (Express, and so most Node apps, serves `/LOGIN` from `app.post('/login')`; so do
 * IIS and every case-insensitive file system) and an anchored `^/login$` must not be dodged by
 * `/Login`. A pattern opts out with RE2's own flag syntax at its start: `(?-i)^/Admin$` is
 * case-sensitive (`(?-i)` clears the `(?i)` put in front of it; flags also work per group:
 * `^/(?-i:Admin)/`). Idempotent: a pattern that already starts with `(?i)` is returned as it is.
 */
export function pathPattern(pattern: string): string {
  return pattern.startsWith('(?i)') ? pattern : `(?i)${pattern}`;
}
