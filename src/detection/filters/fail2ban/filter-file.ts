import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from '../../../core/errors.js';
import {
  configFilesOf,
  configName,
  ExpansionLimitError,
  Fail2banConfig,
  InterpolationError,
} from './config-set.js';
import { translateDatePattern } from './date-pattern.js';
import type { Fail2banDefinition, Fail2banRegexSource as RegexSource } from './definition.js';
import { IniSyntaxError } from './ini.js';
import { translatePythonRegex, UnsupportedRegexError } from './python-regex.js';
import { substituteTags, TagLoopError } from './tags.js';

/** Default directory of fail2ban's filters (`fail2ban:NAME`); `PORTCULLIS_FAIL2BAN_DIR` overrides the `/etc/fail2ban` part. */
export const DEFAULT_FAIL2BAN_DIR = '/etc/fail2ban';

/** What to do with a regex RE2 cannot run. */
export type UnsupportedPolicy = 'refuse' | 'skip';

export interface Fail2banFilterOptions {
  /** The filter's parameters, as in `sshd[mode=aggressive, publickey=invalid]`; `mode` among them. */
  params?: Readonly<Record<string, string>>;
  /**
   * `logtype` for filters that use `common.conf`'s prefixes when the filter sets none: `file`
   * (default) or `journal` (what fail2ban picks for `backend = systemd`).
   */
  logtype?: 'file' | 'journal';
  /** `refuse` (default): any regex RE2 cannot run refuses the filter; `skip`: it is left out, with a note. */
  unsupported?: UnsupportedPolicy;
}

/** A regex that could not be carried over. */
export interface RefusedRegex {
  /** `failregex.3` (index in the option's lines after interpolation). */
  where: string;
  /** The line as fail2ban would compile it (tags interpolated). */
  regex: string;
  reason: string;
}

/** A fail2ban filter file read and translated. */
export interface Fail2banFilter {
  /** `/etc/fail2ban/filter.d/sshd.conf`. */
  file: string;
  /** `sshd`. */
  name: string;
  /** Every file read (includes and `.local` files), in merge order. */
  files: readonly string[];
  definition: Fail2banDefinition;
  /** `journalmatch` lines, each as journalctl arguments (`_SYSTEMD_UNIT=sshd.service + _COMM=sshd`). */
  journalmatch: readonly (readonly string[])[];
  /** Regexes left out (`unsupported: skip`); with `refuse` these make {@link readFail2banFilter} throw. */
  refused: readonly RefusedRegex[];
  /** What was carried over differently (datepattern detected, `usedns`, ...), one sentence each. */
  notes: readonly string[];
}

const FILTER_OPTIONS = [
  'usedns',
  'prefregex',
  'ignoreregex',
  'failregex',
  'maxlines',
  'datepattern',
  'journalmatch',
];

/** The directory of fail2ban's configuration: `PORTCULLIS_FAIL2BAN_DIR`, else `/etc/fail2ban`. */
export function fail2banDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.PORTCULLIS_FAIL2BAN_DIR;
  return dir === undefined || dir === '' ? DEFAULT_FAIL2BAN_DIR : dir;
}

/**
 * The file of a filter reference: a path (absolute, or relative to `baseDir`, ending in `.conf` or
 * `.local`), or a name looked up as `<dir>/filter.d/<name>.conf`.
 */
export function fail2banFilterFile(reference: string, dir: string, baseDir: string = process.cwd()): string {
  if (reference.includes('/') || /\.(conf|local)$/.test(reference)) return resolve(baseDir, reference);
  return resolve(dir, 'filter.d', `${reference}.conf`);
}

/**
 * Reads a fail2ban filter file as fail2ban does (includes, `.local` files, `[Init]`, parameters,
 * `%(x)s` and `<x>` interpolation) and translates it to a portcullis filter definition. `where`
 * prefixes error lines (`portcullis.yaml: jails.sshd.filter`). Throws {@link ConfigError} when the
 * file is missing or unreadable, or (policy `refuse`) a regex cannot be carried over: one line
 * per refused regex, with the file, the regex and the reason.
 */
