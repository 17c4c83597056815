import RE2 from 're2';
import * as z from 'zod';

/**
 * The shape of an HTTP filter, inline under a jail's `filter:` or in `rules/http/<name>.yaml`.
 * Keys at one level must all match (AND); `all`, `any` and `not` combine sub-filters. Every regex
 * is RE2 (linear time; no lookaround, no backreferences) and is searched, not anchored: write
 * `^` and `$` where you mean them, `(?i)` for case-insensitive.
 */
export interface HttpFilterSpec {
  /** `404`, `"4xx"`, `"500-599"`, or a list of them. */
  status?: StatusSpec;
  /** `POST` or a list; compared case-insensitively. */
  method?: string | readonly string[];
  /** Regex on the path, percent-decoded once, without the query. */
  path?: string;
  /** Regex on the raw request target (path and query exactly as sent, nothing decoded). */
  url?: string;
  /** Regex on the raw query string (without `?`). */
  query?: string;
  /** Regex on the `Host` header (lower-case). */
  host?: string;
  /** Regex on `User-Agent` (`''` when absent). */
  user_agent?: string;
  /** Regex on `Referer` (`''` when absent). */
  referer?: string;
  /** Header name → regex on its value (`''` when absent, so `"^$"` means "missing"). */
  headers?: Readonly<Record<string, string>>;
  /** Every sub-filter matches. */
  all?: readonly HttpFilterSpec[];
  /** At least one sub-filter matches. */
  any?: readonly HttpFilterSpec[];
  /** The sub-filter does not match. */
  not?: HttpFilterSpec;
  /**
   * Only at the top level: a matching request counts as a failure only when this field's value is
   * new for the client within `findtime` (a scanner probing 20 paths, not a user reloading one).
   */
  distinct?: DistinctField;
}

export type StatusSpec = number | string | readonly (number | string)[];

/** Fields `distinct:` can count. */
export const DISTINCT_FIELDS = [
  'path',
  'url',
  'query',
  'host',
  'method',
  'status',
  'user_agent',
  'referer',
] as const;
export type DistinctField = (typeof DISTINCT_FIELDS)[number];

/** Fields that exist before the response: a rate jail's filter may use only these. */
export const REQUEST_FIELDS = [
  'method',
  'path',
  'url',
  'query',
  'host',
  'user_agent',
  'referer',
  'headers',
] as const;

const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const STATUS_TEXT = /^(?:[1-5]xx|[1-5]\d\d(?:-[1-5]\d\d)?)$/;

const statusError = {
  error: (issue: { input?: unknown }) =>
    `expected a status like 404, "4xx" or "500-599", got ${show(issue.input)}`,
};
const statusItem = z.union(
  [
    z.number(statusError).int(statusError).min(100, statusError).max(599, statusError),
    z.string(statusError).regex(STATUS_TEXT, statusError),
  ],
  statusError,
);

/** Why RE2 refuses `pattern`, or `undefined` when it compiles. */
export function re2Problem(pattern: string): string | undefined {
  try {
    new RE2(pattern);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const regex = z
  .string({ error: (issue) => `expected a regex (text), got ${show(issue.input)}` })
  .superRefine((value, ctx) => {
    const problem = re2Problem(value);
    if (problem !== undefined) {
      ctx.addIssue({
        code: 'custom',
        input: value,
        message: `expected a regex RE2 can compile (no lookaround, no backreferences), got ${JSON.stringify(value)}: ${problem}`,
      });
    }
  });

const method = z
  .string()
  .regex(/^[A-Za-z-]{1,32}$/, { error: (issue) => `expected an HTTP method, got ${show(issue.input)}` });

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, {
  error: (issue) => `expected a header name, got ${show(issue.input)}`,
});

/** One filter level; `distinct` is checked separately (top level only). */
export const httpFilterSchema = z.strictObject({
  status: z.union([statusItem, z.array(statusItem).min(1)]).optional(),
  method: z.union([method, z.array(method).min(1)]).optional(),
  path: regex.optional(),
  url: regex.optional(),
  query: regex.optional(),
  host: regex.optional(),
  user_agent: regex.optional(),
  referer: regex.optional(),
  headers: z.record(headerName, regex).optional(),
  get all() {
    return z.array(httpFilterSchema).min(1).optional();
  },
  get any() {
    return z.array(httpFilterSchema).min(1).optional();
  },
  get not() {
    return httpFilterSchema.optional();
  },
  distinct: z.enum(DISTINCT_FIELDS).optional(),
});

/** Keys an HTTP filter accepts, for "did you mean" hints. */
export const HTTP_FILTER_KEYS = Object.keys(httpFilterSchema.shape);

/**
 * Checks what the schema cannot: `distinct` only at the top level, and (for a rate jail, which
 * judges a request before it has a response) only request fields. Returns `[path, message]` pairs.
 */
export function filterProblems(spec: HttpFilterSpec, requestOnly: boolean): [(string | number)[], string][] {
  const out: [(string | number)[], string][] = [];
  const visit = (node: HttpFilterSpec, path: (string | number)[]): void => {
    if (path.length > 0 && node.distinct !== undefined) {
      out.push([[...path, 'distinct'], 'distinct is allowed only at the top level of a filter']);
    }
    if (requestOnly) {
      if (node.status !== undefined) {
        out.push([
          [...path, 'status'],
          'a rate jail counts requests before they have a response: status cannot be used',
        ]);
      }
      if (path.length === 0 && node.distinct !== undefined) {
        out.push([
          [...path, 'distinct'],
          'a rate jail counts every matching request: distinct cannot be used',
        ]);
      }
    }
    for (const [i, child] of (node.all ?? []).entries()) visit(child, [...path, 'all', i]);
    for (const [i, child] of (node.any ?? []).entries()) visit(child, [...path, 'any', i]);
    if (node.not !== undefined) visit(node.not, [...path, 'not']);
  };
  visit(spec, []);
  return out;
}
