import type { HttpEvent } from '../../../sources/http/http-event.js';
import { compileFieldFilter, distinctReader } from '../fields/compile.js';
import type { FieldFilterSpec } from '../fields/filter-schema.js';
import {
  DISTINCT_FIELDS,
  type DistinctField,
  foldPathCase,
  type HttpFilterSpec,
  type StatusSpec,
} from './filter-schema.js';
import { HTTP_FIELDS } from './http-fields.js';

/** A compiled HTTP filter: decides whether an exchange is a failure for its jail. */
export interface CompiledHttpFilter {
  /** True when `event` matches. RE2 only: linear in the inputs whatever the patterns. */
  matches(event: HttpEvent): boolean;
  /** The top-level `distinct:` field, if any. */
  readonly distinct: DistinctField | undefined;
}

/**
 * Compiles a filter validated by `httpFilterSchema`: the generic field filter over
 * {@link HTTP_FIELDS}. Throws only for a spec that skipped validation.
 */
export function compileHttpFilter(spec: HttpFilterSpec): CompiledHttpFilter {
  // Specs from the config are folded already; a library caller's raw spec gets the same rule.
  const compiled = compileFieldFilter(HTTP_FIELDS, foldPathCase(spec) as FieldFilterSpec);
  return { matches: compiled.matches, distinct: spec.distinct };
}

const DISTINCT_READERS = Object.fromEntries(
  DISTINCT_FIELDS.map((field) => [field, distinctReader(HTTP_FIELDS, field)]),
) as Readonly<Record<DistinctField, (event: HttpEvent) => string>>;

/** The value of a `distinct:` field in an event, as text. */
export function distinctValue(event: HttpEvent, field: DistinctField): string {
  return DISTINCT_READERS[field](event);
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
