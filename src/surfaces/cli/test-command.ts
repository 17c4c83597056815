import { createReadStream, existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ConfigError, ErrorCodes, PortcullisError } from '../../core/errors.js';
import {
  fail2banSpecOf,
  isFail2banReference,
  loadFail2banReference,
} from '../../detection/filters/fail2ban/reference.js';
import { isBundledName } from '../../detection/filters/regex/filter-definition.js';
import {
  type CompiledLogFilter,
  DEFAULT_MAX_LINE_LENGTH,
  type LogFilterOptions,
  loadLogFilter,
} from '../../detection/filters/regex/log-filter.js';
import { LineSplitter } from '../../sources/log/line-splitter.js';
import { formatReport, LogTestCollector, type LogTestReport } from './log-test-report.js';

/**
 * `portcullis test LOG FILTER`: runs a log through a filter and says what it found, like
 * fail2ban-regex. LOG is a path or `-` (stdin), read as a stream: memory stays bounded whatever
 * its size. FILTER is a bundled filter name, a YAML filter file, or a single failregex.
 */

interface TestCommandOptions {
  mode?: string;
  datepattern?: string;
  logtimezone?: string;
  maxLineLength: string;
  printMatched?: boolean;
  printMissed?: boolean;
  printIgnored?: boolean;
  json?: boolean;
  progress?: boolean;
  skipUnsupported?: boolean;
}

/** Files at least this big get a progress bar (when stderr is a terminal). */
const PROGRESS_MIN_BYTES = 32 * 1024 * 1024;
const READ_CHUNK_BYTES = 1024 * 1024;

