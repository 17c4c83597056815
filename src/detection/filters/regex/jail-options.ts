import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../../../core/errors.js';
import { isFail2banReference } from '../fail2ban/reference.js';
import { bundledLogFilters, isBundledName } from './filter-definition.js';
import { DEFAULT_MAX_LINE_LENGTH, loadLogFilter } from './log-filter.js';

/** A jail's options as far as log filters are concerned (a subset of the config file's jail shape). */
interface LogJailInput {
  enabled?: boolean | undefined;
  source?: unknown;
  filter?: string | Record<string, unknown> | undefined;
  mode?: string | undefined;
  datepattern?: string | undefined;
  logtimezone?: string | undefined;
  usedns?: 'no' | 'warn' | 'yes' | undefined;
  max_line_length?: number | undefined;
}

/** The resolved log settings of a jail, merged into its `JailConfig`. */
export interface LogJailSettings {
  /** Only for log/command jails: the filter with a relative path made absolute, or the jail's name. */
  filter?: string | Readonly<Record<string, unknown>> | null;
  mode: string | null;
  datePattern: string | null;
  logTimezone: string | null;
  /** DNS names in place of an address: `no`, `warn`, `yes`; `null`: `no`. */
  useDns: 'no' | 'warn' | 'yes' | null;
  /** Lines are cut to this many bytes (characters, for the filter). Default 16384. */
  maxLineLength: number;
}

export interface LogJailResolution {
  settings: LogJailSettings;
  /** Complete error lines (`portcullis.yaml: jails.sshd.filter.failregex.2: ...`); empty when valid. */
  problems: string[];
}

/**
 * Resolves and validates the log side of one jail at config load: a `source: { log }` or
 * `{ command }` jail gets its filter compiled now (every regex by RE2), so a bad pattern stops the
 * start with the jail, the key and RE2's reason. A log jail without `filter` uses the bundled
 * filter of its own name, as fail2ban does. Other jails are left alone.
 */
export function resolveLogJail(
  jailName: string,
  merged: LogJailInput,
  options: { name: string; baseDir: string; rulesDir?: string },
): LogJailResolution {
  const settings: LogJailSettings = {
    mode: merged.mode ?? null,
    datePattern: merged.datepattern ?? null,
    logTimezone: merged.logtimezone ?? null,
    useDns: merged.usedns ?? null,
    maxLineLength: merged.max_line_length ?? DEFAULT_MAX_LINE_LENGTH,
  };
  const out: LogJailResolution = { settings, problems: [] };
  const source = merged.source;
  const isLog = typeof source === 'object' && source !== null && ('log' in source || 'command' in source);
  if (!isLog) return out;
  const jailWhere = `${options.name}: jails.${jailName}`;
  let filter = merged.filter;
  if (filter === undefined) {
    const known = bundledLogFilters(options.rulesDir);
    if (known.includes(jailName)) filter = jailName;
    else {
      if (merged.enabled !== false) {
        out.problems.push(
          `${jailWhere}.filter: a log jail needs a filter: a bundled one (${known.join(', ')}), a file, or an inline definition`,
        );
      }
      return out;
    }
  }
  if (
    typeof filter === 'string' &&
    !isBundledName(filter) &&
    !isAbsolute(filter) &&
    !isFail2banReference(filter)
  ) {
    filter = resolve(options.baseDir, filter);
  }
  settings.filter = filter;
  try {
    loadLogFilter(
      filter,
      {
        ...(merged.mode === undefined ? {} : { mode: merged.mode }),
        ...(merged.datepattern === undefined ? {} : { datepattern: merged.datepattern }),
        ...(merged.logtimezone === undefined ? {} : { logtimezone: merged.logtimezone }),
        ...(merged.usedns === undefined ? {} : { usedns: merged.usedns }),
        maxLineLength: settings.maxLineLength,
        baseDir: options.baseDir,
        where: `${jailWhere}.filter`,
        optionsWhere: jailWhere,
      },
      options.rulesDir,
    );
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) {
      // Problems in a filter file name the file; say which jail uses it.
      out.problems.push(
        problem.startsWith(`${options.name}: `) ? problem : `${jailWhere}.filter: ${problem}`,
      );
    }
  }
  return out;
}
