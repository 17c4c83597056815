import RE2 from 're2';
import type { HttpEvent } from '../../../sources/http/http-event.js';
import type { DistinctField, HttpFilterSpec, StatusSpec } from './filter-schema.js';

/** A compiled HTTP filter: decides whether an exchange is a failure for its jail. */
export interface CompiledHttpFilter {
  /** True when `event` matches. RE2 only: linear in the inputs whatever the patterns. */
  matches(event: HttpEvent): boolean;
  /** The top-level `distinct:` field, if any. */
  readonly distinct: DistinctField | undefined;
}

type Predicate = (event: HttpEvent) => boolean;

/**
 * Compiles a filter validated by `httpFilterSchema`. Throws (`SyntaxError` from RE2) only for a
 * spec that skipped validation.
 */
export function compileHttpFilter(spec: HttpFilterSpec): CompiledHttpFilter {
  return { matches: compileNode(spec), distinct: spec.distinct };
}

/** The value of a `distinct:` field in an event, as text. */
export function distinctValue(event: HttpEvent, field: DistinctField): string {
  switch (field) {
    case 'path':
      return event.path;
    case 'url':
      return event.url;
    case 'query':
      return event.query;
    case 'host':
      return event.host;
    case 'method':
      return event.method;
    case 'status':
      return String(event.status);
    case 'user_agent':
      return event.userAgent;
    case 'referer':
      return event.referer;
  }
}

function compileNode(spec: HttpFilterSpec): Predicate {
  const checks: Predicate[] = [];
  if (spec.status !== undefined) {
    const allowed = statusSet(spec.status);
    checks.push((e) => e.status >= 0 && e.status < 600 && allowed[e.status] === 1);
  }
  if (spec.method !== undefined) {
    const methods = new Set(
      (typeof spec.method === 'string' ? [spec.method] : spec.method).map((m) => m.toUpperCase()),
    );
    checks.push((e) => methods.has(e.method));
  }
  for (const key of REGEX_KEYS) pushRegex(checks, spec[key], FIELD_OF[key]);
  for (const [name, pattern] of Object.entries(spec.headers ?? {})) {
    const key = name.toLowerCase();
    pushRegex(checks, pattern, (e) => headerText(e.headers[key]));
  }
  if (spec.all !== undefined) {
    const parts = spec.all.map(compileNode);
    checks.push((e) => parts.every((p) => p(e)));
  }
  if (spec.any !== undefined) {
    const parts = compileAny(spec.any);
    checks.push(parts.length === 1 ? (parts[0] as Predicate) : (e) => parts.some((p) => p(e)));
  }
  if (spec.not !== undefined) {
    const inner = compileNode(spec.not);
    checks.push((e) => !inner(e));
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0] as Predicate;
  return (e) => {
    for (const check of checks) if (!check(e)) return false;
    return true;
  };
}

type RegexKey = 'path' | 'url' | 'query' | 'host' | 'user_agent' | 'referer';

const REGEX_KEYS: readonly RegexKey[] = ['path', 'url', 'query', 'host', 'user_agent', 'referer'];

const FIELD_OF: Readonly<Record<RegexKey, (e: HttpEvent) => string>> = {
  path: (e) => e.path,
  url: (e) => e.url,
  query: (e) => e.query,
  host: (e) => e.host,
  user_agent: (e) => e.userAgent,
  referer: (e) => e.referer,
};

/**
 * The branches of an `any:`. Branches that are a lone regex on one field (the bundled `scanners`
 * rule has five on `path`) become one RE2 alternation: one native call per exchange instead of
 * one per branch, and the same answer, since each pattern keeps its flags inside its own group.
 */
function compileAny(specs: readonly HttpFilterSpec[]): Predicate[] {
  const byField = new Map<RegexKey, string[]>();
  const parts: Predicate[] = [];
  for (const spec of specs) {
    const sole = soleRegex(spec);
    if (sole === undefined) {
      parts.push(compileNode(spec));
      continue;
    }
    const patterns = byField.get(sole[0]);
    if (patterns === undefined) byField.set(sole[0], [sole[1]]);
    else patterns.push(sole[1]);
  }
  const merged: Predicate[] = [];
  for (const [key, patterns] of byField) {
    const field = FIELD_OF[key];
    let re: RE2 | undefined;
    // `\Q` quotes up to `\E` or the end, so it could swallow the branches after it: kept apart.
    if (patterns.length > 1 && !patterns.some((p) => p.includes('\\Q'))) {
      try {
        re = new RE2(patterns.map((p) => `(?:${p})`).join('|'));
      } catch {
        re = undefined; // e.g. a capture group name used twice: each pattern on its own, then
      }
    }
    if (re !== undefined) {
      const alternation = re;
      merged.push((e) => alternation.test(field(e)));
    } else {
      for (const pattern of patterns) pushRegex(merged, pattern, field);
    }
  }
  // Single regexes first: cheaper than the composite branches, and the order cannot change `some`.
  return [...merged, ...parts];
}

/** `[key, pattern]` when `spec` is exactly one regex on one field, nothing else. */
function soleRegex(spec: HttpFilterSpec): [RegexKey, string] | undefined {
  let found: [RegexKey, string] | undefined;
  for (const [key, value] of Object.entries(spec)) {
    if (value === undefined) continue;
    if (found !== undefined || typeof value !== 'string' || !REGEX_KEYS.includes(key as RegexKey)) {
      return undefined;
    }
    found = [key as RegexKey, value];
  }
  return found;
}

function pushRegex(checks: Predicate[], pattern: string | undefined, field: (e: HttpEvent) => string): void {
  if (pattern === undefined) return;
  const re = new RE2(pattern);
  checks.push((e) => re.test(field(e)));
}

function headerText(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : value.join(', ');
}

/** A 600-entry membership table: `404`, `"4xx"`, `"500-599"`. */
export function statusSet(spec: StatusSpec): Uint8Array {
  const set = new Uint8Array(600);
  const items = typeof spec === 'number' || typeof spec === 'string' ? [spec] : spec;
  for (const item of items) {
    let from: number;
    let to: number;
    if (typeof item === 'number') {
      from = item;
      to = item;
    } else if (item.endsWith('xx')) {
      from = Number(item[0]) * 100;
      to = from + 99;
    } else {
      const [a, b] = item.split('-');
      from = Number(a);
      to = b === undefined ? from : Number(b);
    }
    for (let s = Math.max(0, from); s <= Math.min(599, to); s++) set[s] = 1;
  }
  return set;
}
