import type * as Z from 'zod';
import { ConfigError } from '../../../core/errors.js';
import { lazyRequire } from '../../../core/lazy-require.js';
import type { Fail2banDefinition } from './definition.js';
import {
  type Fail2banFilter,
  type Fail2banFilterOptions,
  fail2banDir,
  fail2banFilterFile,
  readFail2banFilter,
  readFail2banJournalmatch,
} from './filter-file.js';
import {
  type Fail2banFilterSpec,
  fail2banFilterSchemaOf,
  quickFail2banFilterSpec,
} from './reference-schema.js';

export type { Fail2banFilterSpec } from './reference-schema.js';

// zod only to name what is wrong with a reference the quick check does not accept.
const zod = lazyRequire<typeof Z>('zod');
let schema: ReturnType<typeof fail2banFilterSchemaOf> | undefined;

function checkReference(spec: unknown) {
  const quick = quickFail2banFilterSpec(spec);
  if (quick !== undefined) return { success: true as const, data: quick };
  schema ??= fail2banFilterSchemaOf(zod());
  return schema.safeParse(spec);
}

const PREFIX = 'fail2ban:';

/** True for `fail2ban:NAME` and `{ fail2ban: ... }`. */
export function isFail2banReference(spec: unknown): boolean {
  if (typeof spec === 'string') return spec.startsWith(PREFIX);
  return typeof spec === 'object' && spec !== null && !Array.isArray(spec) && 'fail2ban' in spec;
}

/** `sshd[mode=aggressive, x="a,b"]` → name and parameters (fail2ban's option syntax). */
export function parseFilterOption(text: string): { name: string; params: Record<string, string> } {
  const open = text.indexOf('[');
  if (open === -1) return { name: text.trim(), params: {} };
  if (!text.trimEnd().endsWith(']'))
    throw new Error(`expected name[key=value, ...], got ${JSON.stringify(text)}`);
  const name = text.slice(0, open).trim();
  const body = text.trim().slice(open + 1, -1);
  const params: Record<string, string> = {};
  const option = /\s*([\w.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^,\]]*))\s*(?:,|\]\s*\[|$)/y;
  let at = 0;
  while (at < body.length) {
    if (/^[\s,]*$/.test(body.slice(at))) break;
    option.lastIndex = at;
    const m = option.exec(body);
    if (m === null) throw new Error(`expected key=value at ${JSON.stringify(body.slice(at, at + 25))}`);
    params[m[1] as string] = (m[2] ?? m[3] ?? m[4] ?? '').trim();
    at = option.lastIndex;
  }
  return { name, params };
}

/** `fail2ban:sshd[mode=ddos]` in the object form. Throws {@link ConfigError} for bad syntax. */
export function fail2banSpecOf(spec: string, where = 'filter'): Fail2banFilterSpec {
  let option: { name: string; params: Record<string, string> };
  try {
    option = parseFilterOption(spec.startsWith(PREFIX) ? spec.slice(PREFIX.length) : spec);
  } catch (error) {
    throw new ConfigError([`${where}: ${(error as Error).message}`]);
  }
  if (option.name === '')
    throw new ConfigError([`${where}: expected fail2ban:NAME, got ${JSON.stringify(spec)}`]);
  const { mode, ...params } = option.params;
  return { fail2ban: option.name, params, ...(mode === undefined ? {} : { mode }) };
}

export interface Fail2banResolveOptions {
  /** The jail's `mode`, which wins over the reference's. */
  mode?: string | undefined;
  baseDir?: string;
  /** What error lines start with (`portcullis.yaml: jails.sshd.filter`). */
  where?: string;
  env?: NodeJS.ProcessEnv;
}

/** Reads the filter a reference names. Throws {@link ConfigError} with `where` and the problem. */
export function loadFail2banReference(spec: unknown, options: Fail2banResolveOptions = {}): Fail2banFilter {
  const { file, read, where } = resolveReference(spec, options);
  return readFail2banFilter(file, read, where);
}

/**
 * The `journalmatch` of the filter a reference names (each line as journalctl arguments), read
 * even when its regexes cannot run. Throws {@link ConfigError} when the file cannot be read.
 */
export function loadFail2banJournalmatch(spec: unknown, options: Fail2banResolveOptions = {}): string[][] {
  const { file, read, where } = resolveReference(spec, options);
  return readFail2banJournalmatch(file, read, where);
}

function resolveReference(
  spec: unknown,
  options: Fail2banResolveOptions,
): { file: string; read: Fail2banFilterOptions; where: string } {
  const where = options.where ?? 'filter';
  let parsed: Fail2banFilterSpec;
  if (typeof spec === 'string') {
    parsed = fail2banSpecOf(spec, where);
  } else {
    const result = checkReference(spec);
    if (!result.success) {
      throw new ConfigError(
        result.error.issues.map((issue) => {
          const path = issue.path.map(String).join('.');
          return path === '' ? `${where}: ${issue.message}` : `${where}.${path}: ${issue.message}`;
        }),
      );
    }
    parsed = result.data;
  }
  const dir = parsed.fail2ban_dir ?? fail2banDir(options.env);
  const file = fail2banFilterFile(parsed.fail2ban, dir, options.baseDir);
  const mode = options.mode ?? parsed.mode;
  const params = { ...parsed.params, ...(mode === undefined ? {} : { mode }) };
  const read: Fail2banFilterOptions = {
    params,
    ...(parsed.logtype === undefined ? {} : { logtype: parsed.logtype }),
    ...(parsed.unsupported === undefined ? {} : { unsupported: parsed.unsupported }),
  };
  return { file, read, where };
}

/** The definition the regex filter compiler works from. */
export function resolveFail2banDefinition(
  spec: unknown,
  options: Fail2banResolveOptions = {},
): Fail2banDefinition {
  return loadFail2banReference(spec, options).definition;
}
