import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Z from 'zod';
import { closest } from '../../../core/closest.js';
import { ConfigError } from '../../../core/errors.js';
import { lazyRequire } from '../../../core/lazy-require.js';
import { isFail2banReference, resolveFail2banDefinition } from '../fail2ban/reference.js';
import {
  builtLogFilterSchema,
  type LogFilterModeSpec,
  type LogFilterSpec,
  logFilterSchemaOf,
  quickLogFilterSpec,
} from './filter-schema.js';
import { parseFilterYaml } from './filter-yaml.js';

export type { LogFilterSpec } from './filter-schema.js';

/** The bundled log filters: `rules/filters/<name>.yaml` at the package root. */
export const BUNDLED_LOG_FILTERS_DIR = fileURLToPath(new URL('../../../../rules/filters/', import.meta.url));

/** Default lines of one session (`<F-MLFID>`) the filter remembers. */
export const DEFAULT_MAXLINES = 10;

// What a filter's YAML and zod cost to load is paid only when a filter needs them: a bundled filter
// comes parsed from the build (filter-yaml.ts), and zod is asked only about a filter the quick
// check does not accept, to name its problems.
const zod = lazyRequire<typeof Z>('zod');

/** The schema's verdict on `raw`, without loading zod when the quick check accepts it. */
function checkSpec(
  raw: unknown,
): { success: true; data: LogFilterSpec } | { success: false; error: Z.ZodError } {
  const quick = quickLogFilterSpec(raw);
  if (quick !== undefined) return { success: true, data: quick };
  return (builtLogFilterSchema() ?? logFilterSchemaOf(zod())).safeParse(raw);
}

/** A pattern and where it was written, for error messages (`rules/filters/sshd.yaml: failregex.2`). */
export interface RegexSource {
  source: string;
  where: string;
}

/** A filter with `extends` and its mode applied: what the compiler works from. */
export interface ResolvedFilterDefinition {
  /** Bundled name, file path, or `inline`. */
  name: string;
  description: string;
  mode: string;
  /** Every mode the filter defines (empty when it has none). */
  modes: readonly string[];
  prefregex: RegexSource | undefined;
  failregex: readonly RegexSource[];
  ignoreregex: readonly RegexSource[];
  datepattern: RegexSource | undefined;
  /** Clients whose forward-confirmed reverse DNS name matches this are not failures. */
  ignorerdns?: RegexSource | undefined;
  maxlines: number;
  vars: Readonly<Record<string, string>>;
  /** `exact`: only the date's text is cut from a line, as fail2ban does (fail2ban filter files). Default: blanks around it too. */
  dateCut?: 'exact';
}

const FILTER_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** True when `reference` names a bundled filter rather than a path. */
export function isBundledName(reference: string): boolean {
  return FILTER_NAME.test(reference);
}

/** Names of the bundled log filters. */
export function bundledLogFilters(rulesDir: string = BUNDLED_LOG_FILTERS_DIR): string[] {
  try {
    return readdirSync(rulesDir)
      .filter((file) => file.endsWith('.yaml'))
      .map((file) => file.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/** Where an error is reported: a file, or a key path in the config (`portcullis.yaml: jails.x.filter`). */
interface Origin {
  /** `file: ` or `portcullis.yaml: jails.x.filter.` — what goes before a key path. */
  prefix: string;
  /** Without a key: `file` or `portcullis.yaml: jails.x.filter`. */
  whole: string;
  baseDir: string;
}

/**
 * Reads a filter spec (bundled name, path, or inline object), follows `extends`, and applies a
 * mode. Throws {@link ConfigError} naming the file or key.
 */
export function resolveFilterDefinition(
  spec: string | Record<string, unknown>,
  mode: string | undefined,
  options: { rulesDir?: string; baseDir?: string; where?: string; modeWhere?: string } = {},
): ResolvedFilterDefinition {
  // `fail2ban:sshd` and `{ fail2ban: ... }`: fail2ban's own filter files, read in place.
  if (isFail2banReference(spec)) {
    return resolveFail2banDefinition(spec, {
      mode,
      where: options.where ?? 'filter',
      ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }),
    });
  }
  const rulesDir = options.rulesDir ?? BUNDLED_LOG_FILTERS_DIR;
  const baseDir = options.baseDir ?? process.cwd();
  const where = options.where ?? 'filter';
  const chain: { spec: LogFilterSpec; origin: Origin; name: string }[] = [];
  let current: string | Record<string, unknown> = spec;
  let origin: Origin = { prefix: `${where}.`, whole: where, baseDir };
  const seen = new Set<string>();
  for (let depth = 0; ; depth++) {
    let name: string;
    let raw: unknown;
    if (typeof current === 'string') {
      const read = readFilterFile(current, rulesDir, origin);
      name = read.name;
      raw = read.raw;
      origin = { prefix: `${read.file}: `, whole: read.file, baseDir: resolve(read.file, '..') };
      if (seen.has(read.file))
        throw new ConfigError([`${read.file}: extends itself (through ${[...seen].join(', ')})`]);
      seen.add(read.file);
    } else {
      name = 'inline';
      raw = current;
    }
    const parsed = checkSpec(raw);
    if (!parsed.success) {
      throw new ConfigError(
        parsed.error.issues.map((issue) => {
          const path = issue.path.map(String).join('.');
          return path === ''
            ? `${origin.whole}: ${issue.message}`
            : `${origin.prefix}${path}: ${issue.message}`;
        }),
      );
    }
    chain.unshift({ spec: parsed.data, origin, name });
    if (parsed.data.extends === undefined) break;
    if (depth >= 8) throw new ConfigError([`${origin.prefix}extends: more than 8 levels`]);
    current = parsed.data.extends;
    origin = { ...origin, prefix: `${origin.prefix}extends: `, whole: `${origin.prefix}extends` };
  }
  return applyMode(chain, mode, options.modeWhere ?? 'mode');
}

function readFilterFile(
  reference: string,
  rulesDir: string,
  origin: Origin,
): { name: string; file: string; raw: unknown } {
  const bundled = isBundledName(reference);
  const file = bundled
    ? resolve(rulesDir, `${reference}.yaml`)
    : isAbsolute(reference)
      ? reference
      : resolve(origin.baseDir, reference);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    if (bundled) {
      const known = bundledLogFilters(rulesDir);
      const near = closest(reference, known);
      const hint = near === undefined ? '' : `did you mean "${near}"? `;
      throw new ConfigError([
        `${origin.whole}: no bundled log filter named ${JSON.stringify(reference)} (${hint}the ${known.length === 0 ? 'bundled filters are missing from' : 'bundled ones are listed in the README and in'} rules/filters/)`,
      ]);
    }
    throw new ConfigError([`${origin.whole}: cannot read the filter file ${file}`]);
  }
  let raw: unknown;
  try {
    raw = parseFilterYaml(text, file);
  } catch (error) {
    throw new ConfigError([`${file}: invalid YAML: ${(error as Error).message.split('\n')[0]}`]);
  }
  return { name: bundled ? reference : file, file, raw };
}

