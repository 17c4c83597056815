import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { type IniFile, parseIni } from './ini.js';

/**
 * A set of fail2ban configuration files merged as fail2ban merges them, and read with its
 * interpolation.
 *
 * Files: each file's `[INCLUDES]` `before` files come first and its `after` files last (paths
 * relative to the including file's directory, one per line, each followed by its `.local` twin when
 * one exists; loops are cut). Later files override earlier ones key by key; a key a later file
 * overrides stays reachable as `%(known/key)s`.
 *
 * Values: `%(name)s` is replaced by the option `name` of the same section (or `[DEFAULT]`, or the
 * caller's `vars`), recursively, up to 10 levels; `%(section/name)s` reads another section,
 * `%(known/name)s` the value before the last override, `%(default/name)s` the `[DEFAULT]` one;
 * `%%` is a `%`. This is configparser's BasicInterpolation with fail2ban's extensions.
 */
export class Fail2banConfig {
  readonly defaults = new Map<string, string>();
  readonly sections = new Map<string, Map<string, string>>();
  /** Every file read, in merge order. */
  readonly files: string[] = [];

  /** Reads `paths` (each with its includes and `.local`). Unreadable files are skipped (as fail2ban does). */
  static read(paths: readonly string[]): Fail2banConfig {
    const config = new Fail2banConfig();
    const ordered: string[] = [];
    for (const path of withLocal(paths)) ordered.push(...includesOf(path, []));
    for (const path of ordered) {
      const file = readIni(path);
      if (file === undefined) continue;
      config.files.push(path);
      config.#merge(file);
    }
    return config;
  }

  #merge(file: IniFile): void {
    for (const [key, value] of file.defaults) this.defaults.set(key, value);
    for (const [name, options] of file.sections) {
      // `[Init?family=inet6]`-style conditional sections belong to actions; filters have none.
      if (name.includes('?')) continue;
      const existing = this.sections.get(name);
      if (existing === undefined) {
        this.sections.set(name, new Map(options));
        continue;
      }
      const known = this.sections.get(`KNOWN/${name}`) ?? new Map<string, string>();
      for (const [key, value] of options) {
        const before = existing.get(key);
        if (before !== undefined) known.set(key, before);
        // `%(known/key)s` and `<known/key>` are the value this one overrides, which may itself
        // say `%(known/key)s` (filter.d/x.local, then x.d/y.local): resolved here, one link of
        // the chain per override, so no value refers to itself.
        existing.set(key, before === undefined ? value : withKnown(value, key, before));
      }
      this.sections.set(`KNOWN/${name}`, known);
    }
  }

  has(section: string, option: string): boolean {
    return this.sections.get(section)?.has(option) === true || this.defaults.has(option);
  }

  /** Option names of a section (without `[DEFAULT]`'s). */
  options(section: string): string[] {
    return [...(this.sections.get(section)?.keys() ?? [])];
  }

  /** The raw value: `vars`, then the section, then `[DEFAULT]`. */
  raw(section: string, option: string, vars: ReadonlyMap<string, string> = EMPTY): string | undefined {
    const key = option.toLowerCase();
    return vars.get(key) ?? this.sections.get(section)?.get(key) ?? this.defaults.get(key);
  }

  /**
   * The interpolated value of `option` in `section`, or `undefined` when it is not set. An option
   * name with a `/` (`lt_file/datepattern`, `known/failregex`) reads that section. Throws
   * {@link InterpolationError} for a missing reference, a loop, or a stray `%`.
   */
  get(section: string, option: string, vars: ReadonlyMap<string, string> = EMPTY): string | undefined {
    const value = this.#lookup(section, optionKey(option), vars);
    if (value === undefined) return undefined;
    return this.#interpolate(section, option, value, vars, 1);
  }

  #lookup(section: string, option: string, vars: ReadonlyMap<string, string>): string | undefined {
    const slash = option.indexOf('/');
    if (slash > 0) {
      const other = option.slice(0, slash);
      const name = option.slice(slash + 1);
      const lower = other.toLowerCase();
      if (lower === 'known') {
        return this.sections.get(`KNOWN/${section}`)?.get(name) ?? this.defaults.get(name);
      }
      if (lower === 'default') return this.defaults.get(name);
      const target = this.sections.get(other);
      if (target === undefined) return undefined;
      // fail2ban falls back to the DEFAULT value of the name.
      return target.get(name) ?? this.defaults.get(name);
    }
    if (option === '__name__') return section;
    return this.raw(section, option, vars);
  }

  #interpolate(
    section: string,
    option: string,
    value: string,
    vars: ReadonlyMap<string, string>,
    depth: number,
  ): string {
    if (depth > MAX_DEPTH)
      throw new InterpolationError(
        `${section}/${option}: %(...)s references nest more than ${MAX_DEPTH} deep`,
      );
    if (!value.includes('%')) return value;
    let out = '';
    let i = 0;
    while (i < value.length) {
      const at = value.indexOf('%', i);
      if (at === -1) {
        out += value.slice(i);
        break;
      }
      out += value.slice(i, at);
      const next = value[at + 1];
      if (next === '%') {
        out += '%';
        i = at + 2;
        continue;
      }
      const ref = /^%\(([^)]+)\)s/.exec(value.slice(at));
      if (next !== '(' || ref === null)
        throw new InterpolationError(
          `${section}/${option}: "%" must be followed by "%" or "(name)s", found ${JSON.stringify(value.slice(at, at + 12))}`,
        );
      const name = optionKey(ref[1] as string);
      const target = this.#lookup(section, name, vars);
      if (target === undefined)
        throw new InterpolationError(
          `${section}/${option}: %(${ref[1]})s refers to an option that is not set`,
        );
      out += this.#interpolate(section, name, target, vars, depth + 1);
      if (out.length > MAX_EXPANDED)
        throw new ExpansionLimitError(
          `${section}/${option}: %(...)s references expand to more than ${MAX_EXPANDED / 1024} KiB (values that repeat each other grow exponentially)`,
        );
      i = at + ref[0].length;
    }
    return out;
  }
}

