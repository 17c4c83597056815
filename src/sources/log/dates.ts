import { compileDatePattern } from './date-pattern.js';
import {
  type DateMatch,
  type DateTemplate,
  fractionMs,
  inferYear,
  MONTHS,
  monthNumber,
  regexTemplate,
  wallToEpochMs,
  zoneOffsetMs,
} from './date-template.js';
import { parseTimeZone, type TimeZone } from './time-zone.js';

export type { DateMatch, DateTemplate } from './date-template.js';

/**
 * Finding and parsing the time of a log line.
 *
 * Built-in formats, tried in this order when several start at the same place:
 *
 * | format            | example                                              |
 * | ----------------- | ---------------------------------------------------- |
 * | RFC 5424          | `<34>1 2026-11-25T12:00:01.003Z host app ...`        |
 * | ctime             | `[Wed Nov 25 12:00:01.123456 2026]` (Apache, vsftpd) |
 * | ISO 8601          | `2026-11-25T12:00:01.123+01:00`, `2026-11-25 12:00:01`, `2015-10-07  8:25:38` |
 * | Common Log Format | `[25/Nov/2026:12:00:01 +0000]`                       |
 * | PHP               | `[25-Nov-2026 12:00:01 UTC]` (PHP, Roundcube)       |
 * | nginx error log   | `2026/11/25 12:00:01`                                |
 * | syslog            | `Nov 25 12:00:01` (the year is inferred)             |
 * | MySQL (old)       | `130324  0:04:00` (YYMMDD, at the start of the line)  |
 * | TAI64N            | `@4000000069258a210000000a` (daemontools, runit, s6) |
 * | epoch             | `1764072001`, `1764072001.123`, `1764072001123` at the start of the line |
 *
 * The date used is the first one in the line; to keep this cheap the format that matched the
 * previous line is tried first and, when it finds a date, that date is used (fail2ban does the
 * same). A `datepattern` (strftime style, see {@link compileDatePattern}) replaces detection.
 *
 * The matched text is then cut out of the line, with the `[...]` around it when there are any, and
 * what remains is what filters see: `Nov 25 12:00:01 host sshd[1]: msg` becomes `host sshd[1]: msg`,
 * `1.2.3.4 - - [25/Nov/2026:12:00:01 +0000] "GET / ..."` becomes `1.2.3.4 - - "GET / ..."`. A JSON
 * value keeps its quotes: `{"time":"2026-...Z","ip":...}` becomes `{"time":"","ip":...}`.
 */

export interface DateDetectorOptions {
  /**
   * strftime-style pattern used instead of detection, e.g. `%Y-%m-%d %H:%M:%S`. Several patterns,
   * one a line, are alternatives (the earliest date in the line wins); a `{DEFAULT}` line is the
   * built-in detection (what a fail2ban filter's datepattern list becomes).
   */
  datepattern?: string | undefined;
  /** Zone of times written without one: `UTC`, `+0100`, `Europe/Berlin`. Default the host's zone. */
  logtimezone?: string | undefined;
  /** Reference clock for year inference (ms). Default `Date.now`. */
  now?: (() => number) | undefined;
}

export interface DateDetector {
  /** The zone used for zone-less times. */
  readonly zone: TimeZone;
  /** The first date in `line`, or `null`. */
  find(line: string): DateMatch | null;
}

