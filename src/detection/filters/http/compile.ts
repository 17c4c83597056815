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
  pushRegex(checks, spec.path, (e) => e.path);
  pushRegex(checks, spec.url, (e) => e.url);
  pushRegex(checks, spec.query, (e) => e.query);
  pushRegex(checks, spec.host, (e) => e.host);
  pushRegex(checks, spec.user_agent, (e) => e.userAgent);
  pushRegex(checks, spec.referer, (e) => e.referer);
  for (const [name, pattern] of Object.entries(spec.headers ?? {})) {
    const key = name.toLowerCase();
    pushRegex(checks, pattern, (e) => headerText(e.headers[key]));
  }
  if (spec.all !== undefined) {
    const parts = spec.all.map(compileNode);
    checks.push((e) => parts.every((p) => p(e)));
  }
  if (spec.any !== undefined) {
    const parts = spec.any.map(compileNode);
    checks.push((e) => parts.some((p) => p(e)));
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
