import type { TimeZone } from './time-zone.js';

/** Pieces shared by the built-in date formats and compiled `datepattern`s. */

/** A date found in a line. */
export interface DateMatch {
  /** The time, ms since the epoch. */
  timeMs: number;
  /** Where the text to cut out starts (brackets around the date included). */
  start: number;
  /** Where it ends (exclusive). */
  end: number;
  /** The format's name, for `portcullis test`'s "date formats seen". */
  format: string;
}

/** One date format: finds its first date in a line. */
export interface DateTemplate {
  readonly name: string;
  find(line: string, zone: TimeZone, now: () => number): DateMatch | null;
}

export const DAY_MS = 86_400_000;
/** Month abbreviations as a regex alternation. */
export const MONTHS = 'Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec';
const MONTH_INDEX: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
};

/** Month number (1-12) of an English month name or abbreviation, any case; 0 if unknown. */
export function monthNumber(name: string): number {
  return MONTH_INDEX[name.slice(0, 3).toLowerCase()] ?? 0;
}

/**
 * A wall-clock time → epoch ms, or NaN when a field is out of range. `offsetMs` is the zone the
 * text named itself (`Z`, `+0100`), `undefined` to use the log's zone.
 */
export function wallToEpochMs(
  zone: TimeZone,
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms: number,
  offsetMs: number | undefined,
): number {
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 61)
    return Number.NaN;
  if (second >= 60) second = 59; // leap second
  if (offsetMs !== undefined) return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMs;
  return zone.toEpochMs(year, month, day, hour, minute, second, ms);
}

/**
 * The time of a date written without a year: this year in the log's zone, or last year when that
 * would be more than a day after `nowMs` (a December line read in January).
 */
export function inferYear(
  zone: TimeZone,
  nowMs: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms: number,
  offsetMs: number | undefined,
): number {
  const year = new Date(nowMs + (offsetMs ?? zone.offsetMs(nowMs))).getUTCFullYear();
  const time = wallToEpochMs(zone, year, month, day, hour, minute, second, ms, offsetMs);
  if (time > nowMs + DAY_MS)
    return wallToEpochMs(zone, year - 1, month, day, hour, minute, second, ms, offsetMs);
  return time;
}

/** Fraction digits (`123`, `123456`) → milliseconds. */
export function fractionMs(digits: string | undefined): number {
  if (digits === undefined || digits === '') return 0;
  return Math.floor(Number(`0.${digits}`) * 1000 + 1e-6);
}

/** `Z`, `+0100`, `+01:00`, `-05` → ms east of UTC; `undefined` when absent or not an offset. */
export function zoneOffsetMs(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (text === 'Z' || text === 'z') return 0;
  const sign = text.charCodeAt(0) === 45 ? -1 : 1;
  const digits = text.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
  if (!Number.isFinite(hours) || !Number.isFinite(minutes) || hours > 14 || minutes > 59) return undefined;
  return sign * (hours * 60 + minutes) * 60_000;
}

type Fields = (m: RegExpExecArray, zone: TimeZone, now: () => number) => number;

/**
 * A template from a JS regex (flag `g`; built-in patterns use only bounded quantifiers, so they run
 * in linear time whatever the line). The last date text and its time are remembered: log lines
 * come in bursts within the same second.
 */
export function regexTemplate(name: string, re: RegExp, toMs: Fields): DateTemplate {
  let lastText = '';
  let lastMs = Number.NaN;
  // The previous result when its date started the line: most lines of a log start with the same
  // date text as the line before (same second), and then the regex need not run at all.
  let atStart: DateMatch | null = null;
  return {
    name,
    find(line, zone, now) {
      if (atStart !== null && line.startsWith(lastText) && decidedAt(line, lastText.length)) return atStart;
      re.lastIndex = 0;
      const m = re.exec(line);
      if (m === null) return null;
      const text = m[0];
      let timeMs: number;
      if (text === lastText) timeMs = lastMs;
      else {
        timeMs = toMs(m, zone, now);
        if (Number.isNaN(timeMs)) return null;
        lastText = text;
        lastMs = timeMs;
      }
      let start = m.index;
      let end = start + text.length;
      if (start > 0 && line.charCodeAt(start - 1) === 91 /* [ */ && line.charCodeAt(end) === 93 /* ] */) {
        start--;
        end++;
      }
      const found = { timeMs, start, end, format: name };
      atStart = start === 0 ? found : null;
      return found;
    },
  };
}

/**
 * True when the characters after a date at the start of `line` cannot change what a template
 * matches: a blank or `]` that is not followed by something a zone could start with (`Z`, `+`,
 * `-`) or a digit. Every built-in format and compiled pattern ends its optional parts before such
 * a blank, so the same leading text means the same date.
 */
function decidedAt(line: string, at: number): boolean {
  const next = line.charCodeAt(at);
  if (next !== 32 && next !== 93 && next !== 9) return false;
  const after = line.charCodeAt(at + 1);
  return !(after === 90 || after === 43 || after === 45 || (after >= 48 && after <= 57));
}
