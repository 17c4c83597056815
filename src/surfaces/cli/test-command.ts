import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, ErrorCodes, PortcullisError } from '../../core/errors.js';
import { fail2banSpecOf, isFail2banReference } from '../../detection/filters/fail2ban/reference.js';
import { USEDNS_VALUES, type UseDns } from '../../detection/filters/regex/dns.js';
import { DEFAULT_MAX_LINE_LENGTH } from '../../sources/log/line-splitter.js';
import {
  type CollectOptions,
  formatReport,
  LogTestCollector,
  type LogTestReport,
} from './log-test-report.js';
import { DEFAULT_JOBS, PARALLEL_MIN_BYTES, planPieces, planRanges, runParallel } from './test-parallel.js';
// Types only: the filter engine is imported when needed, after a parallel run's workers started.
import type { TestFilter, TestFilterOptions, TestFilterSpec } from './test-range.js';

/**
 * `portcullis test LOG FILTER`: runs a log through a filter and says what it found, like
 * fail2ban-regex. LOG is a path or `-` (stdin), read as a stream: memory stays bounded whatever
 * its size. FILTER is a bundled filter name, a YAML filter file, or a single failregex. A file of
 * 16 MiB or more is read by `--jobs` threads at once (see `test-parallel.ts`), with the same result.
 */

interface TestCommandOptions {
  mode?: string;
  datepattern?: string;
  logtimezone?: string;
  maxLineLength: string;
  jobs?: string;
  usedns: string;
  printMatched?: boolean;
  printMissed?: boolean;
  printIgnored?: boolean;
  json?: boolean;
  progress?: boolean;
  skipUnsupported?: boolean;
}

/** Files at least this big get a progress bar (when stderr is a terminal). */
const PROGRESS_MIN_BYTES = 32 * 1024 * 1024;
/**
 * The longest `--max-line-length`, as for a jail's `max_line_length`: a line is held whole up to
 * it, and one of ~512 MiB is more than a JavaScript string can hold (a gzip bomb's one "line").
 */
const MAX_LINE_LENGTH_LIMIT = 1_048_576;
/** More threads than this only cost memory. */
const MAX_JOBS = 64;

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
    .option(
      '-j, --jobs <n>',
      `threads reading a file of ${PARALLEL_MIN_BYTES / 1024 / 1024} MiB or more at once (1: one pass)`,
      String(DEFAULT_JOBS),
    )
    .option(
      '--usedns <mode>',
      'a DNS name in place of the address: no (a miss), warn or yes (looked up)',
      'no',
    )
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
      if (
        !Number.isSafeInteger(maxLineLength) ||
        maxLineLength < 1 ||
        maxLineLength > MAX_LINE_LENGTH_LIMIT
      ) {
        throw new ConfigError([
          `--max-line-length: expected a whole number of bytes from 1 to ${MAX_LINE_LENGTH_LIMIT}, got ${JSON.stringify(options.maxLineLength)}`,
        ]);
      }
      const jobs = Number(options.jobs ?? DEFAULT_JOBS);
      if (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > MAX_JOBS) {
        throw new ConfigError([
          `--jobs: expected a whole number from 1 to ${MAX_JOBS}, got ${JSON.stringify(options.jobs)}`,
        ]);
      }
      if (!USEDNS_VALUES.includes(options.usedns as UseDns)) {
        throw new ConfigError([`--usedns: expected no, warn or yes, got ${JSON.stringify(options.usedns)}`]);
      }
      // fail2ban:NAME[params]: fail2ban's own filter file, read in place.
      const spec: TestFilterSpec = isFail2banReference(filterArg)
        ? {
            ...fail2banSpecOf(filterArg),
            ...(options.skipUnsupported === true ? { unsupported: 'skip' } : {}),
          }
        : filterArg;
      const filterOptions: TestFilterOptions = {
        ...(options.mode === undefined ? {} : { mode: options.mode }),
        ...(options.datepattern === undefined ? {} : { datepattern: options.datepattern }),
        ...(options.logtimezone === undefined ? {} : { logtimezone: options.logtimezone }),
        maxLineLength,
        usedns: options.usedns as UseDns,
      };
      const report = await runLogTest(log, spec, filterOptions, {
        jobs,
        printMatched: options.printMatched === true,
        printMissed: options.printMissed === true,
        printIgnored: options.printIgnored === true,
        progress: options.progress !== false && process.stderr.isTTY === true,
      });
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

