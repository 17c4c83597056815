import type * as z from 'zod';
import { compileHttpFilter } from './compile.js';
import { filterProblems, type HttpFilterSpec, httpFilterSchema } from './filter-schema.js';
import { parseRate, type RateSpec } from './rate.js';
import { HttpRuleError, loadHttpRule } from './rules.js';

/** A jail's options as far as HTTP is concerned (a subset of the config file's jail shape). */
interface HttpJailInput {
  source?: unknown;
  filter?: string | Record<string, unknown> | undefined;
  rate?: string | undefined;
}

export interface HttpJailResolution {
  /**
   * The named rule's recommended settings (`maxretry`, `findtime`, `bantime`, `rate`): they apply
   * below the jail's own settings and above `defaults`.
   */
  ruleSettings: Record<string, unknown>;
  /** The validated filter (inline or from the rule); `null` for none. */
  httpFilter: HttpFilterSpec | null;
  rate: RateSpec | null;
  /** Complete error lines (`file: jails.x.filter.path: ...`); empty when valid. */
  problems: string[];
}

export interface ResolveHttpJailOptions {
  /** What errors call the config (`portcullis.yaml`). */
  name: string;
  /** Rule files given as relative paths resolve against this. */
  baseDir: string;
  /** Formats a zod issue whose path is already the full key path (load.ts's `formatIssue`). */
  formatIssue: (issue: z.core.$ZodIssue) => string;
}

/**
 * Resolves and validates the HTTP side of one jail at config load: loads a named rule, validates
 * the filter (every regex compiled by RE2), parses `rate`, and checks that a rate jail's filter
 * uses request fields only. Non-http jails only get their misplaced `rate` reported.
 */
export function resolveHttpJail(
  jailName: string,
  own: HttpJailInput,
  defaults: HttpJailInput,
  options: ResolveHttpJailOptions,
): HttpJailResolution {
  const out: HttpJailResolution = { ruleSettings: {}, httpFilter: null, rate: null, problems: [] };
  const at = (path: (string | number)[]) => ['jails', jailName, ...path].join('.');
  const source = own.source ?? defaults.source;
  if (source !== 'http') {
    if (own.rate !== undefined) {
      out.problems.push(
        `${options.name}: ${at(['rate'])}: only http jails (source: http) have a request rate`,
      );
    }
    return out;
  }
  const filter = own.filter ?? defaults.filter;
  let spec: unknown;
  let fromRule = false;
  if (typeof filter === 'string') {
    try {
      const rule = loadHttpRule(filter, options.baseDir);
      spec = rule.filter;
      fromRule = true;
      out.ruleSettings = { ...rule.jail };
    } catch (error) {
      if (!(error instanceof HttpRuleError)) throw error;
      out.problems.push(`${options.name}: ${at(['filter'])}: ${error.message}`);
      return out;
    }
  } else {
    spec = filter;
  }
  const rateText = own.rate ?? (out.ruleSettings.rate as string | undefined);
  if (rateText !== undefined) {
    out.rate = parseRate(rateText);
    if (out.rate === null) {
      out.problems.push(
        `${options.name}: ${at(['rate'])}: expected a rate like "100/10s", got ${JSON.stringify(rateText)}`,
      );
    }
  }
  if (spec === undefined || spec === null) return out;
  const result = httpFilterSchema.safeParse(spec, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) {
      out.problems.push(
        fromRule
          ? `${options.name}: ${at(['filter'])}: rule ${JSON.stringify(filter)}: ${issue.path.join('.')}: ${issue.message}`
          : options.formatIssue({ ...issue, path: ['jails', jailName, 'filter', ...issue.path] }),
      );
    }
    return out;
  }
  const valid = result.data as HttpFilterSpec;
  for (const [path, message] of filterProblems(valid, rateText !== undefined)) {
    out.problems.push(`${options.name}: ${at(['filter', ...path])}: ${message}`);
  }
  out.httpFilter = valid;
  // Compiles the filter as the jail will run it (path patterns folded to case-insensitive): the
  // jail built from this config then finds every RE2 program compiled.
  if (out.problems.length === 0) compileHttpFilter(valid);
  return out;
}
