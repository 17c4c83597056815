/**
 * Shared by the log source tests (unit and integration) and their child-process fixtures: a
 * stand-in for the regex filter engine, temporary directories and numbered log lines.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Guard, ReportOptions, ReportResult } from '../../src/guard.js';
import type { LineFilter, LineMatch, LogJailGuard, LogJails } from '../../src/sources/log/log-jail.js';
import { waitFor } from './wait-for.js';

export function makeTempDir(prefix = 'portcullis-log-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * `<ISO time> FAIL from <ip> n=<0000042>`: fixed width for a given time, so byte offsets of line n
 * are predictable. The address cycles through 192.0.2.1-250.
 */
export function numberedLine(n: number, timeMs = Date.now()): string {
  const ip = `192.0.2.${(n % 250) + 1}`;
  return `${new Date(timeMs).toISOString()} FAIL from ${ip.padEnd(11)} n=${String(n).padStart(7, '0')}\n`;
}

export function numberedLines(from: number, to: number, timeMs = Date.now()): string {
  let out = '';
  for (let n = from; n <= to; n++) out += numberedLine(n, timeMs);
  return out;
}

/** The `n=` numbers in lines, in order. */
export function numbersIn(lines: readonly string[]): number[] {
  const out: number[] = [];
  for (const line of lines) {
    const match = / n=(\d+)/.exec(line);
    if (match !== null) out.push(Number(match[1]));
  }
  return out;
}

/** Asserts-by-description: the numbers 1..n each exactly once (returns a problem or `undefined`). */
export function exactlyOnce(numbers: readonly number[], n: number): string | undefined {
  const seen = new Map<number, number>();
  for (const value of numbers) seen.set(value, (seen.get(value) ?? 0) + 1);
  const missing: number[] = [];
  const twice: number[] = [];
  for (let i = 1; i <= n; i++) {
    const count = seen.get(i) ?? 0;
    if (count === 0) missing.push(i);
    if (count > 1) twice.push(i);
  }
  const extra = [...seen.keys()].filter((value) => value < 1 || value > n);
  if (missing.length === 0 && twice.length === 0 && extra.length === 0) return undefined;
  return `missing ${missing.length} ${JSON.stringify(missing.slice(0, 10))}, duplicated ${twice.length} ${JSON.stringify(twice.slice(0, 10))}, unexpected ${JSON.stringify(extra.slice(0, 10))}`;
}

const STAND_IN = /^(?:(\d{4}-\d\d-\d\dT[\d:.]+Z) )?.*?FAIL from (\S+)(?: +n=(\d+))?/;

/**
 * A stand-in for the regex filter engine: `[<ISO time> ]...FAIL from <ip>[  n=<number>]` is a
 * failure at that time (or at `now()` when the line has no time); anything else is missed.
 */
export function standInFilter(now: () => number = Date.now): LineFilter {
  return {
    processLine(line) {
      const match = STAND_IN.exec(line);
      if (match === null) return { kind: 'missed', matches: [] };
      const fields: Record<string, string> = {};
      if (match[3] !== undefined) fields.n = match[3];
      const failure: LineMatch = {
        ip: match[2] as string,
        timeMs: match[1] === undefined ? now() : Date.parse(match[1]),
        fields,
      };
      return { kind: 'match', matches: [failure] };
    },
  };
}

export interface RecordedReport {
  ip: string;
  options: ReportOptions;
  result: ReportResult;
  /** When the report settled, ms since the epoch. */
  at: number;
}

/** Wraps a guard so that every settled `report()` is recorded, in settle order. */
export function recordingGuard(guard: Guard): LogJailGuard & { reports: RecordedReport[] } {
  const reports: RecordedReport[] = [];
  return {
    reports,
    get config() {
      return guard.config;
    },
    get positions() {
      return guard.positions;
    },
    async report(ip, options) {
      const result = await guard.report(ip, options);
      reports.push({ ip, options, result, at: Date.now() });
      return result;
    },
  };
}

/** The `n` field of each recorded report. */
export function reportedNumbers(reports: readonly RecordedReport[]): number[] {
  return reports.map((report) => Number(report.options.fields?.n));
}

/**
 * The settle point of a log jail: it has read at least `lines` lines and every failure it kept
 * (matches not too old) has been reported and settled, so its reports and stats are final.
 */
export async function logJailSettled(
  logJails: LogJails,
  jail: string,
  lines: number,
  timeoutMs = 15_000,
): Promise<void> {
  await waitFor(
    () => {
      const stats = logJails.stats()[jail];
      return (
        stats !== undefined &&
        stats.lines >= lines &&
        stats.reports + stats.errors >= stats.matches - stats.tooOld
      );
    },
    {
      timeoutMs,
      message: () =>
        `jail ${jail} to read ${lines} lines and settle (${JSON.stringify(logJails.stats()[jail])})`,
    },
  );
}