export function registerTestCommand(program: Command): void {
  program
    .command('test')
    .description('run a log through a filter and report what matched, like fail2ban-regex')
    .argument('<log>', 'log file, or - for standard input')
    .argument('<filter>', 'bundled filter name (sshd), a filter YAML file, or one failregex')
    .option('-m, --mode <mode>', 'filter mode, e.g. aggressive')
    .option(
      '-d, --datepattern <pattern>',
      'strftime-style date pattern instead of detection, e.g. "%Y-%m-%d %H:%M:%S"',
    )
    .option(
      '-z, --logtimezone <zone>',
      'zone of times written without one: UTC, +0100, Europe/Berlin (default: local)',
    )
    .option('--max-line-length <bytes>', 'cut longer lines before matching', String(DEFAULT_MAX_LINE_LENGTH))
    .option('--print-matched', 'list the lines that produced failures')
    .option('--print-missed', 'list the lines that matched nothing')
    .option('--print-ignored', 'list the lines an ignoreregex dropped')
    .option('--json', 'print the report as JSON')
    .option('--no-progress', 'no progress bar, even on a terminal')
    .option(
      '--skip-unsupported',
      'fail2ban:NAME filters: leave out failregexes RE2 cannot run (listed on stderr) instead of refusing',
    )
    .action(async (log: string, filterArg: string, options: TestCommandOptions) => {
      const maxLineLength = Number(options.maxLineLength);
      if (!Number.isSafeInteger(maxLineLength) || maxLineLength < 1) {
        throw new ConfigError([
          `--max-line-length: expected a whole number of bytes, got ${JSON.stringify(options.maxLineLength)}`,
        ]);
      }
      // fail2ban:NAME[params]: fail2ban's own filter file, read in place.
      const spec = isFail2banReference(filterArg)
        ? {
            ...fail2banSpecOf(filterArg),
            ...(options.skipUnsupported === true ? { unsupported: 'skip' } : {}),
          }
        : filterArg;
      const filter = loadTestFilter(spec, {
        ...(options.mode === undefined ? {} : { mode: options.mode }),
        ...(options.datepattern === undefined ? {} : { datepattern: options.datepattern }),
        ...(options.logtimezone === undefined ? {} : { logtimezone: options.logtimezone }),
        maxLineLength,
      });
      const report = await runLogTest(log, filter, {
        maxLineLength,
        printMatched: options.printMatched === true,
        printMissed: options.printMissed === true,
        printIgnored: options.printIgnored === true,
        progress: options.progress !== false && process.stderr.isTTY === true,
      });
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

/**
 * A bundled name or an existing file is a filter; anything else is taken as one failregex (as
 * fail2ban-regex does), so `portcullis test auth.log '^Failed .* from <HOST>'` works.
 */
function loadTestFilter(
  argument: string | Record<string, unknown>,
  options: LogFilterOptions,
): CompiledLogFilter {
  const errorOptions = { ...options, where: 'filter', optionsWhere: '-' };
  try {
    if (typeof argument !== 'string') {
      // Say on stderr what a fail2ban filter carries over differently (or leaves out).
      const read = loadFail2banReference(argument, { mode: options.mode, where: 'filter' });
      for (const note of read.notes) process.stderr.write(`note: ${read.file}: ${note}\n`);
      return loadLogFilter(argument, errorOptions);
    }
    if (isBundledName(argument) || existsSync(argument)) return loadLogFilter(argument, errorOptions);
    return loadLogFilter({ failregex: [argument] }, errorOptions);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Option problems read "-.mode: ..." here: show them as command-line options.
    throw new ConfigError(error.problems.map((p) => p.replace(/^-\.(\w+):/, '--$1:')));
  }
}

export interface RunLogTestOptions {
  maxLineLength?: number;
  printMatched?: boolean;
  printMissed?: boolean;
  printIgnored?: boolean;
  /** Draw a progress bar on stderr (only for files of 32 MiB or more). */
  progress?: boolean;
}

/** Streams `log` (a path or `-`) through `filter` and returns the report. */
export async function runLogTest(
  log: string,
  filter: CompiledLogFilter,
  options: RunLogTestOptions = {},
): Promise<LogTestReport> {
  const collector = new LogTestCollector(filter, options);
  const splitter = new LineSplitter(options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH);
  let input: Readable;
  let size = 0;
  let name: string;
  if (log === '-') {
    input = process.stdin;
    name = '(standard input)';
  } else {
    name = resolve(log);
    try {
      size = statSync(name).size;
    } catch (error) {
      throw new PortcullisError(
        ErrorCodes.CONFIG_NOT_FOUND,
        `${log}: cannot read the log: ${(error as Error).message}`,
      );
    }
    input = createReadStream(name, { highWaterMark: READ_CHUNK_BYTES });
  }
  const progress =
    options.progress === true && size >= PROGRESS_MIN_BYTES ? new ProgressBar(size) : undefined;
  const started = performance.now();
  let bytes = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    for (const line of splitter.push(chunk)) collector.add(line, filter.processLine(line));
    progress?.update(bytes);
  }
  const last = splitter.flush();
  if (last !== undefined) collector.add(last, filter.processLine(last));
  const elapsedMs = performance.now() - started;
  progress?.done();
  collector.truncated = splitter.truncatedLines;
  return collector.report(name, elapsedMs);
}

/** `[#####.....]  45%  1.2/2.6 GB` on stderr, redrawn at most five times a second. */
class ProgressBar {
  readonly #total: number;
  #drawnAt = 0;

  constructor(total: number) {
    this.#total = total;
  }

  update(bytes: number): void {
    const now = Date.now();
    if (now - this.#drawnAt < 200) return;
    this.#drawnAt = now;
    const fraction = Math.min(1, bytes / this.#total);
    const width = 30;
    const filled = Math.round(fraction * width);
    const gb = (n: number) => (n / 1e9).toFixed(2);
    process.stderr.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%  ${gb(bytes)}/${gb(this.#total)} GB`,
    );
  }

  done(): void {
    if (this.#drawnAt !== 0) process.stderr.write(`\r${' '.repeat(60)}\r`);
  }
}
