import type RE2 from 're2';
import { literalPrefilter } from '../literal-prefilter.js';
import { re2Cost, re2Program } from '../re2-cache.js';
import type { FieldCatalogue, FieldDefinition, MapField, TextField } from './catalogue.js';
import { type FieldMatch, type Interval, parseFieldMatch } from './field-match.js';
import type { FieldFilterSpec } from './filter-schema.js';

/** A compiled field filter: decides whether an event is a failure for its jail. */
export interface CompiledFieldFilter<E> {
  /**
   * True when `event` matches. Reads only the fields the filter names (a lazy event computes
   * nothing else), allocates nothing but the slice of an over-long value, and is linear in the
   * inputs (RE2); a regex sees at most its field's `scanLimit` characters, so the cost per event
   * is bounded whatever a client sends.
   */
  readonly matches: (event: E) => boolean;
  /** The top-level `distinct:` field, if any. */
  readonly distinct: string | undefined;
  /** The `distinct:` field's value in `event` as text; `''` without one (or when absent). */
  readonly distinctValue: (event: E) => string;
}

type Predicate<E> = (event: E) => boolean;

/**
 * Compiles a filter validated by `fieldFilterSchema(catalogue)`, once: the result is a tree of
 * closures over the catalogue's getters. Throws for a spec that skipped validation.
 */
export function compileFieldFilter<E>(
  catalogue: FieldCatalogue<E>,
  spec: FieldFilterSpec,
): CompiledFieldFilter<E> {
  const distinct = spec.distinct;
  return {
    matches: compileNode(catalogue, spec),
    distinct,
    distinctValue: distinct === undefined ? () => '' : distinctReader(catalogue, distinct),
  };
}

/** Reads `field` of an event as text, for `distinct:` (`String(value)`; `''` when absent). */
export function distinctReader<E>(catalogue: FieldCatalogue<E>, field: string): (event: E) => string {
  const definition = catalogue.fields[field];
  if (definition === undefined || definition.type === 'map') {
    throw new TypeError(`${catalogue.source} filters cannot count distinct ${JSON.stringify(field)}`);
  }
  const get = definition.get as (event: E) => string | number | boolean | undefined;
  return (event) => {
    const value = get(event);
    return value === undefined ? '' : String(value);
  };
}

/** Cheap checks first: `and` stops at the first that fails, and a 200 rarely reaches a regex. */
const RANK = { number: 0, duration: 0, boolean: 0, keyword: 1, text: 2, map: 3 } as const;

function compileNode<E>(catalogue: FieldCatalogue<E>, spec: FieldFilterSpec): Predicate<E> {
  const ranked: [rank: number, check: Predicate<E>][] = [];
  for (const name of catalogue.names) {
    const value = spec[name];
    if (value === undefined) continue;
    const field = catalogue.fields[name] as FieldDefinition<E>;
    const match = parseFieldMatch(field, value).match;
    if (match === undefined)
      throw new TypeError(`invalid ${catalogue.source} filter value for ${name}: validate it first`);
    const rank = field.type === 'keyword' && match.kind === 'regex' ? RANK.text : RANK[field.type];
    for (const check of fieldChecks(field, match, scanLimitOf(catalogue, field))) ranked.push([rank, check]);
  }
  if (spec.all !== undefined) {
    const parts = spec.all.map((child) => compileNode(catalogue, child));
    ranked.push([4, (e) => parts.every((p) => p(e))]);
  }
  if (spec.any !== undefined) {
    const parts = compileAny(catalogue, spec.any);
    ranked.push([5, parts.length === 1 ? (parts[0] as Predicate<E>) : (e) => parts.some((p) => p(e))]);
  }
  if (spec.not !== undefined) {
    const inner = compileNode(catalogue, spec.not);
    ranked.push([6, (e) => !inner(e)]);
  }
  const checks = ranked.sort((a, b) => a[0] - b[0]).map(([, check]) => check); // stable sort
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0] as Predicate<E>;
  return (e) => {
    for (const check of checks) if (!check(e)) return false;
    return true;
  };
}