/** Thrown when a value cannot be interpolated. */
export class InterpolationError extends Error {}

/** A value whose interpolation grows past {@link MAX_EXPANDED} characters: never a usable filter. */
export class ExpansionLimitError extends InterpolationError {}

/** The longest value `%(x)s` and `<x>` interpolation may build: 64 KiB. */
export const MAX_EXPANDED = 64 * 1024;

const EMPTY: ReadonlyMap<string, string> = new Map();

/** Option names are lower-cased; in `section/name` only the name is. */
function optionKey(option: string): string {
  const slash = option.indexOf('/');
  return slash === -1
    ? option.toLowerCase()
    : `${option.slice(0, slash)}/${option.slice(slash + 1).toLowerCase()}`;
}
const MAX_DEPTH = 10;

function readIni(path: string): IniFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseIni(text, path);
}

/** `x.conf` followed by `x.local` when that exists (and is not listed already). */
function withLocal(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const path of paths) {
    out.push(path);
    const local = `${path.replace(/\.[^./]*$/, '')}.local`;
    if (local !== path && !paths.includes(local) && isFile(local)) out.push(local);
  }
  return out;
}

/** The file with its includes, depth first: before..., the file, after.... */
function includesOf(path: string, seen: readonly string[]): string[] {
  const file = readIni(path);
  if (file === undefined) return [];
  const includes = file.sections.get('INCLUDES');
  const dir = dirname(path);
  const expand = (option: 'before' | 'after'): string[] => {
    const value = includes?.get(option);
    if (value === undefined) return [];
    const out: string[] = [];
    for (const line of value.split('\n')) {
      const name = line.trim();
      if (name === '') continue;
      const target = isAbsolute(name) ? name : join(dir, name);
      if (seen.includes(target)) continue;
      for (const each of withLocal([target])) out.push(...includesOf(each, [...seen, path]));
    }
    return out;
  };
  return [...expand('before'), path, ...expand('after')];
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * fail2ban's file list for a name under a directory: `name.conf`, `name.d/*.conf`, `name.local`,
 * `name.d/*.local` (sorted), the ones that exist.
 */
export function configFilesOf(dir: string, name: string): string[] {
  const base = join(dir, name);
  const sub = `${base}.d`;
  const listed = (ext: string): string[] => {
    try {
      return readdirSync(sub)
        .filter((file) => file.endsWith(ext))
        .sort()
        .map((file) => join(sub, file));
    } catch {
      return [];
    }
  };
  return [`${base}.conf`, ...listed('.conf'), `${base}.local`, ...listed('.local')].filter((file) =>
    existsSync(file),
  );
}

/** `sshd` from `/etc/fail2ban/filter.d/sshd.conf`. */
export function configName(path: string): string {
  return basename(path).replace(/\.(conf|local)$/, '');
}

/** `value` with its references to the overridden value of `key` replaced by `before`. */
function withKnown(value: string, key: string, before: string): string {
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return value.replace(new RegExp(`%\\(known/${escaped}\\)s|<known/${escaped}>`, 'gi'), () => before);
}