/** Creates a detector. Throws `ConfigError` for a bad `datepattern` or `logtimezone`. */
export function createDateDetector(options: DateDetectorOptions = {}): DateDetector {
  const zone = parseTimeZone(options.logtimezone);
  const now = options.now ?? Date.now;
  if (options.datepattern?.includes('\n')) {
    const finders = [...new Set(options.datepattern.split('\n').filter((line) => line !== ''))].map((line) =>
      createDateDetector({ ...options, datepattern: line === '{DEFAULT}' ? undefined : line }),
    );
    return {
      zone,
      find(line) {
        let best: DateMatch | null = null;
        for (const finder of finders) {
          const found = finder.find(line);
          if (found !== null && (best === null || found.start < best.start)) best = found;
        }
        return best;
      },
    };
  }
  if (options.datepattern !== undefined && options.datepattern !== '') {
    const template = compileDatePattern(options.datepattern);
    return { zone, find: (line) => template.find(line, zone, now) };
  }
  const templates = BUILT_IN_TEMPLATES.map((factory) => factory());
  let last: DateTemplate | undefined;
  return {
    zone,
    find(line) {
      let best: DateMatch | null = null;
      let bestTemplate: DateTemplate | undefined;
      let text = line;
      if (last !== undefined) {
        best = last.find(line, zone, now);
        if (best !== null) {
          // Nothing can start before the line does. Otherwise only a date starting before this
          // one could win, and dates are short: the text up to a little past this one's start.
          if (best.start === 0) return best;
          bestTemplate = last;
          if (!earlierDateMayStart(line, best.start)) return best;
          if (line.length > best.start + LONGEST_DATE) text = line.slice(0, best.start + LONGEST_DATE);
        }
      }
      for (const template of templates) {
        if (template === last) continue;
        const found = template.find(text, zone, now);
        if (found !== null && (best === null || found.start < best.start)) {
          best = found;
          bestTemplate = template;
          if (found.start === 0) break;
        }
      }
      if (bestTemplate !== undefined) last = bestTemplate;
      return best;
    },
  };
}

/**
 * The line without its date: the date text (and brackets around it) cut out, the two sides joined
 * by one space when the date was separated from them by whitespace, else directly.
 */
