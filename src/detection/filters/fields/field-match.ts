import { parseDuration } from '../../../core/duration.js';
import { re2BudgetProblem, re2Program } from '../re2-cache.js';
import type { DurationField, FieldDefinition, KeywordField, MapField, NumberField } from './catalogue.js';

/** What a filter says about one field, checked and normalised: what the compiler builds from. */
export type FieldMatch =
  | { readonly kind: 'intervals'; readonly intervals: readonly Interval[] }
  | { readonly kind: 'values'; readonly values: readonly string[] }
  | { readonly kind: 'regex'; readonly pattern: string }
  | { readonly kind: 'boolean'; readonly value: boolean }
  | { readonly kind: 'map'; readonly entries: readonly (readonly [key: string, pattern: string])[] };

/** `lo ≤ v ≤ hi`, each end strict when its flag says so; an open side is ±Infinity. */
export interface Interval {
  readonly lo: number;
  readonly hi: number;
  readonly loStrict: boolean;
  readonly hiStrict: boolean;
}

/** One thing wrong with a field's value; `path` is relative to the field. */
export interface FieldProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly input: unknown;
}

export type FieldParse =
  | { readonly match: FieldMatch; readonly problems?: undefined }
  | { readonly match?: undefined; readonly problems: readonly FieldProblem[] };

/** How error messages show a value the user wrote. */
export const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));

/** As the config layer describes a value of the wrong shape (`a list [...]`, `a mapping {...}`). */
export function describeShape(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null (an empty value)';
  const text = JSON.stringify(value);
  const short = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  if (Array.isArray(value)) return `a list ${short}`;
  return typeof value === 'object' ? `a mapping ${short}` : short;
}

