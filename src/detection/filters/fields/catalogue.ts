/**
 * The fields a source's events offer to filters: their names (as written in the config), their
 * kinds, and how to read each one from an event. One catalogue per source kind (`http`, `socket`,
 * `packets`); the filter schema and compiler take it as a parameter, so a filter can name only the
 * fields its source has, and a compiled filter reads (and so makes a lazy event compute) only the
 * fields it names.
 *
 * The kinds, and what a filter may write for each:
 *
 * | kind       | examples                                        | meaning                           |
 * | ---------- | ----------------------------------------------- | --------------------------------- |
 * | `number`   | `0`, `[22, 80]`, `"8000-8999"`, `{ gte: 1, lt: 500 }` | exact, any of, range, comparison |
 * | `duration` | `{ lt: "2s" }`, `{ gte: "1m", lt: "1h" }`       | comparison; units required         |
 * | `keyword`  | `close`, `[reset, timeout]`, `{ match: "^web-" }` | exact value, any of, RE2 regex  |
 * | `text`     | `"^/admin"`, `"(?i)curl/"`                      | an RE2 regex, searched            |
 * | `boolean`  | `true`, `false`                                 | exact                             |
 * | `map`      | `{ X-Api-Key: "^$" }`                           | key → regex on that entry's text  |
 *
 * A `keyword` is a value from a small vocabulary (`event`, `end`, `method`) and is compared
 * exactly, case included, unless its catalogue folds it (HTTP `method` is upper-cased on both
 * sides, so `post` matches `POST`). A `text` is free text (a path, a user agent, an SNI name) and
 * its value in a filter is always a regex: that is what tells a regex from an exact string — the
 * field's kind, never the spelling. An absent `text` reads as `''` (so `"^$"` means "missing");
 * an absent number, duration, keyword or boolean matches no value (and so matches under `not:`).
 *
 * A regex on a `text` or `map` field sees at most the field's `scanLimit` characters (default
 * {@link DEFAULT_SCAN_LIMIT}, 4 KiB): a longer value is matched on its first `scanLimit`
 * characters, as if it ended there, so `$` matches at the cut. Matching stays bounded per field
 * whatever a client sends; the price is that what a client pads past the cut is not seen.
 */
export type FieldDefinition<E> =
  | NumberField<E>
  | DurationField<E>
  | KeywordField<E>
  | TextField<E>
  | BooleanField<E>
  | MapField<E>;

export type FieldKind = FieldDefinition<unknown>['type'];

interface FieldBase {
  /** One line for the docs and error hints. */
  readonly description: string;
}

/** A count, size, port or code. */
export interface NumberField<E> extends FieldBase {
  readonly type: 'number';
  readonly get: (event: E) => number | undefined;
  /** Only whole numbers are valid values. Default false. */
  readonly integer?: boolean;
  /** Smallest valid value (inclusive); also checked on range ends. Default: none. */
  readonly min?: number;
  /** Largest valid value (inclusive); also checked on range ends. Default: none. */
  readonly max?: number;
  /** `"4xx"` (a digit, then `x`s) means 400–499: HTTP status classes. Default false. */
  readonly classes?: boolean;
  /** `{ gte, lt, ... }` objects are valid. Default true. */
  readonly comparisons?: boolean;
  /** How an error describes a valid value (`a port like 22`). Default: a generic description. */
  readonly expected?: string;
}

/** A length of time. Events give it in ms; filters write it with a unit (`"500ms"`, `"2s"`). */
export interface DurationField<E> extends FieldBase {
  readonly type: 'duration';
  /** The value in ms. */
  readonly get: (event: E) => number | undefined;
}

/** A value from a small vocabulary, compared exactly. */
export interface KeywordField<E> extends FieldBase {
  readonly type: 'keyword';
  readonly get: (event: E) => string | undefined;
  /** The only valid values (after `fold`); errors list them. Default: any text. */
  readonly values?: readonly string[];
  /**
   * The event's value is always in this case, so a filter's values are converted to it when
   * compiled and compare case-insensitively at no cost per event. Default: compared as written.
   */
  readonly fold?: 'upper' | 'lower';
  /** A valid value's spelling (a trusted, built-in pattern; not RE2). Default: any text. */
  readonly pattern?: RegExp;
  /** `{ match: "<regex>" }` is valid. Default true. */
  readonly regex?: boolean;
  /** How an error describes a valid value (`an HTTP method`). Default: from `values`, or generic. */
  readonly expected?: string;
}