export function stripDate(line: string, match: DateMatch): string {
  const { start, end } = match;
  if (start === 0) {
    let from = end;
    while (from < line.length && isSpace(line.charCodeAt(from))) from++;
    return line.slice(from);
  }
  let before = start;
  while (before > 0 && isSpace(line.charCodeAt(before - 1))) before--;
  let after = end;
  while (after < line.length && isSpace(line.charCodeAt(after))) after++;
  if (after === line.length) return line.slice(0, before);
  const spaced = before < start || after > end;
  return spaced ? `${line.slice(0, before)} ${line.slice(after)}` : line.slice(0, before) + line.slice(after);
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

/**
 * What every built-in format's date starts with (a superset: `<1`, `@4`, `2026-11-25`, `25/Nov/2026`,
 * `130324 `, ten digits, a day or month name and a blank). A date found at `start` can only lose to
 * one starting earlier, whose first characters then occur before `start` (or at it, when the earlier
 * date is that one in brackets): one scan instead of one regex per format (access logs put the
 * date after the client's address, so every line would pay for all of them).
 */
const NAMES = new Set(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun', ...MONTHS.split('|')]);
const MONTH_NAMES = new Set(MONTHS.split('|'));

function earlierDateMayStart(line: string, start: number): boolean {
  // An earlier date in brackets has its first characters at `start` itself.
  const last = start > 0 && line.charCodeAt(start - 1) === 91 /* [ */ ? start : start - 1;
  for (let i = 0; i <= last; i++) if (dateMayStartAt(line, i)) return true;
  return false;
}

function dateMayStartAt(line: string, i: number): boolean {
  const c = line.charCodeAt(i);
  if (c === 60 /* < */) return isDigit(line.charCodeAt(i + 1));
  if (c === 64 /* @ */) return line.charCodeAt(i + 1) === 52; /* 4 */
  if (c >= 65 && c <= 90) return line.charCodeAt(i + 3) === 32 && NAMES.has(line.slice(i, i + 3));
  if (!isDigit(c)) return false;
  let digits = 1;
  while (digits < 10 && isDigit(line.charCodeAt(i + digits))) digits++;
  if (digits >= 10) return true;
  const after = line.charCodeAt(i + digits);
  if (digits === 6 && after === 32) return true;
  if (digits === 4 && isDash(after))
    return (
      isDigit(line.charCodeAt(i + 5)) &&
      isDigit(line.charCodeAt(i + 6)) &&
      isDash(line.charCodeAt(i + 7)) &&
      isDigit(line.charCodeAt(i + 8)) &&
      isDigit(line.charCodeAt(i + 9))
    );
  // dd/Mon/yyyy, dd-Mon-yyyy
  if (digits === 2 && isDash(after))
    return isDash(line.charCodeAt(i + 6)) && MONTH_NAMES.has(line.slice(i + 3, i + 6));
  return false;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isDash(code: number): boolean {
  return code === 45 || code === 47; // - /
}

/** Longer than any built-in date with its brackets and the character after it. */
const LONGEST_DATE = 64;

const n = (text: string | undefined): number => (text === undefined ? 0 : Number(text));

/** Factories, so every detector has its own per-template cache. Order = priority at equal start. */
const BUILT_IN_TEMPLATES: readonly (() => DateTemplate)[] = [
  () =>
    regexTemplate(
      'RFC 5424',
      /^<\d{1,3}>1 (\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})(?= |$)/g,
      (m, zone) =>
        wallToEpochMs(
          zone,
          n(m[1]),
          n(m[2]),
          n(m[3]),
          n(m[4]),
          n(m[5]),
          n(m[6]),
          fractionMs(m[7]),
          zoneOffsetMs(m[8]),
        ),
    ),
  () =>
    regexTemplate(
      'ctime (Www MMM dd HH:MM:SS YYYY)',
      new RegExp(
        `(?<![A-Za-z])(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${MONTHS}) ([ \\d]?\\d) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))? (\\d{4})(?!\\d)`,
        'g',
      ),
      (m, zone) =>
        wallToEpochMs(
          zone,
          n(m[7]),
          monthNumber(m[1] as string),
          n(m[2]),
          n(m[3]),
          n(m[4]),
          n(m[5]),
          fractionMs(m[6]),
          undefined,
        ),
    ),
  () =>
    regexTemplate(
      'ISO 8601',
      // `T` and two hour digits, or one or two blanks and one or two digits (`2015-10-07  8:25:38`).
      /(?<!\d)(\d{4})-(\d{2})-(\d{2})(?:T(?=\d{2})| {1,2})(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?: ?(Z|[+-]\d{2}(?::?\d{2})?)(?!\d)|(?![\d:]))/g,
      (m, zone) =>
        wallToEpochMs(
          zone,
          n(m[1]),
          n(m[2]),
          n(m[3]),
          n(m[4]),
          n(m[5]),
          n(m[6]),
          fractionMs(m[7]),
          zoneOffsetMs(m[8]),
        ),
    ),
  () =>
    regexTemplate(
      'Common Log Format (dd/MMM/YYYY:HH:MM:SS zone)',
      new RegExp(
        `(?<!\\d)(\\d{2})/(${MONTHS})/(\\d{4}):(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?(?: ([+-]\\d{4}))?(?!\\d)`,
        'g',
      ),
      (m, zone) =>
        wallToEpochMs(
          zone,
          n(m[3]),
          monthNumber(m[2] as string),
          n(m[1]),
          n(m[4]),
          n(m[5]),
          n(m[6]),
          fractionMs(m[7]),
          zoneOffsetMs(m[8]),
        ),
    ),
  () =>
    // PHP's error_log and applications built on it (Roundcube, Nextcloud's PHP log):
    // `[25-Nov-2026 12:00:01 UTC]`, `[25-Nov-2026 12:00:01 +0100]`; a zone name other than UTC
    // means the log's zone.
    regexTemplate(
      'PHP (dd-MMM-YYYY HH:MM:SS zone)',
      new RegExp(
        `(?<![\\d-])(\\d{2})-(${MONTHS})-(\\d{4}) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?(?: ([+-]\\d{4}|UTC|GMT|[A-Z][a-z]{1,20}/[A-Za-z_]{1,30}(?:/[A-Za-z_]{1,30})?))?(?![\\d:])`,
        'g',
      ),
      (m, zone) =>
        wallToEpochMs(
          zone,
          n(m[3]),
          monthNumber(m[2] as string),
          n(m[1]),
          n(m[4]),
          n(m[5]),
          n(m[6]),
          fractionMs(m[7]),
          m[8] === 'UTC' || m[8] === 'GMT' ? 0 : zoneOffsetMs(m[8]),
        ),
    ),
  () =>
    regexTemplate(
      'nginx error log (YYYY/MM/DD HH:MM:SS)',
      /(?<!\d)(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?!\d)/g,
      (m, zone) => wallToEpochMs(zone, n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5]), n(m[6]), 0, undefined),
    ),
  () =>
    regexTemplate(
      'syslog (MMM dd HH:MM:SS)',
      new RegExp(
        `(?<![A-Za-z])(${MONTHS}) ([ \\d]?\\d) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,6}))?(?![\\d:])`,
        'g',
      ),
      (m, zone, now) =>
        inferYear(
          zone,
          now(),
          monthNumber(m[1] as string),
          n(m[2]),
          n(m[3]),
          n(m[4]),
          n(m[5]),
          fractionMs(m[6]),
          undefined,
        ),
    ),
  () =>
    // MySQL 5.x and older: `130324  0:04:00` (YYMMDD, one or two blanks, H:MM:SS) at the line start.
    regexTemplate(
      'MySQL (YYMMDD H:MM:SS)',
      /^(\d{2})(\d{2})(\d{2}) {1,2}(\d{1,2}):(\d{2}):(\d{2})(?![\d:])/g,
      (m, zone) =>
        wallToEpochMs(zone, 2000 + n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5]), n(m[6]), 0, undefined),
    ),
  () =>
    // daemontools / runit / s6: `@4000000052f1c2d41b4f3c9c`, TAI64N at the start of the line.
    regexTemplate('TAI64N', /^@(4[0-9a-f]{15})([0-9a-f]{8})(?=\s|$)/g, (m) =>
      tai64nMs(m[1] as string, m[2] as string),
    ),
  () =>
    startsWithDigit(
      regexTemplate('epoch', /(?<=^\[?)(\d{10}|\d{13})(?:\.(\d{1,9}))?(?=\]|\s|$)/g, (m) => {
        const digits = m[1] as string;
        return digits.length === 13 ? Number(digits) : Number(digits) * 1000 + fractionMs(m[2]);
      }),
    ),
];