/**
 * How many characters of `field` a regex sees: its own `scanLimit`, else the catalogue's. Keyword
 * fields are short by construction; theirs is the catalogue's too.
 */
function scanLimitOf<E>(catalogue: FieldCatalogue<E>, field: FieldDefinition<E>): number {
  return (field.type === 'text' || field.type === 'map' ? field.scanLimit : undefined) ?? catalogue.scanLimit;
}

/**
 * The first `limit` characters of `text` (all of it when shorter). A cut never splits a surrogate
 * pair, so RE2 (which matches UTF-8) sees no lone half. A slice of a flat string is O(1) in V8.
 */
export function scanned(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const end = (text.charCodeAt(limit - 1) & 0xfc00) === 0xd800 ? limit - 1 : limit;
  return text.slice(0, end);
}

/** The checks one field's match needs (a map gives one per key; the rest, one). */
function fieldChecks<E>(field: FieldDefinition<E>, match: FieldMatch, limit: number): Predicate<E>[] {
  switch (match.kind) {
    case 'intervals': {
      const get = (field as { get: (e: E) => number | undefined }).get;
      return [intervalCheck(get, match.intervals, field.type === 'number' ? field : undefined)];
    }
    case 'values': {
      const get = (field as { get: (e: E) => string | undefined }).get;
      if (match.values.length === 1) {
        const only = match.values[0];
        return [(e) => get(e) === only];
      }
      const values = new Set(match.values);
      return [(e) => values.has(get(e) as string)];
    }
    case 'regex':
      return [regexCheck((field as { get: (e: E) => string | undefined }).get, match.pattern, limit)];
    case 'boolean': {
      const get = (field as { get: (e: E) => boolean | undefined }).get;
      const value = match.value;
      return [(e) => get(e) === value];
    }
    case 'map': {
      const get = (field as MapField<E>).get;
      return match.entries.map(([key, pattern]) =>
        textCheck((e: E) => get(e, key), pattern, re2Program(pattern), limit),
      );
    }
  }
}

function regexCheck<E>(get: (e: E) => string | undefined, pattern: string, limit: number): Predicate<E> {
  return textCheck(get, pattern, re2Program(pattern), limit);
}

/**
 * `re` (compiled from `pattern`) on a field's text, behind the literal prefilter: a text without
 * the literals every match contains (most benign requests, for the payload rules) never reaches
 * the native call or its UTF-8 copy of the text.
 */
function textCheck<E>(
  get: (e: E) => string | undefined,
  pattern: string,
  re: RE2,
  limit: number,
): Predicate<E> {
  const prefilter = literalPrefilter(pattern);
  if (prefilter === undefined) return (e) => re.test(scanned(get(e) ?? '', limit));
  return (e) => {
    const text = scanned(get(e) ?? '', limit);
    return prefilter(text) && re.test(text);
  };
}

/**
 * Any of the intervals. An absent value (`undefined`) compares false with every bound. Several
 * intervals on a small whole-number field (HTTP status, a port) become one membership table.
 */
