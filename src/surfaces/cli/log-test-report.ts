import { plural } from '../../core/plural.js';
import type { CompiledLogFilter, LineResult, LogMatch } from '../../detection/filters/regex/log-filter.js';

/**
 * What `portcullis test` found in a log: counts by line kind, hits per regex, date formats seen,
 * and (on request) the matched, missed and ignored lines themselves. Pure counting; no I/O.
 */
export interface LogTestReport {
  filter: { name: string; mode: string; description: string };
  log: string;
  lines: {
    total: number;
    /** Lines that produced at least one failure. */
    matched: number;
    ignored: number;
    /** Lines that matched nothing (undated ones included). */
    missed: number;
    /** Lines a failregex matched that produced no failure yet (`<F-NOFAIL>`, waiting sessions). */
    info: number;
    /** Missed lines without a date. */
    noDate: number;
    /** Lines whose host was not an IP address (a DNS name: nothing is resolved). */
    badHost: number;
    /** Lines cut to `max_line_length`. */
    truncated: number;
  };
  /** Failures found (a line can carry several, from a multi-line session). */
  failures: number;
  failregex: { index: number; regex: string; hits: number }[];
  ignoreregex: { index: number; regex: string; hits: number }[];
  /** Date format name → lines. */
  dateFormats: Record<string, number>;
  elapsedMs: number;
  linesPerSecond: number;
  /** Threads that read the file (`--jobs`; 1: one pass in order). */
  jobs: number;
  /**
   * Ranges read again in the main thread because the multi-line sessions a worker rebuilt at its
   * start differed from those the previous range ended with (the result is exact either way).
   */
  reruns: number;
  /** `--usedns` when not `no`: names were looked up. */
  usedns?: 'warn' | 'yes';
  matchedLines?: { line: number; text: string; failures: LogMatch[] }[];
  missedLines?: { line: number; text: string }[];
  ignoredLines?: { line: number; text: string }[];
}

export interface CollectOptions {
  printMatched?: boolean;
  printMissed?: boolean;
  printIgnored?: boolean;
}

/** A line counted in the totals whose verdict waits for a DNS lookup ({@link LogTestCollector.settle}). */
export interface PendingLine {
  readonly line: number;
  readonly text: string;
}

/**
 * What a collector counted over one stretch of a log, as plain (structured-clone friendly) data;
 * line numbers are relative to the stretch (its first line is 1).
 */
export interface PartialReport {
  lines: LogTestReport['lines'];
  failures: number;
  hits: number[];
  ignoreHits: number[];
  /** Date format → lines, in the order first seen. */
  dates: [string, number][];
  matched: NonNullable<LogTestReport['matchedLines']>;
  missed: NonNullable<LogTestReport['missedLines']>;
  ignored: NonNullable<LogTestReport['ignoredLines']>;
}