function list(value: string | string[] | undefined, prefix: string): RegexSource[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return [{ source: value, where: prefix.slice(0, -1) }];
  return value.map((source, i) => ({ source, where: `${prefix}${i}` }));
}

function applyMode(
  chain: readonly { spec: LogFilterSpec; origin: Origin; name: string }[],
  requested: string | undefined,
  modeWhere: string,
): ResolvedFilterDefinition {
  const top = chain[chain.length - 1] as { spec: LogFilterSpec; name: string };
  let description = '';
  let prefregex: RegexSource | undefined;
  let datepattern: RegexSource | undefined;
  let ignorerdns: RegexSource | undefined;
  let maxlines = DEFAULT_MAXLINES;
  let defaultMode: string | undefined;
  const failregex: RegexSource[] = [];
  const ignoreregex: RegexSource[] = [];
  const vars: Record<string, string> = {};
  const modes = new Map<string, { mode: LogFilterModeSpec; prefix: string }[]>();
  for (const { spec, origin } of chain) {
    const at = origin.prefix;
    if (spec.description !== undefined) description = spec.description;
    if (spec.prefregex !== undefined) prefregex = { source: spec.prefregex, where: `${at}prefregex` };
    if (spec.datepattern !== undefined) datepattern = { source: spec.datepattern, where: `${at}datepattern` };
    if (spec.maxlines !== undefined) maxlines = spec.maxlines;
    if (spec.ignorerdns !== undefined) ignorerdns = { source: spec.ignorerdns, where: `${at}ignorerdns` };
    if (spec.mode !== undefined) defaultMode = spec.mode;
    failregex.push(...list(spec.failregex, `${at}failregex.`));
    ignoreregex.push(...list(spec.ignoreregex, `${at}ignoreregex.`));
    Object.assign(vars, spec.vars);
    for (const [name, mode] of Object.entries(spec.modes ?? {})) {
      const entries = modes.get(name) ?? [];
      entries.push({ mode, prefix: `${at}modes.${name}.` });
      modes.set(name, entries);
    }
  }
  const mode = requested ?? defaultMode ?? 'normal';
  const names = [...modes.keys()];
  const selected = modes.get(mode);
  if (selected === undefined && (names.length > 0 || mode !== 'normal')) {
    const known = names.length === 0 ? 'it has no modes' : `modes: ${names.join(', ')}`;
    throw new ConfigError([
      `${modeWhere}: the filter ${JSON.stringify(top.name)} has no mode ${JSON.stringify(mode)} (${known})`,
    ]);
  }
  for (const { mode: entry, prefix } of selected ?? []) {
    if (entry.prefregex !== undefined) prefregex = { source: entry.prefregex, where: `${prefix}prefregex` };
    if (entry.datepattern !== undefined)
      datepattern = { source: entry.datepattern, where: `${prefix}datepattern` };
    if (entry.maxlines !== undefined) maxlines = entry.maxlines;
    failregex.push(...list(entry.failregex, `${prefix}failregex.`));
    ignoreregex.push(...list(entry.ignoreregex, `${prefix}ignoreregex.`));
    Object.assign(vars, entry.vars);
  }
  return {
    name: top.name,
    description,
    mode,
    modes: names,
    prefregex,
    failregex,
    ignoreregex,
    datepattern,
    ignorerdns,
    maxlines,
    vars,
  };
}