function intervalCheck<E>(
  get: (e: E) => number | undefined,
  intervals: readonly Interval[],
  field: { integer?: boolean; min?: number; max?: number } | undefined,
): Predicate<E> {
  if (intervals.length === 1) {
    const { lo, hi, loStrict, hiStrict } = intervals[0] as Interval;
    if (lo === hi && !loStrict && !hiStrict) return (e) => get(e) === lo;
    if (!loStrict && !hiStrict) {
      return (e) => {
        const v = get(e) as number;
        return v >= lo && v <= hi;
      };
    }
    return (e) => {
      const v = get(e) as number;
      return (loStrict ? v > lo : v >= lo) && (hiStrict ? v < hi : v <= hi);
    };
  }
  const max = field?.max;
  if (field?.integer === true && (field.min ?? -1) >= 0 && max !== undefined && max <= 65_535) {
    const table = new Uint8Array(max + 1);
    for (const { lo, hi, loStrict, hiStrict } of intervals) {
      const from = Math.max(0, loStrict ? Math.floor(lo) + 1 : Math.ceil(lo));
      const to = Math.min(max, hiStrict ? Math.ceil(hi) - 1 : Math.floor(hi));
      for (let n = from; n <= to; n++) table[n] = 1;
    }
    // Fractions, negatives and `undefined` index nothing: `undefined === 1` is false.
    return (e) => table[get(e) as number] === 1;
  }
  return (e) => {
    const v = get(e) as number;
    for (const { lo, hi, loStrict, hiStrict } of intervals) {
      if ((loStrict ? v > lo : v >= lo) && (hiStrict ? v < hi : v <= hi)) return true;
    }
    return false;
  };
}

/**
 * The branches of an `any:`. Branches that are a lone regex on one text field run behind their
 * literal prefilters, one by one; those without one (nothing literal is certain in every match)
 * become one RE2 alternation: one native call per event instead of one per branch, and the same
 * answer, since each pattern keeps its flags inside its own group.
 */
function compileAny<E>(catalogue: FieldCatalogue<E>, specs: readonly FieldFilterSpec[]): Predicate<E>[] {
  const byField = new Map<string, string[]>();
  const parts: Predicate<E>[] = [];
  for (const spec of specs) {
    const sole = soleRegex(catalogue, spec);
    if (sole === undefined) {
      parts.push(compileNode(catalogue, spec));
      continue;
    }
    const patterns = byField.get(sole[0]);
    if (patterns === undefined) byField.set(sole[0], [sole[1]]);
    else patterns.push(sole[1]);
  }
  const merged: Predicate<E>[] = [];
  for (const [name, patterns] of byField) {
    const field = catalogue.fields[name] as TextField<E>;
    const get = field.get;
    const limit = scanLimitOf(catalogue, field);
    // A pattern with a literal prefilter runs on its own behind it, so a benign text is refused
    // before RE2; one alternation of them all would need RE2 (its prefilter, the union of
    // theirs, is weak). The patterns without one share an alternation.
    const bare: string[] = [];
    for (const pattern of patterns) {
      if (literalPrefilter(pattern) === undefined) bare.push(pattern);
      else merged.push(regexCheck(get, pattern, limit));
    }
    const alternation = bare.length > 1 ? alternationOf(bare) : undefined;
    if (alternation !== undefined) merged.push(regexCheck(get, alternation, limit));
    else for (const pattern of bare) merged.push(regexCheck(get, pattern, limit));
  }
  // Single regexes first: cheaper than the composite branches, and the order cannot change `some`.
  return [...merged, ...parts];
}

/**
 * One RE2 program for `patterns` (each keeps its flags inside its own group), unless the matching
 * budget finds it slow, `\Q` could swallow the branches after it, or RE2 refuses the combination
 * (a capture group name used twice): then each pattern runs on its own.
 */
function alternationOf(patterns: readonly string[]): string | undefined {
  if (patterns.some((p) => p.includes('\\Q'))) return undefined;
  const alternation = patterns.map((p) => `(?:${p})`).join('|');
  try {
    if (re2Cost(alternation).verdict !== 'ok') return undefined;
    re2Program(alternation);
    return alternation;
  } catch {
    return undefined;
  }
}

/** `[field, pattern]` when `spec` is exactly one regex on one text field, nothing else. */
function soleRegex<E>(catalogue: FieldCatalogue<E>, spec: FieldFilterSpec): [string, string] | undefined {
  let found: [string, string] | undefined;
  for (const [key, value] of Object.entries(spec)) {
    if (value === undefined) continue;
    if (found !== undefined || typeof value !== 'string' || catalogue.fields[key]?.type !== 'text') {
      return undefined;
    }
    found = [key, value];
  }
  return found;
}