/** Why RE2 refuses `pattern`, or `undefined` when it compiles. */
export function re2Problem(pattern: string): string | undefined {
  try {
    re2Program(pattern);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Options of {@link parseFieldMatch}. */
export interface ParseFieldMatchOptions {
  /**
   * Refuse a regex the matching budget finds too slow (`re2-cache.ts`). The schema sets it; the
   * compiler does not, so building a filter that passed validation never fails on a timing.
   * Default false.
   */
  readonly budget?: boolean;
}

/**
 * Checks what a filter wrote for one field and normalises it. The one place that knows the
 * syntax: the schema reports its problems, the compiler builds from its match.
 */
export function parseFieldMatch<E>(
  field: FieldDefinition<E>,
  value: unknown,
  options: ParseFieldMatchOptions = {},
): FieldParse {
  const problems: FieldProblem[] = [];
  const match = parseInto(field, value, problems, options.budget === true);
  return match === undefined || problems.length > 0 ? { problems } : { match };
}

function parseInto<E>(
  field: FieldDefinition<E>,
  value: unknown,
  out: FieldProblem[],
  budget: boolean,
): FieldMatch | undefined {
  switch (field.type) {
    case 'number':
    case 'duration': {
      const intervals = listOf(value, expectedOf(field), [], out, (item, path) =>
        rangeItem(field, item, path, out),
      );
      return intervals === undefined ? undefined : { kind: 'intervals', intervals };
    }
    case 'keyword':
      return keyword(field, value, out, budget);
    case 'text': {
      const pattern = regex(value, [], out, budget);
      return pattern === undefined ? undefined : { kind: 'regex', pattern };
    }
    case 'boolean':
      if (typeof value === 'boolean') return { kind: 'boolean', value };
      out.push({ path: [], message: `expected true or false, got ${show(value)}`, input: value });
      return undefined;
    case 'map':
      return map(field, value, out, budget);
  }
}

/** A value or a non-empty list of them: any of. Items are parsed by `item` (undefined: bad). */
function listOf<T>(
  value: unknown,
  expected: string,
  path: (string | number)[],
  out: FieldProblem[],
  item: (value: unknown, path: (string | number)[]) => T | undefined,
): T[] | undefined {
  if (!Array.isArray(value)) {
    const one = item(value, path);
    return one === undefined ? undefined : [one];
  }
  if (value.length === 0) {
    out.push({ path, message: `expected at least one value (${expected}), got []`, input: value });
    return undefined;
  }
  const items: T[] = [];
  for (const [i, element] of value.entries()) {
    const one = item(element, [...path, i]);
    if (one !== undefined) items.push(one);
  }
  return items.length === value.length ? items : undefined;
}

const NUMBER_TEXT = /^(0|[1-9]\d*)(?:-(0|[1-9]\d*))?$/;
const CLASS_TEXT = /^(\d)(x+)$/;
const DURATION_TEXT = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const COMPARISON_KEYS = new Set(['gt', 'gte', 'lt', 'lte']);

function expectedOf(field: NumberField<never> | DurationField<never>): string {
  if (field.type === 'duration')
    return 'a comparison of durations like { lt: "2s" } or { gte: "1m", lt: "1h" }';
  return field.expected ?? 'a number like 5, a list like [1, 2], a range like "10-20" or { gte: 1, lt: 500 }';
}

/** One item of a number or duration match, as an interval. */
function rangeItem<E>(
  field: NumberField<E> | DurationField<E>,
  value: unknown,
  path: (string | number)[],
  out: FieldProblem[],
): Interval | undefined {
  const bad = (): undefined => {
    out.push({ path, message: `expected ${expectedOf(field)}, got ${show(value)}`, input: value });
    return undefined;
  };
  if (value !== null && typeof value === 'object') {
    if (field.type === 'number' && field.comparisons === false) return bad();
    return comparison(field, value as Record<string, unknown>, path, out);
  }
  // A measured duration is never exactly "2s": durations take comparisons only.
  if (field.type === 'duration') return bad();
  let lo: number;
  let hi: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return bad();
    lo = value;
    hi = value;
  } else if (typeof value === 'string') {
    const cls = field.classes === true ? CLASS_TEXT.exec(value) : null;
    const num = cls === null ? NUMBER_TEXT.exec(value) : null;
    if (cls !== null) {
      const size = 10 ** (cls[2] as string).length;
      lo = Number(cls[1]) * size;
      hi = lo + size - 1;
    } else if (num !== null) {
      lo = Number(num[1]);
      // A reversed range ("599-500") is valid and matches nothing, as HTTP status always allowed.
      hi = num[2] === undefined ? lo : Number(num[2]);
    } else {
      return bad();
    }
  } else {
    return bad();
  }
  if (!numberInBounds(field, lo) || !numberInBounds(field, hi)) return bad();
  return { lo, hi, loStrict: false, hiStrict: false };
}

function numberInBounds(field: NumberField<never>, n: number): boolean {
  if (field.integer === true && !Number.isInteger(n)) return false;
  return !(n < (field.min ?? -Infinity) || n > (field.max ?? Infinity));
}

/** `{ gte: 1, lt: 500 }`: at most one lower (`gt`/`gte`) and one upper (`lt`/`lte`) bound. */
function comparison<E>(
  field: NumberField<E> | DurationField<E>,
  value: Record<string, unknown>,
  path: (string | number)[],
  out: FieldProblem[],
): Interval | undefined {
  const keys = Array.isArray(value) ? [] : Object.keys(value);
  const unknown = keys.filter((key) => !COMPARISON_KEYS.has(key));
  if (keys.length === 0 || unknown.length > 0) {
    const what = keys.length === 0 ? show(value) : `${unknown.map((k) => JSON.stringify(k)).join(', ')}`;
    out.push({
      path: keys.length === 0 ? path : [...path, unknown[0] as string],
      message: `expected ${expectedOf(field)} (comparisons: gt, gte, lt, lte), got ${what}`,
      input: value,
    });
    return undefined;
  }
  if ('gt' in value && 'gte' in value) return twoBounds(path, out, value, 'gt', 'gte');
  if ('lt' in value && 'lte' in value) return twoBounds(path, out, value, 'lt', 'lte');
  let lo = -Infinity;
  let hi = Infinity;
  let ok = true;
  for (const key of keys) {
    const bound = comparisonBound(field, value[key], [...path, key], out);
    if (bound === undefined) ok = false;
    else if (key === 'gt' || key === 'gte') lo = bound;
    else hi = bound;
  }
  if (!ok) return undefined;
  return { lo, hi, loStrict: 'gt' in value, hiStrict: 'lt' in value };
}

function twoBounds(
  path: (string | number)[],
  out: FieldProblem[],
  value: unknown,
  a: string,
  b: string,
): undefined {
  out.push({ path, message: `expected one of ${a} and ${b}, not both, got ${show(value)}`, input: value });
  return undefined;
}

function comparisonBound<E>(
  field: NumberField<E> | DurationField<E>,
  value: unknown,
  path: (string | number)[],
  out: FieldProblem[],
): number | undefined {
  if (field.type === 'duration') {
    if (typeof value === 'string' && DURATION_TEXT.test(value)) return parseDuration(value);
    out.push({
      path,
      message: `expected a duration with a unit like "500ms", "2s" or "1m30s", got ${show(value)}`,
      input: value,
    });
    return undefined;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  out.push({ path, message: `expected a number, got ${show(value)}`, input: value });
  return undefined;
}

function keyword<E>(
  field: KeywordField<E>,
  value: unknown,
  out: FieldProblem[],
  budget: boolean,
): FieldMatch | undefined {
  const fold = (text: string): string =>
    field.fold === 'upper' ? text.toUpperCase() : field.fold === 'lower' ? text.toLowerCase() : text;
  const expected =
    field.expected ??
    (field.values === undefined
      ? 'a value, a list of values or { match: "<regex>" }'
      : `one of ${field.values.map((v) => JSON.stringify(v)).join(', ')}`);
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && field.regex !== false) {
    const keys = Object.keys(value);
    if (keys.length !== 1 || keys[0] !== 'match') {
      out.push({ path: [], message: `expected ${expected}, got ${show(value)}`, input: value });
      return undefined;
    }
    const pattern = regex((value as { match: unknown }).match, ['match'], out, budget);
    return pattern === undefined ? undefined : { kind: 'regex', pattern };
  }
  const values = listOf(value, expected, [], out, (item, path) => {
    if (
      typeof item !== 'string' ||
      (field.pattern !== undefined && !field.pattern.test(item)) ||
      (field.values !== undefined && !field.values.includes(fold(item)))
    ) {
      out.push({ path, message: `expected ${expected}, got ${show(item)}`, input: item });
      return undefined;
    }
    return fold(item);
  });
  return values === undefined ? undefined : { kind: 'values', values };
}

/**
 * A regex value: RE2 must compile it and, with `budget`, the matching budget must not refuse it
 * (its cost is measured once per pattern; a merely slow one is reported by `fieldFilterWarnings`).
 */
function regex(
  value: unknown,
  path: (string | number)[],
  out: FieldProblem[],
  budget: boolean,
): string | undefined {
  if (typeof value !== 'string') {
    out.push({ path, message: `expected a regex (text), got ${show(value)}`, input: value });
    return undefined;
  }
  const problem = re2Problem(value);
  if (problem !== undefined) {
    out.push({
      path,
      message: `expected a regex RE2 can compile (no lookaround, no backreferences), got ${JSON.stringify(value)}: ${problem}`,
      input: value,
    });
    return undefined;
  }
  const refused = budget ? re2BudgetProblem(value) : undefined;
  if (refused?.level === 'error') {
    out.push({ path, message: refused.message, input: value });
    return undefined;
  }
  return value;
}

/** The regexes a (valid) field value holds, with their paths relative to the field. */
export function fieldPatterns(match: FieldMatch): [path: (string | number)[], pattern: string][] {
  if (match.kind === 'regex') return [[[], match.pattern]];
  if (match.kind === 'map') return match.entries.map(([key, pattern]) => [[key], pattern]);
  return [];
}

function map<E>(
  field: MapField<E>,
  value: unknown,
  out: FieldProblem[],
  budget: boolean,
): FieldMatch | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    out.push({ path: [], message: `expected a mapping, got ${describeShape(value)}`, input: value });
    return undefined;
  }
  const entries: [string, string][] = [];
  let ok = true;
  for (const [key, pattern] of Object.entries(value)) {
    if (!field.keyPattern.test(key)) {
      out.push({
        path: [key],
        message: `expected ${field.keyExpected}, got ${JSON.stringify(key)}`,
        input: key,
      });
      ok = false;
      continue;
    }
    const checked = regex(pattern, [key], out, budget);
    if (checked === undefined) ok = false;
    else entries.push([field.keyFold === 'lower' ? key.toLowerCase() : key, checked]);
  }
  return ok ? { kind: 'map', entries } : undefined;
}