export interface RunLogTestOptions extends CollectOptions {
  /** Threads for a regular file of {@link PARALLEL_MIN_BYTES} or more. Default 1 (one pass). */
  jobs?: number;
  /** Draw a progress bar on stderr (only for files of 32 MiB or more). */
  progress?: boolean;
}

/**
 * Streams `log` (a path or `-`) through the filter `spec` and returns the report. `usedns` names
 * are looked up (each thread its own) and every lookup is awaited before the report is made.
 */
export async function runLogTest(
  log: string,
  spec: TestFilterSpec,
  filterOptions: TestFilterOptions,
  options: RunLogTestOptions = {},
): Promise<LogTestReport> {
  const warned = new Set<string>();
  const onDnsWarning = (name: string, ips: readonly string[]) => {
    if (warned.has(name.toLowerCase())) return;
    warned.add(name.toLowerCase());
    process.stderr.write(
      `warning: --usedns warn: ${name} resolved to ${ips.join(', ')}; whoever controls its DNS chooses whom a ban of it hits\n`,
    );
  };
  const load = async () =>
    (await import('./test-range.js')).loadTestFilter(spec, filterOptions, { notes: true, onDnsWarning });
  const collect: CollectOptions = {
    printMatched: options.printMatched === true,
    printMissed: options.printMissed === true,
    printIgnored: options.printIgnored === true,
  };
  const maxLineLength = filterOptions.maxLineLength;
  let input: AsyncIterable<Buffer> | undefined;
  let gzip = false;
  let size = 0;
  let name: string;
  // Standard input, a pipe or a FIFO: told compressed or not by its first bytes as it is read.
  let peek = true;
  if (log === '-') {
    input = process.stdin;
    name = '(standard input)';
  } else {
    name = resolve(log);
    let regular = false;
    let directory = false;
    try {
      const stat = statSync(name);
      size = stat.size;
      regular = stat.isFile();
      directory = stat.isDirectory();
    } catch (error) {
      throw unreadable(log, name, error);
    }
    if (directory)
      throw new PortcullisError(
        ErrorCodes.CONFIG_NOT_FOUND,
        `${log}: cannot read the log: it is a directory`,
      );
    let head: Buffer | undefined;
    try {
      head = regular ? headOf(name) : undefined;
    } catch (error) {
      throw unreadable(log, name, error);
    }
    peek = !regular;
    if (head !== undefined && isGzipLog(log, head, true)) {
      // A rotated `auth.log.2.gz`: read through gunzip, in one pass (no progress bar: the text's
      // length is not known).
      gzip = true;
      regular = false;
      size = 0;
    }
    const jobs = options.jobs ?? 1;
    if (regular && jobs > 1 && size >= PARALLEL_MIN_BYTES) {
      const plans = {
        plain: await planPieces(name, size, jobs),
        sessions: await planRanges(name, size, jobs, false),
      };
      if (plans.plain.length > 1) {
        const progress =
          options.progress === true && size >= PROGRESS_MIN_BYTES ? new ProgressBar(size) : undefined;
        let bytes = 0;
        const started = performance.now();
        const run = await runParallel(
          load,
          spec,
          filterOptions,
          plans,
          jobs,
          { path: name, maxLineLength, collect },
          {
            onBytes: (n) => {
              bytes += n;
              progress?.update(bytes);
            },
            onDnsWarning,
          },
        ).catch((error: unknown) => {
          throw unreadable(log, name, error);
        });
        const elapsedMs = performance.now() - started;
        progress?.done();
        return withUsedns(run.collector.report(name, elapsedMs, run), filterOptions.usedns);
      }
    }
  }
  const loaded = await load();
  const { feedLines, gunzipped, readRange, sniffed } = await import('./test-range.js');
  if (input === undefined) input = gzip ? gunzipped(name) : readRange(name, 0, Number.POSITIVE_INFINITY);
  if (peek) input = sniffed(input as AsyncIterable<Buffer>, (head) => isGzipLog(log, head, false));
  const progress =
    options.progress === true && size >= PROGRESS_MIN_BYTES ? new ProgressBar(size) : undefined;
  const started = performance.now();
  const collector = new LogTestCollector(loaded.filter, collect);
  let bytes = 0;
  const truncated = await feedLines(
    input as AsyncIterable<Buffer>,
    maxLineLength,
    (line) => each(loaded, collector, line),
    (n) => {
      bytes += n;
      progress?.update(bytes);
    },
  ).catch((error: unknown) => {
    throw unreadable(log, name, error);
  });
  await loaded.late.settled();
  const elapsedMs = performance.now() - started;
  progress?.done();
  collector.truncated = truncated;
  return withUsedns(collector.report(name, elapsedMs), filterOptions.usedns);
}

