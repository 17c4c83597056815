import { dirname, resolve } from 'node:path';
import type { JailConfig, PortcullisConfig } from '../../config/types.js';
import { type Clock, systemClock } from '../../core/clock.js';
import { formatDuration } from '../../core/duration.js';
import { ConfigError, ErrorCodes, isPortcullisError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { plural } from '../../core/plural.js';
import type { ReportOptions, ReportResult } from '../../core/types.js';
import type { LineBatch } from './batch-queue.js';
import { CommandFollower } from './command-follower.js';
import { isCompressedName } from './directory-watch.js';
import { FileFollower, type PositionStore } from './file-follower.js';
import { FileLedger } from './file-ledger.js';
import { expandGlob, hasMagic, segmentMatcher } from './glob.js';
import { isJournalJsonCommand, parseJournalLine } from './journald.js';
import { DEFAULT_MAX_LINE_LENGTH } from './line-splitter.js';
import { LogThrottle } from './log-throttle.js';

/** One failure a filter found in a line (the shape of `LogMatch` from the regex filter engine). */
export interface LineMatch {
  ip: string;
  /** The line's time, ms since the epoch. */
  timeMs: number;
  fields: Readonly<Record<string, string>>;
}

/** What a log jail needs from a filter; a `CompiledLogFilter` (regex filter engine) is one. */
export interface LineFilter {
  processLine(line: string): { readonly matches: readonly LineMatch[] };
  /** Settles when failures found later (`usedns` lookups) have been handed over. */
  settled?(): Promise<void>;
}

/** What a filter factory is told about the source it will read. */
export interface FilterContext {
  /** True for `journalctl -o json` commands: lines carry no date; `lineTimeMs()` is the entry's time. */
  readonly journald: boolean;
  /** The time of the line being processed when the source knows it (journald), else now. */
  readonly lineTimeMs: () => number;
  /** The longest line the source hands over, in bytes. */
  readonly maxLineLength: number;
  /** Failures found after `processLine` returned (a `usedns` lookup that settled): reported too. */
  readonly onResolved: (matches: readonly LineMatch[]) => void;
  /** `usedns: warn`: a name seen for the first time resolved to these addresses. */
  readonly onDnsWarning: (name: string, ips: readonly string[]) => void;
}

/** The part of the guard log jails use; a `Guard` is one. */
export interface LogJailGuard {
  readonly config: PortcullisConfig;
  readonly positions: PositionStore;
  report(ip: string, options: ReportOptions): Promise<ReportResult>;
  /** `report()` answering synchronously when it can (a `Guard` has it): used when present. */
  reportEager?(ip: string, options: ReportOptions): ReportResult | Promise<ReportResult>;
}

/** Options of {@link startLogJails}. */
export interface LogJailsOptions {
  logger?: Logger;
  /** Where "now" comes from for the findtime cut-off. Default the system clock. */
  clock?: Clock;
  /**
   * Builds a jail's filter. Default: `loadLogFilter(jail.filter, ...)` from the regex filter engine
   * (journald commands get `datepattern: '{NONE}'` and the entry's time as `now`).
   */
  makeFilter?: (jail: JailConfig, context: FilterContext) => LineFilter;
  /** Where the default factory looks up filter names. Default the bundled `rules/`. */
  rulesDir?: string;
  /** Longest line kept, in bytes, for jails without `max_line_length`. Default 16384. */
  maxLineLength?: number;
  /** Files are checked at least this often, in ms. Default 1000. */
  pollIntervalMs?: number;
  /** Unreadable files are retried this often, in ms. Default 5000. */
  retryIntervalMs?: number;
  /** Positions are saved at most this often, in ms. Default 1000. */
  saveIntervalMs?: number;
  /** A rotated file is read until it has been quiet this long, in ms. Default 5000. */
  drainGraceMs?: number;
  /** Globs are expanded again this often, in ms. Default 5000. */
  globIntervalMs?: number;
  /** Batches in flight per source before reading pauses. Default 16. */
  maxInFlight?: number;
  /** Use `fs.watch` as well as polling. Default true. */
  watch?: boolean;
  /** First wait before restarting an exited command, in ms. Default 1000. */
  commandBackoffMs?: number;
  /** Longest wait before restarting an exited command, in ms. Default 60000. */
  commandMaxBackoffMs?: number;
}

/** Counters of one log jail. */
export interface LogJailStats {
  /** Lines read from every source. */
  lines: number;
  /** Failures the filter found. */
  matches: number;
  /** Failures dropped because their time was older than now − findtime. */
  tooOld: number;
  /** `report()` calls that settled. */
  reports: number;
  /** Lines the filter threw on, and reports that failed. */
  errors: number;
  /** Per followed file (absolute path): lines read and bytes not read yet (metrics). */
  files?: Record<string, { lines: number; lagBytes?: number }>;
}

/** The running log jails; see {@link startLogJails}. */
export interface LogJails {
  /** Per jail name. */
  stats(): Record<string, LogJailStats>;
  /**
   * Stops every follower and command, waits for the reports of lines already read and saves the
   * positions. Call it before `guard.close()`. Idempotent.
   */
  close(): Promise<void>;
}

/** Where a log jail's relative paths start: the configuration file's directory, like the SQLite path. */
function logBase(config: PortcullisConfig): string {
  return config.file === null ? process.cwd() : dirname(config.file);
}

function compressedNameWarning(jail: string, path: string): string {
  return `jail ${jail}: ${path} is named like a compressed file; its bytes are read as lines as they are (no decompression)`;
}

/**
 * What a log jail warns of when it starts, said by `check-config` before: the literal paths
 * (globs leave compressed names out) of enabled log jails named like a compressed file.
 */
export function logSourceWarnings(config: PortcullisConfig): string[] {
  const base = logBase(config);
  const warnings: string[] = [];
  for (const jail of config.jails) {
    if (!jail.enabled || jail.source.kind !== 'log') continue;
    for (const path of jail.source.paths) {
      if (!hasMagic(path) && isCompressedName(path))
        warnings.push(compressedNameWarning(jail.name, resolve(base, path)));
    }
  }
  return warnings;
}

/**
 * Starts every enabled jail whose source is `log` (files and globs) or `command`: each complete line
 * goes through the jail's filter, and each failure found is reported with
 * `guard.report(ip, { jail, timeMs, fields })`, except failures older than now − findtime (so a
 * restart that re-reads a file does not cause a ban storm). Reports for one address are made in
 * line order, one at a time; different addresses are reported concurrently. Relative paths are
 * relative to the configuration file.
 *
 * **Restart guarantee (files).** Each file's position (`<jail>:<absolute path>` → offset, inode,
 * first-line hash) is saved in the guard's store at most every `saveIntervalMs` and at `close()`,
 * and only ever at the end of a batch whose `report()` calls have all settled. So:
 * - after `close()` (a graceful stop), the next start resumes at the next unread line: no line is
 *   counted twice and none is skipped (a partial last line is read whole next time);
 * - after a crash (`kill -9`), the lines after the last saved position (about `saveIntervalMs` of
 *   input plus the batches in flight) are read and reported again; no line before it is, and none
 *   is skipped;
 * - a file whose inode or first line changed while stopped is read from 0; the old file, if it is
 *   under a rotated name in the same directory (`auth.log.1`, also after `.1` → `.2`), is read on
 *   from its saved position first, as is a rotated file that was still being read at the stop
 *   (its position is saved too). Lines older than findtime are never counted, so reading a file
 *   again cannot cause a ban storm.
 * `journalctl -o json` commands save the cursor of the last handled entry the same way and
 * restart with `--after-cursor`; other commands have no position.
 *
 * Rejects (having started nothing) when a jail's filter cannot be built or a path is invalid.
 */
export async function startLogJails(guard: LogJailGuard, options: LogJailsOptions = {}): Promise<LogJails> {
  const jails = guard.config.jails.filter(
    (jail) => jail.enabled && (jail.source.kind === 'log' || jail.source.kind === 'command'),
  );
  const makeFilter =
    options.makeFilter ??
    (jails.length > 0 ? await defaultFilterFactory(guard.config, options.rulesDir) : undefined);
  const runners = jails.map(
    (jail) => new LogJailRunner(guard, jail, options, makeFilter as NonNullable<typeof makeFilter>),
  );
  const started: LogJailRunner[] = [];
  try {
    for (const runner of runners) {
      started.push(runner);
      await runner.start();
    }
  } catch (error) {
    await Promise.all(started.map((runner) => runner.close()));
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    stats: () =>
      Object.fromEntries(
        runners.map((runner) => [runner.name, { ...runner.stats, files: runner.fileStats() }]),
      ),
    close() {
      closing ??= Promise.all(runners.map((runner) => runner.close())).then(() => {});
      return closing;
    },
  };
}

async function defaultFilterFactory(
  config: PortcullisConfig,
  rulesDir: string | undefined,
): Promise<(jail: JailConfig, context: FilterContext) => LineFilter> {
  const { loadLogFilter } = await import('../../detection/filters/regex/log-filter.js');
  const file = config.file === null ? '' : `${config.file}: `;
  return (jail, context) => {
    if (jail.filter === null)
      throw new ConfigError([`${file}jails.${jail.name}.filter: a log jail needs a filter`]);
    const filterOptions = {
      maxLineLength: context.maxLineLength,
      ...(jail.mode == null ? {} : { mode: jail.mode }),
      ...(jail.datePattern == null ? {} : { datepattern: jail.datePattern }),
      ...(jail.logTimezone == null ? {} : { logtimezone: jail.logTimezone }),
      ...(jail.useDns == null || jail.useDns === 'no'
        ? {}
        : {
            usedns: jail.useDns,
            onResolved: context.onResolved as (matches: LineMatch[]) => void,
            onDnsWarning: context.onDnsWarning,
          }),
      where: `${file}jails.${jail.name}.filter`,
      optionsWhere: `${file}jails.${jail.name}`,
      ...(config.file === null ? {} : { baseDir: dirname(config.file) }),
      // journald entries carry their time outside the message.
      ...(context.journald ? { datepattern: '{NONE}', now: context.lineTimeMs } : {}),
    };
    return loadLogFilter(jail.filter as string | Record<string, unknown>, filterOptions, rulesDir);
  };
}

/** The sources of one jail, its filter, and the reports it makes. */
class LogJailRunner {
  readonly name: string;
  readonly stats: LogJailStats = { lines: 0, matches: 0, tooOld: 0, reports: 0, errors: 0 };
  readonly #guard: LogJailGuard;
  readonly #jail: JailConfig;
  readonly #options: LogJailsOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #maxLineLength: number;
  readonly #filter: LineFilter;
  readonly #journald: boolean;
  readonly #files = new Map<string, { follower: FileFollower; fromGlob: boolean; misses: number }>();
  readonly #ledger = new FileLedger();

  /** Per followed file: lines read and follow lag (read at scrape time). */
  fileStats(): Record<string, { lines: number; lagBytes?: number }> {
    const out: Record<string, { lines: number; lagBytes?: number }> = {};
    for (const [path, { follower }] of this.#files) {
      const lag = follower.lagBytes;
      const lines = follower.stats.lines;
      out[path] = lag === undefined ? { lines } : { lines, lagBytes: lag };
    }
    return out;
  }
  readonly #commands: CommandFollower[] = [];
  readonly #globs: string[] = [];
  readonly #quietGlobs = new Set<string>();
  /** Compressed files a glob matched, each told once. */
  readonly #compressedSeen = new Set<string>();
  /** Per address, the tail of its chain of reports: one report at a time per client, in order. */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #errorLog = new LogThrottle(60_000, 5);
  #lineTimeMs = 0;
  #globTimer: NodeJS.Timeout | undefined;
  #expanding: Promise<void> | undefined;
  #closed = false;

  constructor(
    guard: LogJailGuard,
    jail: JailConfig,
    options: LogJailsOptions,
    makeFilter: (jail: JailConfig, context: FilterContext) => LineFilter,
  ) {
    this.name = jail.name;
    this.#guard = guard;
    this.#jail = jail;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#maxLineLength = jail.maxLineLength ?? options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.#journald = jail.source.kind === 'command' && isJournalJsonCommand(jail.source.argv);
    this.#filter = makeFilter(jail, {
      journald: this.#journald,
      lineTimeMs: () => this.#lineTimeMs,
      maxLineLength: this.#maxLineLength,
      onResolved: (matches) => this.#late(matches),
      onDnsWarning: (name, ips) =>
        this.#logger.warn(
          { jail: this.name, name, ips },
          `jail ${this.name}: ${name} is a DNS name, counted as ${ips.join(', ')} (usedns: warn; whoever controls its DNS chooses whom a ban hits)`,
        ),
    });
    if (jail.source.kind === 'log') {
      for (const path of jail.source.paths) {
        if (!hasMagic(path)) continue;
        try {
          for (const segment of path.split('/')) if (hasMagic(segment)) segmentMatcher(segment);
        } catch (error) {
          throw new ConfigError([
            `jails.${jail.name}.source.log: invalid pattern ${JSON.stringify(path)}: ${(error as Error).message}`,
          ]);
        }
      }
    }
  }

  async start(): Promise<void> {
    const source = this.#jail.source;
    if (source.kind === 'command') {
      const command = new CommandFollower({
        argv: source.argv,
        onLines: this.#handle,
        maxLineLength: this.#maxLineLength,
        ...(this.#options.maxInFlight === undefined ? {} : { maxInFlight: this.#options.maxInFlight }),
        ...(this.#options.commandBackoffMs === undefined
          ? {}
          : { initialBackoffMs: this.#options.commandBackoffMs }),
        ...(this.#options.commandMaxBackoffMs === undefined
          ? {}
          : { maxBackoffMs: this.#options.commandMaxBackoffMs }),
        // journalctl -o json: resume after the last handled entry's cursor (no re-count on restart).
        ...(this.#journald
          ? {
              cursor: { store: this.#guard.positions, id: `${this.name}:journal:${source.argv.join(' ')}` },
              ...(this.#options.saveIntervalMs === undefined
                ? {}
                : { saveIntervalMs: this.#options.saveIntervalMs }),
            }
          : {}),
        logger: this.#logger,
      });
      this.#commands.push(command);
      command.start();
      this.#logger.info(
        { jail: this.name, command: command.command },
        `jail ${this.name}: following the output of ${command.command}${this.#journald ? ' (journald JSON)' : ''}`,
      );
      return;
    }
    if (source.kind !== 'log') return;
    const start = source.start ?? 'end';
    // Relative paths are relative to the configuration file, like the SQLite path.
    const base = logBase(this.#guard.config);
    const literal: string[] = [];
    for (const path of source.paths) (hasMagic(path) ? this.#globs : literal).push(resolve(base, path));
    for (const path of literal.filter(isCompressedName)) {
      // Named on purpose, so followed; but most likely a rotation named by mistake.
      this.#logger.warn({ jail: this.name, path }, compressedNameWarning(this.name, path));
    }
    await Promise.all(literal.map((path) => this.#follow(path, start, false)));
    if (this.#globs.length > 0) {
      await this.#expand(start);
      this.#globTimer = setInterval(() => {
        this.#expanding ??= this.#expand('beginning').finally(() => {
          this.#expanding = undefined;
        });
      }, this.#options.globIntervalMs ?? 5000).unref();
    }
    this.#logger.info(
      { jail: this.name, files: [...this.#files.keys()], globs: this.#globs },
      `jail ${this.name}: following ${plural(this.#files.size, 'file')}${this.#globs.length > 0 ? ` and ${plural(this.#globs.length, 'glob')}` : ''}`,
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#globTimer);
    await this.#expanding;
    await Promise.all([
      ...[...this.#files.values()].map((entry) => entry.follower.close()),
      ...this.#commands.map((command) => command.close()),
    ]);
    // Lookups in flight (usedns) are bounded by their timeout; their failures are still reported.
    await this.#filter.settled?.();
    await Promise.all([...this.#chains.values()]);
  }

  /** Failures a filter found after its line was handled (a DNS name that resolved). */
  #late(matches: readonly LineMatch[]): void {
    const oldest = this.#clock.now() - this.#jail.findTimeMs;
    for (const match of matches) {
      this.stats.matches++;
      if (!(match.timeMs >= oldest)) {
        this.stats.tooOld++;
        continue;
      }
      this.#report(match.ip, match.timeMs, match.fields)?.catch((error) =>
        this.#error(error, `jail ${this.name}: report(${match.ip}) failed`),
      );
    }
  }

  async #follow(path: string, start: 'end' | 'beginning', fromGlob: boolean): Promise<void> {
    const follower = new FileFollower({
      path,
      onLines: this.#handle,
      positions: { store: this.#guard.positions, id: `${this.name}:${path}` },
      // One reader per file (device + inode): a glob matching rotated names counts no line twice.
      ledger: this.#ledger,
      start,
      maxLineLength: this.#maxLineLength,
      logger: this.#logger,
      ...pick(this.#options, [
        'pollIntervalMs',
        'retryIntervalMs',
        'saveIntervalMs',
        'drainGraceMs',
        'maxInFlight',
        'watch',
      ] as const),
    });
    this.#files.set(follower.path, { follower, fromGlob, misses: 0 });
    await follower.start();
  }

  /** Follows new matches of the globs; forgets matches that are gone and idle. */
  async #expand(start: 'end' | 'beginning'): Promise<void> {
    const seen = new Set<string>();
    for (const glob of this.#globs) {
      let matches: string[];
      try {
        matches = await expandGlob(glob);
      } catch (error) {
        this.#logger.error({ jail: this.name, glob, err: error }, `jail ${this.name}: cannot expand ${glob}`);
        continue;
      }
      if (this.#closed) return;
      if (matches.length === 0 && !this.#quietGlobs.has(glob)) {
        this.#quietGlobs.add(glob);
        this.#logger.info(
          { jail: this.name, glob },
          `jail ${this.name}: nothing matches ${glob} yet; looking again every ${formatDuration(this.#options.globIntervalMs ?? 5000)}`,
        );
      }
      for (const path of matches) {
        if (isCompressedName(path)) {
          // `auth.log*` also matches `auth.log.2.gz`: its lines were read (if ever) before
          // logrotate compressed it, and bytes of gzip are no log lines.
          if (!this.#compressedSeen.has(path)) {
            this.#compressedSeen.add(path);
            this.#logger.info(
              { jail: this.name, glob, path },
              `jail ${this.name}: not reading ${path}: a compressed file (the glob ${glob} matches it)`,
            );
          }
          continue;
        }
        seen.add(path);
        if (!this.#files.has(path)) await this.#follow(path, start, true);
      }
    }
    for (const [path, entry] of this.#files) {
      if (!entry.fromGlob) continue;
      entry.misses = seen.has(path) ? 0 : entry.misses + 1;
      if (entry.misses >= 2 && !entry.follower.active) {
        this.#files.delete(path);
        await entry.follower.close();
      }
    }
  }

  /**
   * Filters a batch and reports its failures, in line order; settles when every report has. A
   * report the guard answers at once (a failure counted here) costs no promise: the batch returns
   * one only when some report has more to wait for (a ban's store write, a Redis count).
   */
  readonly #handle = (batch: LineBatch): void | Promise<void> => {
    const oldest = this.#clock.now() - this.#jail.findTimeMs;
    const lines = batch.lines;
    this.stats.lines += lines.length;
    let pending: Promise<void>[] | undefined;
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i] as string;
      if (this.#journald) {
        const entry = parseJournalLine(line);
        if (entry === undefined) continue;
        line = entry.text;
        this.#lineTimeMs = entry.timeMs ?? this.#clock.now();
      }
      let matches: readonly LineMatch[];
      try {
        matches = this.#filter.processLine(line).matches;
      } catch (error) {
        this.#error(error, `jail ${this.name}: the filter failed on a line from ${batch.source}`);
        continue;
      }
      for (let m = 0; m < matches.length; m++) {
        const match = matches[m] as LineMatch;
        this.stats.matches++;
        const timeMs = this.#journald ? this.#lineTimeMs : match.timeMs;
        if (!(timeMs >= oldest)) {
          this.stats.tooOld++;
          continue;
        }
        const waiting = this.#report(match.ip, timeMs, match.fields, line);
        if (waiting === undefined) continue;
        if (pending === undefined) pending = [waiting];
        else pending.push(waiting);
      }
    }
    if (pending === undefined) return;
    return pending.length === 1 ? (pending[0] as Promise<void>) : Promise.all(pending).then(noop);
  };

  /**
   * Reports one failure. Reports of one address are made in line order, one at a time: while one
   * is still waiting (a ban being written), the next ones of that address wait behind it. Returns
   * `undefined` when the report settled at once, else a promise that settles with it (and rejects
   * only when the guard is closed). `line`: the text matched, for the ban's announcement (the
   * guard keeps it only if shown).
   */
  #report(
    ip: string,
    timeMs: number,
    fields: Readonly<Record<string, string>>,
    line?: string,
  ): Promise<void> | undefined {
    const options: ReportOptions = { jail: this.name, timeMs, fields, match: line };
    const previous = this.#chains.size === 0 ? undefined : this.#chains.get(ip);
    if (previous === undefined) {
      const waiting = this.#send(ip, options);
      return waiting === undefined ? undefined : this.#enqueue(ip, waiting);
    }
    return this.#enqueue(
      ip,
      previous.then(() => this.#send(ip, options)),
    );
  }

  /** Hands one report to the guard: `undefined` when it settled at once, else its promise. */
  #send(ip: string, options: ReportOptions): Promise<void> | undefined {
    const guard = this.#guard;
    let result: ReportResult | PromiseLike<ReportResult>;
    try {
      result = guard.reportEager === undefined ? guard.report(ip, options) : guard.reportEager(ip, options);
    } catch (error) {
      return this.#failed(ip, error);
    }
    if (typeof (result as Partial<PromiseLike<ReportResult>>).then !== 'function') {
      this.stats.reports++;
      return undefined;
    }
    return Promise.resolve(result).then(this.#settled, (error: unknown) => this.#failed(ip, error));
  }

  readonly #settled = (): void => {
    this.stats.reports++;
  };

  /** A report that failed: logged and counted, unless the guard is closed (then the batch fails). */
  #failed(ip: string, error: unknown): Promise<never> | undefined {
    // A closed guard means these lines were not counted: the batch fails, its position is not saved.
    if (isPortcullisError(error, ErrorCodes.CLOSED)) return Promise.reject(error);
    this.#error(error, `jail ${this.name}: report(${ip}) failed`);
    return undefined;
  }

  /** Makes `waiting` the tail of the reports of `ip`; returns it. */
  #enqueue(ip: string, waiting: Promise<void>): Promise<void> {
    const chains = this.#chains;
    const tail: Promise<void> = waiting.then(
      () => {
        if (chains.get(ip) === tail) chains.delete(ip);
      },
      () => {
        if (chains.get(ip) === tail) chains.delete(ip);
      },
    );
    chains.set(ip, tail);
    return waiting;
  }

  #error(error: unknown, message: string): void {
    this.stats.errors++;
    const { allowed, suppressed } = this.#errorLog.take();
    if (!allowed) return;
    const more = suppressed > 0 ? ` (${suppressed} similar errors not shown)` : '';
    this.#logger.error({ jail: this.name, err: error }, `${message}${more}`);
  }
}

function noop(): void {}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}