/** Free text, matched by an RE2 regex. */
export interface TextField<E> extends FieldBase {
  readonly type: 'text';
  /** `undefined` reads as `''`. */
  readonly get: (event: E) => string | undefined;
  /**
   * Characters (UTF-16 code units) of the value a regex sees; past them it is not scanned.
   * Default: the catalogue's `scanLimit`.
   */
  readonly scanLimit?: number;
}

export interface BooleanField<E> extends FieldBase {
  readonly type: 'boolean';
  readonly get: (event: E) => boolean | undefined;
}

/** Named entries of text (HTTP headers): each key of the filter's mapping names one. */
export interface MapField<E> extends FieldBase {
  readonly type: 'map';
  /** The entry's text, `''` when absent. `key` is already in `keyFold` case. */
  readonly get: (event: E, key: string) => string;
  /** A valid key's spelling (trusted, built-in). */
  readonly keyPattern: RegExp;
  /** How an error describes a valid key (`a header name`). */
  readonly keyExpected: string;
  /** Keys compare in this case (header names: lower). Default: as written. */
  readonly keyFold?: 'lower';
  /** As {@link TextField.scanLimit}, for each entry's text. Default: the catalogue's `scanLimit`. */
  readonly scanLimit?: number;
}

/** Characters of a text or map value a regex sees unless the field or catalogue says otherwise. */
export const DEFAULT_SCAN_LIMIT = 4_096;

/** Options of {@link defineFieldCatalogue}. */
export interface FieldCatalogueOptions {
  /** Default `scanLimit` of the catalogue's text and map fields, in characters. Default 4096. */
  readonly scanLimit?: number;
}

/** The fields of one source kind. Build with {@link defineFieldCatalogue}. */
export interface FieldCatalogue<E> {
  /** The source kind, for messages (`http`, `socket`, `packets`). */
  readonly source: string;
  readonly fields: Readonly<Record<string, FieldDefinition<E>>>;
  /** Field names, in declaration order. */
  readonly names: readonly string[];
  /** Fields `distinct:` may count: every field but maps, in declaration order. */
  readonly distinctFields: readonly string[];
  /** Default `scanLimit` of its text and map fields, in characters. */
  readonly scanLimit: number;
}

/** Keys a filter level uses for itself; no field may take them. */
export const COMBINATOR_KEYS = ['all', 'any', 'not', 'distinct'] as const;

/**
 * Builds a frozen catalogue. Throws (a programming error, not a config one) when a field takes a
 * combinator's name or a scan limit is not a positive whole number.
 */
export function defineFieldCatalogue<E>(
  source: string,
  fields: Record<string, FieldDefinition<E>>,
  options: FieldCatalogueOptions = {},
): FieldCatalogue<E> {
  const names = Object.keys(fields);
  const scanLimit = options.scanLimit ?? DEFAULT_SCAN_LIMIT;
  const badLimit = (n: number | undefined) => n !== undefined && !(Number.isInteger(n) && n > 0);
  if (badLimit(scanLimit)) throw new Error(`field catalogue ${source}: scanLimit must be a positive integer`);
  for (const name of names) {
    if ((COMBINATOR_KEYS as readonly string[]).includes(name)) {
      throw new Error(`field catalogue ${source}: "${name}" is a filter keyword, not a field name`);
    }
    const field = fields[name] as FieldDefinition<E>;
    if ((field.type === 'text' || field.type === 'map') && badLimit(field.scanLimit)) {
      throw new Error(`field catalogue ${source}: ${name}.scanLimit must be a positive integer`);
    }
  }
  return Object.freeze({
    source,
    fields: Object.freeze({ ...fields }),
    names: Object.freeze(names),
    distinctFields: Object.freeze(names.filter((name) => fields[name]?.type !== 'map')),
    scanLimit,
  });
}
