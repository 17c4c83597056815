import * as z from 'zod';
import { re2BudgetProblem } from '../re2-cache.js';
import { COMBINATOR_KEYS, type FieldCatalogue } from './catalogue.js';
import { describeShape, fieldPatterns, parseFieldMatch, show } from './field-match.js';

/**
 * A field filter, inline under a jail's `filter:` or in a rule file. Each key names a field of the
 * source's catalogue and says what its value must be (see {@link FieldCatalogue} for the syntax
 * of each kind); keys at one level must all match (AND), and `all`, `any` and `not` combine
 * sub-filters:
 *
 * ```yaml
 * filter: { event: close, bytes_in: 0 }                       # closed without sending a byte
 * filter: { event: close, duration: { lt: "2s" }, dport: [22, 2222] }
 * filter: { any: [ { end: reset }, { no_data: true } ], not: { listener: internal } }
 * filter: { status: [401, 403], path: "^/login", distinct: path }   # http
 * ```
 */
export interface FieldFilterSpec {
  /** Every sub-filter matches. */
  readonly all?: readonly FieldFilterSpec[];
  /** At least one sub-filter matches. */
  readonly any?: readonly FieldFilterSpec[];
  /** The sub-filter does not match. */
  readonly not?: FieldFilterSpec;
  /**
   * Only at the top level: a matching event counts as a failure only when this field's value is
   * new for the client within the jail's `findtime` (twenty ports probed, not one port twenty times).
   */
  readonly distinct?: string;
  /** Field name → what its value must be. */
  readonly [field: string]: unknown;
}

/** A key path inside a filter (`['any', 0, 'path']`). */
export type FilterPath = (string | number)[];

/** A problem found in a filter: where (relative to the filter) and what, ready to print. */
export interface FilterProblem {
  readonly path: FilterPath;
  readonly message: string;
}

const schemas = new WeakMap<FieldCatalogue<never>, z.ZodType<FieldFilterSpec>>();

/**
 * The zod schema of one filter level for `catalogue` (recursive through `all`, `any`, `not`).
 * Every field value is checked by the same parser the compiler uses, with messages that name what
 * was expected and what was got; an unknown key is an `unrecognized_keys` issue whose message
 * lists the catalogue's fields. `distinct` is accepted at every level here: {@link fieldFilterProblems}
 * refuses it below the top. Built once per catalogue.
 */
export function fieldFilterSchema<E>(catalogue: FieldCatalogue<E>): z.ZodType<FieldFilterSpec> {
  const known = schemas.get(catalogue as FieldCatalogue<never>);
  if (known !== undefined) return known;
  const shape: Record<string, z.ZodType> = {};
  for (const name of catalogue.names) {
    const field = catalogue.fields[name] as NonNullable<(typeof catalogue.fields)[string]>;
    shape[name] = z
      .unknown()
      .superRefine((value, ctx) => {
        for (const problem of parseFieldMatch(field, value, { budget: true }).problems ?? []) {
          ctx.addIssue({
            code: 'custom',
            path: [...problem.path],
            message: problem.message,
            input: problem.input,
          });
        }
      })
      .optional();
  }
  const distinct = catalogue.distinctFields as [string, ...string[]];
  const node: z.ZodType<FieldFilterSpec> = z.strictObject(
    {
      ...shape,
      get all() {
        return z.array(node).min(1).optional();
      },
      get any() {
        return z.array(node).min(1).optional();
      },
      get not() {
        return node.optional();
      },
      distinct: z.enum(distinct).optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys' ? unknownFieldMessage(catalogue, ...issue.keys) : undefined,
    },
  ) as unknown as z.ZodType<FieldFilterSpec>;
  schemas.set(catalogue as FieldCatalogue<never>, node);
  return node;
}