/**
 * TAI64N label (16 hex digits: 2^62 + TAI seconds) and nanoseconds (8 hex digits) → Unix ms. The
 * writers (daemontools' `tai64n`, runit's svlogd, s6-log) label Unix time + 10 s and keep no
 * leap-second table, so taking 10 s off gives back the Unix time they read.
 */
export function tai64nMs(label: string, nanos: string): number {
  // The label minus 2^62: the last 15 hex digits when the first is 4 (the regex makes sure).
  const seconds = Number.parseInt(label.slice(1), 16) - 10;
  return seconds * 1000 + Math.floor(Number.parseInt(nanos, 16) / 1e6);
}

/**
 * A template whose dates start the line (after an optional `[`): lines that do not start with a
 * digit are not scanned at all (a look-behind anchor still makes the JS engine try every place).
 */
function startsWithDigit(template: DateTemplate): DateTemplate {
  return {
    name: template.name,
    find(line, zone, now) {
      let code = line.charCodeAt(0);
      if (code === 91 /* [ */) code = line.charCodeAt(1);
      return code >= 48 && code <= 57 ? template.find(line, zone, now) : null;
    },
  };
}

/** Names of the built-in formats, in priority order. */
export const BUILT_IN_DATE_FORMATS: readonly string[] = BUILT_IN_TEMPLATES.map((factory) => factory().name);
