import type * as z from 'zod';
import { COMBINATOR_KEYS } from '../fields/catalogue.js';
import {
  type FieldFilterSpec,
  type FilterPath,
  fieldFilterSchema,
  walkFieldFilter,
} from '../fields/filter-schema.js';
import { HTTP_FIELDS, pathPattern } from './http-fields.js';

export { re2Problem } from '../fields/field-match.js';

/**
 * The shape of an HTTP filter, inline under a jail's `filter:` or in `rules/http/<name>.yaml`.
 * Keys at one level must all match (AND); `all`, `any` and `not` combine sub-filters. Every regex
 * is RE2 (linear time; no lookaround, no backreferences) and is searched, not anchored: write
 * `^` and `$` where you mean them, `(?i)` for case-insensitive. `path` is case-insensitive
 * already (start a pattern with `(?-i)` to make it case-sensitive; see `pathPattern`). This is the field filter of
 * `../fields/` over the HTTP catalogue (`HTTP_FIELDS`): `status` is a number field with classes,
 * `method` a case-folded keyword, the rest text (regex) fields and `headers` a map.
 */
export interface HttpFilterSpec {
  /** `404`, `"4xx"`, `"500-599"`, or a list of them. */
  status?: StatusSpec;
  /** `POST` or a list; compared case-insensitively. */
  method?: string | readonly string[];
  /**
   * Regex on the path as the application routes it: normalised (`/./login`, `/%2e/login`,
   * `/a/../login`, `//login`, `http://x/login` are `/login`), one trailing `/` dropped, no query,
   * percent-decoded once. Case-insensitive: `^/login$` matches `/LOGIN`; a pattern starting with
   * `(?-i)` is case-sensitive. Encoded slashes (`%2F`) are not separators (they decode to `/`
   * after normalisation): match `url` for those.
   */
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

/**
 * One filter level: the generic field filter over {@link HTTP_FIELDS}. `distinct` is accepted at
 * every level here and checked by {@link filterProblems} (top level only). The parsed filter has
 * its `path` regexes made case-insensitive ({@link foldPathCase}); errors quote them as written.
 */
export const httpFilterSchema = fieldFilterSchema(HTTP_FIELDS).transform(
  foldPathCase,
) as unknown as z.ZodType<HttpFilterSpec>;

/**
 * The filter with every `path` regex, at every level, compiled case-insensitively
 * ({@link pathPattern}). A new object; idempotent. `compileHttpFilter` expects a filter that went
 * through {@link httpFilterSchema} (which applies this), or this.
 */
export function foldPathCase<S extends FieldFilterSpec | HttpFilterSpec>(spec: S): S {
  const node = spec as FieldFilterSpec;
  const out: Record<string, unknown> = { ...node };
  if (typeof node.path === 'string') out.path = pathPattern(node.path);
  if (node.all !== undefined) out.all = node.all.map(foldPathCase);
  if (node.any !== undefined) out.any = node.any.map(foldPathCase);
  if (node.not !== undefined) out.not = foldPathCase(node.not);
  return out as S;
}

/** Keys an HTTP filter accepts, for "did you mean" hints. */
export const HTTP_FILTER_KEYS: string[] = [...HTTP_FIELDS.names, ...COMBINATOR_KEYS];

/**
 * Checks what the schema cannot: `distinct` only at the top level, and (for a rate jail, which
 * judges a request before it has a response) only request fields. Returns `[path, message]` pairs.
 */
export function filterProblems(spec: HttpFilterSpec, requestOnly: boolean): [(string | number)[], string][] {
  const out: [FilterPath, string][] = [];
  walkFieldFilter(spec as FieldFilterSpec, (node, path) => {
    if (path.length > 0 && node.distinct !== undefined) {
      out.push([[...path, 'distinct'], 'distinct is allowed only at the top level of a filter']);
    }
    if (!requestOnly) return;
    if (node.status !== undefined) {
      out.push([
        [...path, 'status'],
        'a rate jail counts requests before they have a response: status cannot be used',
      ]);
    }
    if (path.length === 0 && node.distinct !== undefined) {
      out.push([[...path, 'distinct'], 'a rate jail counts every matching request: distinct cannot be used']);
    }
  });
  return out;
}