/** Compressed formats by their first bytes, and the tool that writes one out as text. */
const COMPRESSIONS: readonly Compression[] = [
  { name: 'gzip', magic: [0x1f, 0x8b], cat: 'zcat' },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], cat: 'bzcat' },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], cat: 'xzcat' },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], cat: 'zstdcat' },
  { name: 'lz4', magic: [0x04, 0x22, 0x4d, 0x18], cat: 'lz4cat' },
  { name: 'zip', magic: [0x50, 0x4b, 0x03, 0x04], cat: 'unzip -p' },
];

interface Compression {
  name: string;
  magic: readonly number[];
  cat: string;
}

/**
 * The first bytes of a regular file, enough to tell its compression (see isGzipLog). No log line
 * starts with these bytes (`BZh` aside: a text file starting `BZh` is taken for bzip2 and refused
 * with the advice to decompress it).
 */
function headOf(path: string): Buffer {
  const head = Buffer.alloc(6);
  const fd = openSync(path, 'r');
  try {
    return head.subarray(0, readSync(fd, head, 0, head.length, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * For a log's first bytes (`file`: a regular file, else a stream: standard input, a pipe, a
 * FIFO): true for gzip (read through gunzip), false for text; another compression is refused
 * with the command that reads it, put where this log came from.
 */
function isGzipLog(log: string, head: Buffer, file: boolean): boolean {
  const compression = COMPRESSIONS.find(
    (format) => head.length >= format.magic.length && format.magic.every((byte, i) => head[i] === byte),
  );
  if (compression === undefined) return false;
  if (compression.name === 'gzip') return true;
  const { name, cat } = compression;
  const advice = file
    ? `decompress it first: portcullis test <(${cat} ${log}) FILTER`
    : log === '-'
      ? `decompress it on the way in: ${cat} FILE | portcullis test - FILTER`
      : `decompress it on the way in: portcullis test <(${cat} FILE) FILTER`;
  throw new PortcullisError(
    ErrorCodes.CONFIG_NOT_FOUND,
    `${log === '-' ? '(standard input)' : log}: cannot read the log: it is ${name}-compressed; ${advice}`,
  );
}

/**
 * A log that cannot be read (no such file, no permission, an I/O error) as the usage error it is:
 * its name and the system's reason, exit status 2, no stack trace. Anything else stays as it was.
 */
function unreadable(log: string, path: string, error: unknown): unknown {
  const failed = error as NodeJS.ErrnoException;
  // The system's errors carry their errno name (ENOENT, EACCES, EIO), gunzip's its own
  // (Z_DATA_ERROR: a damaged .gz), Node's own (ERR_INVALID_ARG_TYPE: a bug) neither; those of
  // other files (a filter's) name their own path.
  if (
    !(error instanceof Error) ||
    typeof failed.code !== 'string' ||
    !/^(?:E[A-Z0-9]+|Z_[A-Z_]+)$/.test(failed.code)
  )
    return error;
  if (failed.path !== undefined && resolve(failed.path) !== path) return error;
  return new PortcullisError(
    ErrorCodes.CONFIG_NOT_FOUND,
    `${log === '-' ? '(standard input)' : log}: cannot read the log: ${error.message}`,
  );
}

function each({ filter, late }: TestFilter, collector: LogTestCollector, line: string): void {
  const result = filter.processLine(line);
  const pending = collector.add(line, result);
  if (pending !== undefined) late.track(result, (verdict) => collector.settle(pending, verdict));
}

function withUsedns(report: LogTestReport, usedns: UseDns | undefined): LogTestReport {
  if (usedns === 'warn' || usedns === 'yes') report.usedns = usedns;
  return report;
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
