import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import * as z from 'zod';
import { DURATION_PATTERN } from '../../core/duration.js';
import type { FieldFilterSpec } from '../../detection/filters/fields/filter-schema.js';
import { validateFieldFilter } from '../../detection/filters/fields/filter-schema.js';
import { SOCKET_FIELDS } from '../../detection/filters/fields/socket-fields.js';

/** The bundled socket rules: `rules/socket/<name>.yaml` at the package root. */
export const BUNDLED_SOCKET_RULES_DIR = fileURLToPath(new URL('../../../rules/socket/', import.meta.url));

const durationRe = new RegExp(DURATION_PATTERN);

/**
 * A TCP guard rule file: a filter over connection events (`SOCKET_FIELDS`) and the jail settings
 * it was written for, the same shape as `rules/http/*.yaml`. `source: tcp` says which kind of
 * socket jail it is for (the packet watcher's rules share the folder and say `packets`).
 */
const tcpRuleSchema = z.strictObject({
  description: z.string(),
  source: z.enum(['tcp', 'packets']).optional(),
  filter: z.unknown(),
  jail: z
    .strictObject({
      maxretry: z.number().int().min(1).optional(),
      findtime: z.string().regex(durationRe).optional(),
      bantime: z.string().regex(durationRe).optional(),
    })
    .optional(),
});

export interface TcpRule {
  /** The bundled name, or the file's path. */
  name: string;
  file: string;
  description: string;
  filter: FieldFilterSpec;
  jail: { maxretry?: number; findtime?: string; bantime?: string };
}

/** Thrown by {@link loadTcpRule}; `message` is ready to follow `file: jails.x.filter: `. */
export class TcpRuleError extends Error {
  override readonly name = 'TcpRuleError';
}

const RULE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * Reads a TCP guard rule: a bundled name (`conn-flood` → `rules/socket/conn-flood.yaml`) or a path
 * to a YAML file (relative to `baseDir`). Its filter is validated against the socket fields, every
 * regex compiled by RE2. Throws {@link TcpRuleError}.
 */
export function loadTcpRule(reference: string, baseDir: string = process.cwd()): TcpRule {
  const bundled = RULE_NAME.test(reference);
  const file = bundled
    ? resolve(BUNDLED_SOCKET_RULES_DIR, `${reference}.yaml`)
    : isAbsolute(reference)
      ? reference
      : resolve(baseDir, reference);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    if (bundled) {
      throw new TcpRuleError(
        `no bundled TCP guard rule named ${JSON.stringify(reference)} (known: ${bundledTcpRules().join(', ')})`,
      );
    }
    throw new TcpRuleError(`cannot read the rule file ${file}`);
  }
  let raw: unknown;
  try {
    raw = parse(text, { uniqueKeys: true });
  } catch (error) {
    throw new TcpRuleError(`${file}: invalid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const result = tcpRuleSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new TcpRuleError(`${file}: ${issue?.path.join('.') || '(top level)'}: ${issue?.message}`);
  }
  if (result.data.source === 'packets') {
    throw new TcpRuleError(
      `rule ${JSON.stringify(reference)} is a packet watcher rule: use it on a jail with source: { packets: NAME }`,
    );
  }
  const filter = validateFieldFilter(SOCKET_FIELDS, result.data.filter);
  if (filter.spec === null) {
    const first = filter.problems[0];
    throw new TcpRuleError(
      `rule ${JSON.stringify(reference)}: filter.${first?.path.join('.') ?? ''}: ${first?.message}`,
    );
  }
  return {
    name: bundled ? reference : file,
    file,
    description: result.data.description,
    filter: filter.spec,
    jail: result.data.jail ?? {},
  };
}

/** Names of the bundled TCP guard rules (the packet watcher's, which socket fields do not fit, left out). */
export function bundledTcpRules(): string[] {
  let files: string[];
  try {
    files = readdirSync(BUNDLED_SOCKET_RULES_DIR).filter((file) => file.endsWith('.yaml'));
  } catch {
    return [];
  }
  return files
    .filter((file) => {
      try {
        const raw = parse(readFileSync(resolve(BUNDLED_SOCKET_RULES_DIR, file), 'utf8')) as {
          source?: unknown;
          filter?: unknown;
        };
        if (raw?.source === 'tcp') return true;
        return raw?.source === undefined && validateFieldFilter(SOCKET_FIELDS, raw.filter).spec !== null;
      } catch {
        return false;
      }
    })
    .map((file) => file.slice(0, -5))
    .sort();
}
