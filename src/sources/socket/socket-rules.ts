import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import * as z from 'zod';
import { DURATION_PATTERN } from '../../core/duration.js';
import type { FieldCatalogue } from '../../detection/filters/fields/catalogue.js';
import type { FieldFilterSpec } from '../../detection/filters/fields/filter-schema.js';
import { validateFieldFilter } from '../../detection/filters/fields/filter-schema.js';

/**
 * The bundled socket rules, `rules/socket/<name>.yaml`: one folder for the TCP guard's rules
 * (`source: tcp`, a filter over connection events) and the packet watcher's (`source: packets`).
 * One loader for both kinds; each kind says which fields its filter is checked against.
 */
export const BUNDLED_SOCKET_RULES_DIR = fileURLToPath(new URL('../../../rules/socket/', import.meta.url));

const durationRe = new RegExp(DURATION_PATTERN);

const socketRuleSchema = z.strictObject({
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

export interface SocketRule {
  /** The bundled name, or the file's path. */
  name: string;
  file: string;
  description: string;
  filter: FieldFilterSpec;
  jail: { maxretry?: number; findtime?: string; bantime?: string };
}

/** Thrown by {@link loadSocketRule}; `message` is ready to follow `file: jails.x.filter: `. */
export class SocketRuleError extends Error {
  override readonly name = 'SocketRuleError';
}

/** What tells the two kinds of socket rule apart. */
export interface SocketRuleKind {
  source: 'tcp' | 'packets';
  /** For messages: `TCP guard rule`, `packet rule`. */
  label: string;
  // biome-ignore lint/suspicious/noExplicitAny: any event type's catalogue
  fields: FieldCatalogue<any>;
  /** Whether a bundled file without `source:` belongs to this kind. */
  unmarked: 'by-fields' | 'never';
  /** The message for a rule of the other kind, by reference. */
  misfiled: (reference: string) => string;
}

const RULE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * Reads a socket rule: a bundled name (`conn-flood` → `rules/socket/conn-flood.yaml`) or a path to
 * a YAML file (relative to `baseDir`). Its filter is validated against the kind's fields, every
 * regex compiled by RE2. Throws {@link SocketRuleError}.
 */
export function loadSocketRule(kind: SocketRuleKind, reference: string, baseDir: string): SocketRule {
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
      throw new SocketRuleError(
        `no bundled ${kind.label} named ${JSON.stringify(reference)} (known: ${bundledSocketRules(kind).join(', ')})`,
      );
    }
    throw new SocketRuleError(`cannot read the rule file ${file}`);
  }
  let raw: unknown;
  try {
    raw = parse(text, { uniqueKeys: true });
  } catch (error) {
    throw new SocketRuleError(`${file}: invalid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const result = socketRuleSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new SocketRuleError(`${file}: ${issue?.path.join('.') || '(top level)'}: ${issue?.message}`);
  }
  const source = result.data.source;
  if (source !== undefined ? source !== kind.source : bundled && kind.unmarked === 'never') {
    throw new SocketRuleError(kind.misfiled(reference));
  }
  const filter = validateFieldFilter(kind.fields, result.data.filter);
  if (filter.spec === null) {
    const first = filter.problems[0];
    throw new SocketRuleError(
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

/** Names of the bundled rules of `kind`. */
export function bundledSocketRules(kind: SocketRuleKind): string[] {
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
        if (raw?.source !== undefined) return raw.source === kind.source;
        return kind.unmarked === 'by-fields' && validateFieldFilter(kind.fields, raw.filter).spec !== null;
      } catch {
        return false;
      }
    })
    .map((file) => file.slice(0, -5))
    .sort();
}