export function readFail2banFilter(
  file: string,
  options: Fail2banFilterOptions = {},
  where = 'filter',
): Fail2banFilter {
  const { name, config, params, combined } = readCombined(file, options, where);
  const notes: string[] = [];
  const modes = modesOf(config);
  const mode = params.get('mode') ?? config.get('Definition', 'mode') ?? 'normal';
  if (modes.length > 0 && !modes.includes(mode)) {
    throw new ConfigError([
      `${where}: the fail2ban filter ${name} has no mode ${JSON.stringify(mode)} (modes: ${modes.join(', ')})`,
    ]);
  }

  const refused: RefusedRegex[] = [];
  const label = `${file}: `;
  const usedns = combined.get('usedns');
  const meaningNotes = new Set<string>();
  const translate = (option: string, line: string, index: number | undefined): RegexSource | undefined => {
    const at = index === undefined ? option : `${option}.${index}`;
    try {
      return {
        source: translatePythonRegex(line, {
          notes: meaningNotes,
          ...(usedns === undefined ? {} : { usedns }),
        }),
        where: `${label}${at}`,
      };
    } catch (error) {
      if (!(error instanceof UnsupportedRegexError)) throw error;
      refused.push({ where: at, regex: line, reason: error.message });
      return undefined;
    }
  };
  const lines = (option: string): RegexSource[] =>
    (combined.get(option) ?? '')
      .split('\n')
      .filter((line) => line !== '')
      .map((line, index) => translate(option, line, index))
      .filter((regex): regex is RegexSource => regex !== undefined);

  const prefText = combined.get('prefregex');
  const prefregex =
    prefText === undefined || prefText === '' ? undefined : translate('prefregex', prefText, undefined);
  const failregex = lines('failregex');
  const ignoreregex = lines('ignoreregex');
  // A prefregex or an ignoreregex left out changes what every failregex means: never skipped.
  const fatal = refused.filter((r) => !r.where.startsWith('failregex'));
  if (refused.length > 0 && (options.unsupported !== 'skip' || fatal.length > 0 || failregex.length === 0)) {
    throw new ConfigError(
      refused.map(
        (r) => `${where}: ${file}: ${r.where}: cannot run on RE2: ${r.reason}: ${JSON.stringify(r.regex)}`,
      ),
    );
  }
  if (failregex.length === 0 && refused.length === 0)
    throw new ConfigError([
      `${where}: ${file}: failregex: the filter has no failregex (is it a file other filters include?)`,
    ]);
  for (const r of refused) notes.push(`${r.where} left out (${r.reason}): ${JSON.stringify(r.regex)}`);
  notes.push(...meaningNotes);

  const date = translateDatePattern(combined.get('datepattern'));
  if (date.note !== undefined) notes.push(date.note);
  const maxlinesText = combined.get('maxlines');
  let maxlines = 1;
  if (maxlinesText !== undefined && maxlinesText !== '') {
    maxlines = Number(maxlinesText);
    if (!Number.isInteger(maxlines) || maxlines < 1)
      throw new ConfigError([
        `${where}: ${file}: maxlines: expected a whole number, got ${JSON.stringify(maxlinesText)}`,
      ]);
  }
  if (usedns !== undefined && usedns !== '' && usedns !== 'no')
    notes.push(
      `usedns = ${usedns}: host names are not resolved; a line naming a host instead of an address is missed`,
    );
  const journalmatch = journalmatchOf(combined);
  const description = `fail2ban filter ${basename(file)}${modes.length > 0 ? ` (mode ${mode})` : ''}`;
  return {
    file,
    name,
    files: config.files,
    definition: {
      name: `fail2ban:${name}`,
      description,
      mode,
      modes,
      prefregex,
      failregex,
      ignoreregex,
      datepattern:
        date.pattern === undefined ? undefined : { source: date.pattern, where: `${label}datepattern` },
      // fail2ban's maxlines is a buffer of lines matched together; portcullis links lines only
      // through <F-MLFID> sessions, which remember this many lines.
      maxlines: Math.max(maxlines, 10),
      vars: {},
      dateCut: 'exact',
    },
    journalmatch,
    refused,
    notes,
  };
}

/**
 * The filter options with [Init] options and parameters, `<tag>`s substituted: what fail2ban's
 * `DefinitionInitConfigReader.getCombined()` gives.
 */
