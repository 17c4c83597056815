import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import * as z from 'zod';
import { DURATION_PATTERN } from '../../../core/duration.js';
import { type HttpFilterSpec, httpFilterSchema } from './filter-schema.js';
import { RATE_PATTERN } from './rate.js';

/** The bundled HTTP rules: `rules/http/<name>.yaml` at the package root. */
export const BUNDLED_HTTP_RULES_DIR = fileURLToPath(new URL('../../../../rules/http/', import.meta.url));

const durationRe = new RegExp(DURATION_PATTERN);

/**
 * A rule file: a filter and the jail settings it was written for. A jail naming the rule gets
 * these settings unless it sets them itself; they take precedence over `defaults`.
 */
export const httpRuleSchema = z.strictObject({
  description: z.string().describe('What the rule catches, one or two sentences.'),
  filter: httpFilterSchema.optional(),
  jail: z
    .strictObject({
      maxretry: z.number().int().min(1).optional(),
      findtime: z.string().regex(durationRe).optional(),
      bantime: z.string().regex(durationRe).optional(),
      rate: z.string().regex(new RegExp(RATE_PATTERN)).optional(),
    })
    .optional(),
});

export interface HttpRule {
  name: string;
  /** The file it came from. */
  file: string;
  description: string;
  filter: HttpFilterSpec | undefined;
  jail: { maxretry?: number; findtime?: string; bantime?: string; rate?: string };
}

/** Thrown by {@link loadHttpRule}; `message` is ready to follow `file: key.path: `. */
export class HttpRuleError extends Error {
  override readonly name = 'HttpRuleError';
}

const RULE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * Reads a rule: a bundled name (`scanners` → `rules/http/scanners.yaml`) or a path to a YAML file
 * (relative to `baseDir`, the config file's directory). Throws {@link HttpRuleError}.
 */
export function loadHttpRule(reference: string, baseDir: string = process.cwd()): HttpRule {
  const bundled = RULE_NAME.test(reference);
  const file = bundled
    ? resolve(BUNDLED_HTTP_RULES_DIR, `${reference}.yaml`)
    : isAbsolute(reference)
      ? reference
      : resolve(baseDir, reference);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    if (bundled) {
      throw new HttpRuleError(
        `no bundled HTTP rule named ${JSON.stringify(reference)} (known: ${bundledHttpRules().join(', ')})`,
      );
    }
    throw new HttpRuleError(`cannot read the HTTP rule file ${file}`);
  }
  let raw: unknown;
  try {
    raw = parse(text, { uniqueKeys: true });
  } catch (error) {
    throw new HttpRuleError(`${file}: invalid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const result = httpRuleSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new HttpRuleError(`${file}: ${issue?.path.join('.') || '(top level)'}: ${issue?.message}`);
  }
  const name = bundled ? reference : file;
  return {
    name,
    file,
    description: result.data.description,
    filter: result.data.filter as HttpFilterSpec | undefined,
    jail: result.data.jail ?? {},
  };
}

/** Names of the bundled HTTP rules. */
export function bundledHttpRules(): string[] {
  try {
    return readdirSync(BUNDLED_HTTP_RULES_DIR)
      .filter((file) => file.endsWith('.yaml'))
      .map((file) => file.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}