/** `unknown field "paht" (socket filters know: event, ..., all, any, not, distinct)`. */
export function unknownFieldMessage<E>(catalogue: FieldCatalogue<E>, ...keys: string[]): string {
  const known = [...catalogue.names, ...COMBINATOR_KEYS].join(', ');
  const names = keys.map((key) => JSON.stringify(key)).join(', ');
  return `unknown field${keys.length === 1 ? '' : 's'} ${names} (${catalogue.source} filters know: ${known})`;
}

/** Calls `visit` on every level of a (validated) filter, depth first, the top level first. */
export function walkFieldFilter(
  spec: FieldFilterSpec,
  visit: (node: FieldFilterSpec, path: FilterPath) => void,
  path: FilterPath = [],
): void {
  visit(spec, path);
  for (const [i, child] of (spec.all ?? []).entries()) walkFieldFilter(child, visit, [...path, 'all', i]);
  for (const [i, child] of (spec.any ?? []).entries()) walkFieldFilter(child, visit, [...path, 'any', i]);
  if (spec.not !== undefined) walkFieldFilter(spec.not, visit, [...path, 'not']);
}

/** What the schema cannot see: `distinct` below the top level. Returns `[path, message]` pairs. */
export function fieldFilterProblems(spec: FieldFilterSpec): [FilterPath, string][] {
  const out: [FilterPath, string][] = [];
  walkFieldFilter(spec, (node, path) => {
    if (path.length > 0 && node.distinct !== undefined) {
      out.push([[...path, 'distinct'], 'distinct is allowed only at the top level of a filter']);
    }
  });
  return out;
}

/**
 * Regexes of a (validated) filter that the matching budget finds slow but not slow enough to
 * refuse: `[path, message]` pairs, the message naming the pattern and its cost, for the config's
 * `warnings`. Costs are measured once per pattern (validation already did), so this is cheap.
 */
export function fieldFilterWarnings<E>(
  catalogue: FieldCatalogue<E>,
  spec: FieldFilterSpec,
): [FilterPath, string][] {
  const out: [FilterPath, string][] = [];
  walkFieldFilter(spec, (node, path) => {
    for (const name of catalogue.names) {
      const field = catalogue.fields[name];
      if (field === undefined || node[name] === undefined) continue;
      const match = parseFieldMatch(field, node[name]).match;
      if (match === undefined) continue;
      for (const [at, pattern] of fieldPatterns(match)) {
        const budget = re2BudgetProblem(pattern);
        const where = field.type === 'keyword' ? ['match'] : at;
        if (budget?.level === 'warning') out.push([[...path, name, ...where], budget.message]);
      }
    }
  });
  return out;
}

/**
 * Validates a filter for `catalogue` in one step (schema, then {@link fieldFilterProblems}): the
 * filter, or every problem with its path and a message ready to follow `file: jails.x.filter.`.
 * An unknown key names the fields the source has.
 */
export function validateFieldFilter<E>(
  catalogue: FieldCatalogue<E>,
  input: unknown,
): { spec: FieldFilterSpec; problems: [] } | { spec: null; problems: FilterProblem[] } {
  const result = fieldFilterSchema(catalogue).safeParse(input, { reportInput: true });
  if (!result.success) {
    const problems: FilterProblem[] = [];
    for (const issue of result.error.issues) {
      const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys)
          problems.push({ path: [...path, key], message: unknownFieldMessage(catalogue, key) });
      } else {
        problems.push({ path, message: issueMessage(issue) });
      }
    }
    return { spec: null, problems };
  }
  const problems = fieldFilterProblems(result.data).map(([path, message]) => ({ path, message }));
  return problems.length === 0 ? { spec: result.data, problems: [] } : { spec: null, problems };
}

/** The message of a structural issue (`all: "x"`), in the words the config layer uses. */
function issueMessage(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'custom':
      return issue.message;
    case 'invalid_type':
      return `expected ${issue.expected === 'array' ? 'a list' : 'a mapping'}, got ${describeShape(input)}`;
    case 'too_small':
      return `expected a non-empty list, got ${describeShape(input)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${show(input)}`;
    default:
      return `${issue.message}, got ${describeShape(input)}`;
  }
}