/** Accumulates {@link LineResult}s into a {@link LogTestReport}. */
export class LogTestCollector {
  readonly #filter: CompiledLogFilter;
  readonly #options: CollectOptions;
  readonly #hits: number[];
  readonly #ignoreHits: number[];
  readonly #dates = new Map<string, number>();
  /** The date format of the latest dated lines, and how many of them are not in #dates yet. */
  #format: string | undefined;
  #formatLines = 0;
  readonly #lines = {
    total: 0,
    matched: 0,
    ignored: 0,
    missed: 0,
    info: 0,
    noDate: 0,
    badHost: 0,
    truncated: 0,
  };
  #failures = 0;
  readonly #matched: NonNullable<LogTestReport['matchedLines']> = [];
  readonly #missed: NonNullable<LogTestReport['missedLines']> = [];
  readonly #ignored: NonNullable<LogTestReport['ignoredLines']> = [];
  /** A line was settled after later ones were listed. */
  #outOfOrder = false;

  constructor(filter: CompiledLogFilter, options: CollectOptions = {}) {
    this.#filter = filter;
    this.#options = options;
    this.#hits = filter.failregex.map(() => 0);
    this.#ignoreHits = filter.ignoreregex.map(() => 0);
  }

  /**
   * Counts one line. A line waiting for a DNS lookup (`resolving`) is counted in the totals and
   * its date format now, and its verdict later: the returned {@link PendingLine} goes to
   * {@link settle} with the result the lookup gave.
   */
  add(text: string, result: LineResult): PendingLine | undefined {
    const lineNo = ++this.#lines.total;
    if (result.dateFormat !== undefined) {
      // A log keeps its format: lines are counted for the current one, and the map told when it changes.
      if (result.dateFormat !== this.#format) {
        this.#flushFormat();
        this.#format = result.dateFormat;
      }
      this.#formatLines++;
    }
    if (result.kind === 'info' && result.resolving !== undefined) return { line: lineNo, text };
    this.#count(lineNo, text, result);
    return undefined;
  }

  /** The verdict of a line {@link add} left pending (its line keeps its number). */
  settle(pending: PendingLine, result: LineResult): void {
    this.#outOfOrder = true;
    this.#count(pending.line, pending.text, result);
  }

  #count(lineNo: number, text: string, result: LineResult): void {
    const lines = this.#lines;
    if (result.regexIndex !== undefined && result.kind !== 'missed') bump(this.#hits, result.regexIndex);
    switch (result.kind) {
      case 'match':
        lines.matched++;
        this.#failures += result.matches.length;
        if (this.#options.printMatched) this.#matched.push({ line: lineNo, text, failures: result.matches });
        return;
      case 'ignored':
        lines.ignored++;
        if (result.ignoreIndex !== undefined) bump(this.#ignoreHits, result.ignoreIndex);
        if (this.#options.printIgnored) this.#ignored.push({ line: lineNo, text });
        return;
      case 'info':
        lines.info++;
        return;
      case 'no-date':
        lines.noDate++;
        break;
      default:
        if (result.badHost !== undefined) lines.badHost++;
    }
    lines.missed++;
    if (this.#options.printMissed) this.#missed.push({ line: lineNo, text });
  }

  /** Lines cut to the length limit before they reached the filter. */
  set truncated(count: number) {
    this.#lines.truncated = count;
  }

  /** The counts so far, as plain data (line numbers relative to this collector's first line). */
  partial(): PartialReport {
    this.#sortLists();
    this.#flushFormat();
    return {
      lines: { ...this.#lines },
      failures: this.#failures,
      hits: [...this.#hits],
      ignoreHits: [...this.#ignoreHits],
      dates: [...this.#dates],
      matched: this.#matched,
      missed: this.#missed,
      ignored: this.#ignored,
    };
  }

  /**
   * Appends what another collector counted over the stretch of the log that follows this one's:
   * counts are summed, its line numbers shifted by the lines counted here so far.
   */
  absorb(part: PartialReport): void {
    const offset = this.#lines.total;
    const lines = this.#lines;
    for (const key of Object.keys(lines) as (keyof typeof lines)[]) lines[key] += part.lines[key];
    this.#failures += part.failures;
    part.hits.forEach((n, i) => {
      this.#hits[i] = (this.#hits[i] ?? 0) + n;
    });
    part.ignoreHits.forEach((n, i) => {
      this.#ignoreHits[i] = (this.#ignoreHits[i] ?? 0) + n;
    });
    this.#flushFormat();
    for (const [format, n] of part.dates) this.#dates.set(format, (this.#dates.get(format) ?? 0) + n);
    this.#sortLists();
    for (const entry of part.matched) this.#matched.push({ ...entry, line: entry.line + offset });
    for (const entry of part.missed) this.#missed.push({ ...entry, line: entry.line + offset });
    for (const entry of part.ignored) this.#ignored.push({ ...entry, line: entry.line + offset });
  }

  #flushFormat(): void {
    if (this.#format === undefined || this.#formatLines === 0) return;
    this.#dates.set(this.#format, (this.#dates.get(this.#format) ?? 0) + this.#formatLines);
    this.#formatLines = 0;
  }

  /** Lines settled after a lookup were listed late: put the lists back in line order. */
  #sortLists(): void {
    if (!this.#outOfOrder) return;
    this.#outOfOrder = false;
    for (const list of [this.#matched, this.#missed, this.#ignored]) list.sort((a, b) => a.line - b.line);
  }

  report(
    log: string,
    elapsedMs: number,
    run: { jobs: number; reruns: number } = { jobs: 1, reruns: 0 },
  ): LogTestReport {
    this.#sortLists();
    this.#flushFormat();
    const filter = this.#filter;
    const report: LogTestReport = {
      filter: { name: filter.name, mode: filter.mode, description: filter.description },
      log,
      lines: { ...this.#lines },
      failures: this.#failures,
      failregex: filter.failregex.map((regex, index) => ({ index, regex, hits: this.#hits[index] ?? 0 })),
      ignoreregex: filter.ignoreregex.map((regex, index) => ({
        index,
        regex,
        hits: this.#ignoreHits[index] ?? 0,
      })),
      dateFormats: Object.fromEntries([...this.#dates].sort((a, b) => b[1] - a[1])),
      elapsedMs: Math.round(elapsedMs * 1000) / 1000,
      linesPerSecond: elapsedMs > 0 ? Math.round((this.#lines.total * 1000) / elapsedMs) : 0,
      jobs: run.jobs,
      reruns: run.reruns,
    };
    if (this.#options.printMatched) report.matchedLines = this.#matched;
    if (this.#options.printMissed) report.missedLines = this.#missed;
    if (this.#options.printIgnored) report.ignoredLines = this.#ignored;
    return report;
  }
}

function bump(counts: number[], index: number): void {
  counts[index] = (counts[index] ?? 0) + 1;
}

/** The report as text, in the shape fail2ban-regex users know. */
export function formatReport(report: LogTestReport): string {
  const out: string[] = [];
  const { lines } = report;
  out.push(`Filter: ${report.filter.name} (mode ${report.filter.mode})`);
  out.push(`Log:    ${report.log}`);
  out.push('');
  const totalHits = report.failregex.reduce((sum, r) => sum + r.hits, 0);
  out.push(`Failregex: ${totalHits} total`);
  out.push('|-  #) [# of hits] regular expression');
  for (const r of report.failregex) out.push(`|  ${String(r.index).padStart(2)}) [${r.hits}] ${r.regex}`);
  out.push('`-');
  out.push('');
  const ignoreHits = report.ignoreregex.reduce((sum, r) => sum + r.hits, 0);
  out.push(`Ignoreregex: ${ignoreHits} total`);
  if (report.ignoreregex.length > 0) {
    out.push('|-  #) [# of hits] regular expression');
    for (const r of report.ignoreregex) out.push(`|  ${String(r.index).padStart(2)}) [${r.hits}] ${r.regex}`);
    out.push('`-');
  }
  out.push('');
  out.push('Date formats seen:');
  out.push('|- [# of lines] format');
  for (const [format, count] of Object.entries(report.dateFormats)) out.push(`|  [${count}] ${format}`);
  out.push('`-');
  out.push('');
  out.push(
    `Lines: ${lines.total} lines, ${lines.ignored} ignored, ${lines.matched} matched, ${lines.missed} missed`,
  );
  const notes: string[] = [];
  if (report.failures !== lines.matched)
    notes.push(`${plural(report.failures, 'failure')} in the matched lines`);
  if (lines.info > 0)
    notes.push(`${plural(lines.info, 'line')} fed multi-line sessions without a failure yet`);
  if (lines.noDate > 0) notes.push(`${plural(lines.noDate, 'missed line')} had no date`);
  if (lines.badHost > 0)
    notes.push(
      report.usedns === undefined
        ? `${plural(lines.badHost, 'missed line')} named a host that is not an IP (DNS names are not resolved)`
        : `${plural(lines.badHost, 'missed line')} named a host that is not an IP and did not resolve`,
    );
  if (lines.truncated > 0)
    notes.push(
      `${plural(lines.truncated, 'line')} ${lines.truncated === 1 ? 'was' : 'were'} cut to the length limit`,
    );
  for (const note of notes) out.push(`       (${note})`);
  const seconds = report.elapsedMs / 1000;
  const jobs =
    report.jobs > 1
      ? `, ${report.jobs} jobs${report.reruns > 0 ? ` (${plural(report.reruns, 'range')} read again for exact sessions)` : ''}`
      : '';
  out.push(
    `[processed in ${seconds.toFixed(3)} s, ${report.linesPerSecond.toLocaleString('en-US')} lines/s${jobs}]`,
  );
  const listing = (
    title: string,
    entries: { line: number; text: string; failures?: LogMatch[] }[] | undefined,
  ) => {
    if (entries === undefined) return;
    out.push('');
    out.push(`${title}: ${entries.length}`);
    for (const entry of entries) {
      const detail =
        entry.failures === undefined
          ? ''
          : `  → ${entry.failures.map((f) => [f.ip, ...Object.entries(f.fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`)].join(' ')).join('; ')}`;
      out.push(`| ${String(entry.line).padStart(7)}: ${entry.text}${detail}`);
    }
    out.push('`-');
  };
  listing('Matched lines', report.matchedLines);
  listing('Ignored lines', report.ignoredLines);
  listing('Missed lines', report.missedLines);
  return `${out.join('\n')}\n`;
}
