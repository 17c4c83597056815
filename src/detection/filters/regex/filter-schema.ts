import type * as Z from 'zod';

/**
 * The schema of a log filter (`rules/filters/<name>.yaml`, a file a jail names, or inline under a
 * jail's `filter:`), built with the zod the caller passes: the configuration schema builds it with
 * the zod it imports; filter-definition.ts checks a filter with {@link quickLogFilterSpec} and
 * loads zod only for a filter that check does not accept, to say what is wrong. See the README
 * section "Log filters" for the meaning of each key.
 */
export function logFilterSchemaOf(z: typeof Z): LogFilterSchema {
  if (built?.z === z) return built.schema;
  const schema = build(z);
  built ??= { z, schema };
  return schema;
}

export type LogFilterSchema = ReturnType<typeof build>;

/** The first schema built, and with which zod (the configuration's, when it is loaded). */
let built: { z: typeof Z; schema: LogFilterSchema } | undefined;

/** The schema {@link logFilterSchemaOf} built first, if any: no second zod is loaded for it. */
export function builtLogFilterSchema(): LogFilterSchema | undefined {
  return built?.schema;
}

function build(z: typeof Z) {
  const regexList = z.union([z.string(), z.array(z.string())]);
  const modeShape = {
    prefregex: z.string().optional().describe('Replaces the top-level prefregex in this mode.'),
    failregex: regexList.optional().describe('Added after the top-level failregex list in this mode.'),
    ignoreregex: regexList.optional().describe('Added after the top-level ignoreregex list in this mode.'),
    datepattern: z.string().optional(),
    maxlines: z.number().int().min(1).max(1000).optional(),
    vars: z.record(z.string(), z.string()).optional(),
  };
  return z
    .strictObject({
      description: z.string().optional().describe('What the filter catches.'),
      extends: z
        .string()
        .optional()
        .describe(
          'A bundled filter name or file this one builds on: lists are appended, the rest overrides.',
        ),
      prefregex: z
        .string()
        .optional()
        .describe('Gate every line must pass; its <F-CONTENT>...</F-CONTENT> part is what failregex sees.'),
      failregex: regexList.optional().describe('A line matching one of these (in order) is a failure.'),
      ignoreregex: regexList.optional().describe('A failure whose content matches one of these is ignored.'),
      datepattern: z.string().optional().describe('strftime-style date pattern instead of detection.'),
      ignorerdns: z
        .string()
        .optional()
        .describe(
          "A failure is ignored when the client's reverse DNS name matches this regex and resolves back to the client (a real Googlebot). The failure is counted when the lookups settle.",
        ),
      maxlines: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .optional()
        .describe(
          'Lines of one <F-MLFID> session remembered (to carry its host to a later line). Default 10.',
        ),
      vars: z
        .record(z.string(), z.string())
        .optional()
        .describe('<name> in a regex is replaced by vars.name.'),
      mode: z.string().optional().describe('The mode used when the jail names none. Default "normal".'),
      modes: z
        .record(z.string(), z.strictObject(modeShape))
        .optional()
        .describe("Variants selected by the jail's mode."),
    })
    .describe('A log filter: prefregex, failregex, ignoreregex with <HOST>-style tags, run on RE2.');
}

export type LogFilterSpec = Z.output<LogFilterSchema>;
export type LogFilterModeSpec = NonNullable<LogFilterSpec['modes']>[string];

const TOP_KEYS = new Set([
  'description',
  'extends',
  'prefregex',
  'failregex',
  'ignoreregex',
  'datepattern',
  'ignorerdns',
  'maxlines',
  'vars',
  'mode',
  'modes',
]);
const TOP_STRINGS = ['description', 'extends', 'prefregex', 'datepattern', 'ignorerdns', 'mode'];
const MODE_KEYS = new Set(['prefregex', 'failregex', 'ignoreregex', 'datepattern', 'maxlines', 'vars']);
const MODE_STRINGS = ['prefregex', 'datepattern'];

/**
 * `raw` as a {@link LogFilterSpec} when it plainly is one (plain objects, the right types, no
 * other key), else `undefined`: then the zod schema decides, and names the problems. Never
 * accepts what the schema refuses, so the two differ only in speed: this needs no zod loaded.
 * The value returned is `raw` itself (the schema's output would be an equal copy).
 */
export function quickLogFilterSpec(raw: unknown): LogFilterSpec | undefined {
  if (!isPlainObject(raw)) return undefined;
  for (const key of Object.keys(raw)) if (!TOP_KEYS.has(key)) return undefined;
  if (!shapeOk(raw, TOP_STRINGS)) return undefined;
  const modes = raw.modes;
  if (modes !== undefined) {
    if (!isPlainObject(modes)) return undefined;
    for (const [name, mode] of Object.entries(modes)) {
      if (name === '__proto__' || !isPlainObject(mode)) return undefined;
      for (const key of Object.keys(mode)) if (!MODE_KEYS.has(key)) return undefined;
      if (!shapeOk(mode, MODE_STRINGS)) return undefined;
    }
  }
  return raw as LogFilterSpec;
}

function shapeOk(object: Record<string, unknown>, strings: readonly string[]): boolean {
  for (const key of strings) if (!optionalString(object[key])) return false;
  return (
    regexListOk(object.failregex) &&
    regexListOk(object.ignoreregex) &&
    maxlinesOk(object.maxlines) &&
    varsOk(object.vars)
  );
}

function optionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}

function regexListOk(value: unknown): boolean {
  if (value === undefined || typeof value === 'string') return true;
  if (!Array.isArray(value)) return false;
  // Indexed, not `every`: a hole is `undefined`, which the schema refuses.
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'string') return false;
  return true;
}

function maxlinesOk(value: unknown): boolean {
  return (
    value === undefined ||
    (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1000)
  );
}

function varsOk(value: unknown): boolean {
  if (value === undefined) return true;
  if (!isPlainObject(value)) return false;
  for (const [key, text] of Object.entries(value))
    if (key === '__proto__' || typeof text !== 'string') return false;
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  // Only enumerable string keys (what YAML and JSON make): the schema would see symbols too.
  return Reflect.ownKeys(value).length === Object.keys(value).length;
}