function combine(config: Fail2banConfig, params: Map<string, string>, logtype: string): Map<string, string> {
  const init = new Map(params);
  if (!init.has('logtype') && !config.sections.get('Definition')?.has('logtype'))
    init.set('logtype', logtype);
  if (config.sections.has('Init')) {
    for (const option of config.options('Init')) {
      if (option === '__name__') continue;
      const value = config.get('Init', option) ?? '';
      if (!option.startsWith('known/')) init.set(`known/${option}`, value);
      if (!init.has(option)) init.set(option, value);
    }
  }
  const vars = new Map([
    ...params,
    ...(params.has('logtype') ? [] : [['logtype', init.get('logtype') ?? logtype] as const]),
  ]);
  const opts = new Map<string, string>();
  for (const option of FILTER_OPTIONS) {
    if (params.has(option)) continue;
    const value = config.get('Definition', option, vars);
    if (value !== undefined) opts.set(option, value);
  }
  for (const [key, value] of init) opts.set(key, value);
  const cache = new Map<string, string | undefined>();
  const lookup = (tag: string): string | undefined => {
    if (cache.has(tag)) return cache.get(tag);
    let value: string | undefined;
    try {
      // `<known/x>`: the value x overrode, interpolated like any other (else x itself).
      value = tag.toLowerCase().startsWith('known/')
        ? config.sections.get('KNOWN/Definition')?.has(tag.slice(6).toLowerCase())
          ? config.get('Definition', `known/${tag.slice(6)}`, vars)
          : config.get('Definition', tag.slice(6), vars)
        : config.get('Definition', tag, vars);
    } catch (error) {
      if (!(error instanceof InterpolationError) || error instanceof ExpansionLimitError) throw error;
      value = undefined;
    }
    cache.set(tag, value);
    return value;
  };
  return substituteTags(opts, lookup);
}

/**
 * The modes a filter offers: for each `<prefix<mode>suffix>` in its [Definition], the names N
 * for which an option `prefixNsuffix` exists (sshd: `<mdre-<mode>>` → normal, ddos, extra, aggressive).
 */
function modesOf(config: Fail2banConfig): string[] {
  const definition = config.sections.get('Definition');
  if (definition === undefined) return [];
  const keys = new Set([...definition.keys(), ...config.defaults.keys()]);
  const modes = new Set<string>();
  for (const value of [...definition.values(), ...config.defaults.values()]) {
    for (const m of value.matchAll(/<([^ <>]*)<mode>([^ <>]*)>/g)) {
      const prefix = m[1] as string;
      const suffix = m[2] as string;
      for (const key of keys) {
        if (key.length > prefix.length + suffix.length && key.startsWith(prefix) && key.endsWith(suffix)) {
          const mode = key.slice(prefix.length, key.length - suffix.length);
          if (/^[a-z0-9]+$/.test(mode)) modes.add(mode);
        }
      }
    }
  }
  return [...modes].sort();
}

/** Splits a journalmatch line into words (`'...'` and `"..."` quote), as Python's shlex. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  let has = false;
  for (const c of line) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || word !== '') words.push(word);
      word = '';
      has = false;
    } else word += c;
  }
  if (has || word !== '') words.push(word);
  return words;
}

/**
 * Only the `journalmatch` of a filter file (parameters and interpolation applied), whether or not
 * its regexes can run: a jail that falls back to another filter still reads only its journal
 * entries. Throws {@link ConfigError} when the file cannot be read.
 */
export function readFail2banJournalmatch(
  file: string,
  options: Fail2banFilterOptions = {},
  where = 'filter',
): string[][] {
  return journalmatchOf(readCombined(file, options, where).combined);
}

function journalmatchOf(combined: ReadonlyMap<string, string>): string[][] {
  return (combined.get('journalmatch') ?? '')
    .split('\n')
    .map((line) => shellWords(line))
    .filter((words) => words.length > 0);
}

/** The file read as fail2ban reads it: [Definition] with [Init], parameters and tags applied. */
function readCombined(
  file: string,
  options: Fail2banFilterOptions,
  where: string,
): { name: string; config: Fail2banConfig; params: Map<string, string>; combined: Map<string, string> } {
  if (!existsSync(file)) {
    throw new ConfigError([`${where}: no fail2ban filter file ${file}`]);
  }
  const name = configName(file);
  const files = configFilesOf(dirname(file), name);
  if (!files.includes(file)) files.unshift(file);
  let config: Fail2banConfig;
  try {
    config = Fail2banConfig.read(files);
  } catch (error) {
    if (error instanceof IniSyntaxError) throw new ConfigError([`${where}: ${error.message}`]);
    throw error;
  }
  if (!config.sections.has('Definition'))
    throw new ConfigError([`${where}: ${file}: has no [Definition] section (is it a fail2ban filter?)`]);
  const params = new Map<string, string>();
  for (const [key, value] of Object.entries(options.params ?? {})) params.set(key.toLowerCase(), value);
  let combined: Map<string, string>;
  try {
    combined = combine(config, params, options.logtype ?? 'file');
  } catch (error) {
    if (error instanceof InterpolationError || error instanceof TagLoopError)
      throw new ConfigError([`${where}: ${file}: ${error.message}`]);
    throw error;
  }
  return { name, config, params, combined };
}
