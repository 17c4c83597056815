import { compileDatePattern } from './date-pattern.js';
import {
  type DateMatch,
  fractionMs,
  inferYear,
  MONTHS,
  monthNumber,
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
 * | epoch             | `1764072001`, `1764072001.123`, `1764072001123` at the start of the line; `msg=audit(1764072001.123:401)` in an audit log line |
 *
 * The date used is the first one in the line, whatever format matched the line before (one scan
 * of the places a date can start, see `builtInDetector`). A `datepattern` (strftime style, see
 * {@link compileDatePattern}) replaces detection.
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
  return builtInDetector(zone, now);
}

/**
 * Where the line without its date comes from: `line[0, before)`, then `sep`, then
 * `line[after, length)`. `sep` is `' '` only when both sides are there.
 */
export interface DateCut {
  before: number;
  sep: '' | ' ';
  after: number;
}

/**
 * The line without its date: the date text (and brackets around it) cut out, the two sides joined
 * by one space when the date was separated from them by whitespace, else directly.
 */
export function stripDate(line: string, match: DateMatch): string {
  return cutText(line, stripCut(line, match, { before: 0, sep: '', after: 0 }));
}

/** {@link stripDate}'s cut, written into `into` (a filter reuses one object for every line). */
export function stripCut(line: string, match: DateMatch, into: DateCut): DateCut {
  const { start, end } = match;
  let after = end;
  while (after < line.length && isSpace(line.charCodeAt(after))) after++;
  if (start === 0) {
    into.before = 0;
    into.sep = '';
    into.after = after;
    return into;
  }
  let before = start;
  while (before > 0 && isSpace(line.charCodeAt(before - 1))) before--;
  into.before = before;
  if (after === line.length) {
    into.sep = '';
    into.after = after;
    return into;
  }
  into.sep = before < start || after > end ? ' ' : '';
  into.after = after;
  return into;
}

/** The text a cut describes. */
export function cutText(line: string, cut: DateCut): string {
  if (cut.before === 0) return line.slice(cut.after);
  if (cut.after >= line.length) return line.slice(0, cut.before);
  return cut.sep === ''
    ? line.slice(0, cut.before) + line.slice(cut.after)
    : `${line.slice(0, cut.before)} ${line.slice(cut.after)}`;
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

type Fields = (m: RegExpExecArray, zone: TimeZone, now: () => number) => number;

/** A built-in format: its regex (flag `g`, bounded quantifiers only) and how a match becomes ms. */
export interface DateFormatSpec {
  readonly name: string;
  readonly re: RegExp;
  readonly toMs: Fields;
}

const n = (text: string | undefined): number => (text === undefined ? 0 : Number(text));

/** Order = priority at equal start (no two formats can start a date at the same place anyway). */
export const BUILT_IN_DATE_SPECS: readonly DateFormatSpec[] = [
  {
    name: 'RFC 5424',
    re: /^<\d{1,3}>1 (\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})(?= |$)/g,
    toMs: (m, zone) =>
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
  },
  {
    name: 'ctime (Www MMM dd HH:MM:SS YYYY)',
    re: new RegExp(
      `(?<![A-Za-z])(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${MONTHS}) ([ \\d]?\\d) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))? (\\d{4})(?!\\d)`,
      'g',
    ),
    toMs: (m, zone) =>
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
  },
  {
    name: 'ISO 8601',
    // `T` and two hour digits, or one or two blanks and one or two digits (`2015-10-07  8:25:38`).
    re: /(?<!\d)(\d{4})-(\d{2})-(\d{2})(?:T(?=\d{2})| {1,2})(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?: ?(Z|[+-]\d{2}(?::?\d{2})?)(?!\d)|(?![\d:]))/g,
    toMs: (m, zone) =>
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
  },
  {
    name: 'Common Log Format (dd/MMM/YYYY:HH:MM:SS zone)',
    re: new RegExp(
      `(?<!\\d)(\\d{2})/(${MONTHS})/(\\d{4}):(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?(?: ([+-]\\d{4}))?(?!\\d)`,
      'g',
    ),
    toMs: (m, zone) =>
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
  },
  {
    // PHP's error_log and applications built on it (Roundcube, Nextcloud's PHP log):
    // `[25-Nov-2026 12:00:01 UTC]`, `[25-Nov-2026 12:00:01 +0100]`; a zone name other than UTC
    // means the log's zone.
    name: 'PHP (dd-MMM-YYYY HH:MM:SS zone)',
    re: new RegExp(
      `(?<![\\d-])(\\d{2})-(${MONTHS})-(\\d{4}) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,9}))?(?: ([+-]\\d{4}|UTC|GMT|[A-Z][a-z]{1,20}/[A-Za-z_]{1,30}(?:/[A-Za-z_]{1,30})?))?(?![\\d:])`,
      'g',
    ),
    toMs: (m, zone) =>
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
  },
  {
    name: 'nginx error log (YYYY/MM/DD HH:MM:SS)',
    re: /(?<!\d)(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?!\d)/g,
    toMs: (m, zone) =>
      wallToEpochMs(zone, n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5]), n(m[6]), 0, undefined),
  },
  {
    name: 'syslog (MMM dd HH:MM:SS)',
    re: new RegExp(
      `(?<![A-Za-z])(${MONTHS}) ([ \\d]?\\d) (\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d{1,6}))?(?![\\d:])`,
      'g',
    ),
    toMs: (m, zone, now) =>
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
  },
  {
    // MySQL 5.x and older: `130324  0:04:00` (YYMMDD, one or two blanks, H:MM:SS) at the line start.
    name: 'MySQL (YYMMDD H:MM:SS)',
    re: /^(\d{2})(\d{2})(\d{2}) {1,2}(\d{1,2}):(\d{2}):(\d{2})(?![\d:])/g,
    toMs: (m, zone) =>
      wallToEpochMs(zone, 2000 + n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5]), n(m[6]), 0, undefined),
  },
  {
    // daemontools / runit / s6: `@4000000052f1c2d41b4f3c9c`, TAI64N at the start of the line.
    name: 'TAI64N',
    re: /^@(4[0-9a-f]{15})([0-9a-f]{8})(?=\s|$)/g,
    toMs: (m) => tai64nMs(m[1] as string, m[2] as string),
  },
  {
    // At the start of the line, after an optional `[`; or in the Linux audit log's own lines
    // (`type=USER_AUTH msg=audit(1722780001.123:401): ...`, SELinux), before the `:serial)`.
    name: 'epoch',
    re: /(?:(?<=^\[?)(\d{10}|\d{13})(?:\.(\d{1,9}))?(?=\]|\s|$)|(?<=^type=\S+ msg=audit\()(\d{10}|\d{13})(?:\.(\d{1,9}))?(?=:\d+\)))/g,
    toMs: (m) => {
      const digits = (m[1] ?? m[3]) as string;
      return digits.length === 13 ? Number(digits) : Number(digits) * 1000 + fractionMs(m[2] ?? m[4]);
    },
  },
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

/** Names of the built-in formats, in priority order. */
export const BUILT_IN_DATE_FORMATS: readonly string[] = BUILT_IN_DATE_SPECS.map((spec) => spec.name);

// Bits of the formats in BUILT_IN_DATE_SPECS, same order.
const RFC5424 = 1 << 0;
const CTIME = 1 << 1;
const ISO = 1 << 2;
const CLF = 1 << 3;
const PHP = 1 << 4;
const NGINX = 1 << 5;
const SYSLOG = 1 << 6;
const MYSQL = 1 << 7;
const TAI64N = 1 << 8;
const EPOCH = 1 << 9;

/** Three-letter names (`Mon`, `Nov`) as `c0 << 16 | c1 << 8 | c2` → the format they can start. */
const NAME_STARTS = new Map<number, number>();
for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']) NAME_STARTS.set(nameKey(day, 0), CTIME);
for (const month of MONTHS.split('|')) NAME_STARTS.set(nameKey(month, 0), SYSLOG);

/** Starts of dates remembered one by one (see tryAt). */
const RECENT_STARTS = 64;

/**
 * The ends of the places a date can start past a line's first characters (see find): two digits
 * and `-` or `/` (the end of a run of two or four), or a capitalised name of three letters and a
 * blank (not part of the match: every match is 3 characters long).
 */
const PLACES = /[0-9][0-9][-/]|[A-Z][a-z][a-z](?= )/g;

/** An audit log line's start, to its epoch (see the epoch format). */
const AUDIT = /type=\S+ msg=audit\(/y;
/** The epoch format's index in BUILT_IN_DATE_SPECS. */
const EPOCH_INDEX = 9;

function nameKey(text: string, at: number): number {
  return (text.charCodeAt(at) << 16) | (text.charCodeAt(at + 1) << 8) | text.charCodeAt(at + 2);
}

/**
 * The built-in detection: the date of the line is the one that starts first (the formats cannot
 * start one at the same place). Rather than running every format's regex over the line, one scan
 * visits the places a date can start at all, from the left, and tries there, with a sticky regex,
 * only the formats that can start there:
 *
 * - a run of digits (dates never start inside one: every format has `(?<!\d)` or is anchored):
 *   4 digits and `-` (ISO 8601) or `/` (nginx), 2 digits and `/` (Common Log Format) or `-` (PHP);
 *   at the line's start also 6 digits and a blank (MySQL), 10 or 13 digits (epoch, also after `[`);
 * - a capitalised word of three letters and a blank, not preceded by a letter: a weekday (ctime) or
 *   a month (syslog);
 * - `<` (RFC 5424) or `@` (TAI64N) starting the line.
 *
 * Everything else (an access log's client address, words, punctuation) is passed over. The first
 * place where a format matches is that format's first date, and no format matched earlier: the
 * date of the line, as if every regex had been run over the whole line. A format whose first date
 * is not a real time (month 13) finds no date in the line, as before.
 *
 * Each format remembers its last date text and time: most lines carry the previous line's date
 * text (same second), and when the line holds it at the place being tried, followed by a character
 * that ends the format's regex there (see {@link endsAt}), that is the regex's match without
 * running it: one comparison, no regex.
 */
function builtInDetector(zone: TimeZone, now: () => number): DateDetector {
  const formats = BUILT_IN_DATE_SPECS.map((spec) => ({
    name: spec.name,
    sticky: new RegExp(spec.re.source, 'y'),
    toMs: spec.toMs,
    lastText: '',
    lastMs: Number.NaN,
  }));
  // The last date returned (returned again, the same object, while nothing changes), and its format.
  let previous: DateMatch | null = null;
  let previousIndex = 0;
  // The last date returned at each start (up to RECENT_STARTS; beyond, one slot), and its format.
  const recent: (DateMatch | undefined)[] = new Array(RECENT_STARTS + 1).fill(undefined);
  const recentIndex = new Int32Array(RECENT_STARTS + 1);

  /**
   * The date of format `index` at `at`: a match, `null` when there is none there, or `false` when
   * there is one but it is not a real time (the format then finds nothing in the line).
   */
  const tryAt = (index: number, line: string, at: number): DateMatch | null | false => {
    const format = formats[index] as (typeof formats)[number];
    const known = format.lastText;
    let end = at + known.length;
    let timeMs: number;
    const cached = known !== '' && holdsAt(line, known, at) && endsAt(index, line, at, end);
    const parsed = cached ? ASK : parseFast(index, line, at, zone, now);
    if (cached) timeMs = format.lastMs;
    else if (parsed !== ASK) {
      // The format's regex, written out by hand for its common shapes (no match object, no
      // substrings); anything unusual was left to the regex (ASK).
      if (parsed === NO_MATCH) return null;
      if (parsed === NOT_A_TIME) return false;
      end = fastEnd;
      timeMs = fastMs;
      format.lastText = line.slice(at, end);
      format.lastMs = timeMs;
    } else {
      const re = format.sticky;
      re.lastIndex = at;
      const m = re.exec(line);
      if (m === null) return null;
      const text = m[0];
      end = at + text.length;
      if (text === known) timeMs = format.lastMs;
      else {
        timeMs = format.toMs(m, zone, now);
        if (Number.isNaN(timeMs)) return false;
        format.lastText = text;
        format.lastMs = timeMs;
      }
    }
    let start = at;
    if (start > 0 && line.charCodeAt(start - 1) === 91 /* [ */ && line.charCodeAt(end) === 93 /* ] */) {
      start--;
      end++;
    }
    // The same date at the same place as a recent line (an access log's date moves with the
    // length of the client's address): the same object again, no new one.
    const slot = Math.min(start, RECENT_STARTS);
    const last = recent[slot];
    if (
      last !== undefined &&
      last.start === start &&
      last.end === end &&
      last.timeMs === timeMs &&
      recentIndex[slot] === index
    ) {
      previous = last;
      previousIndex = index;
      return last;
    }
    previous = { timeMs, start, end, format: format.name };
    previousIndex = index;
    recent[slot] = previous;
    recentIndex[slot] = index;
    return previous;
  };

  return {
    zone,
    find(line) {
      // The previous line's date started the line (syslog, ISO 8601, error logs) and this one
      // starts with the same text: nothing can start before it.
      const last = previous;
      if (last !== null && last.start === 0) {
        const index = previousIndex;
        const known = (formats[index] as (typeof formats)[number]).lastText;
        if (last.end === known.length && holdsAt(line, known, 0) && endsAt(index, line, 0, last.end))
          return last;
      }
      const length = line.length;
      // Formats whose first date in this line turned out not to be a real time.
      let dead = 0;
      let i = 0;
      // An audit log line's epoch, tried when the scan reaches it (no other date started before).
      let audit = -1;
      if (line.charCodeAt(0) === 116 /* t */) {
        AUDIT.lastIndex = 0;
        if (AUDIT.test(line)) audit = AUDIT.lastIndex;
      }
      while (i < length) {
        if (i > 1 && audit >= i) {
          PLACES.lastIndex = i;
          const place = PLACES.test(line) ? PLACES.lastIndex - 3 : length;
          if (audit < place) {
            // No date place before it: nothing else can start a date before the epoch.
            const found = tryAt(EPOCH_INDEX, line, audit);
            if (found !== null && found !== false) return found;
            if (found === false) dead |= EPOCH;
            audit = -1;
          }
        }
        if (i > 1) {
          // Past the places where a date can only start the line (or follow a leading `[`), a
          // date starts a run of two or four digits followed by `-` or `/`, or a three-letter
          // name and a blank: the regex engine finds the next such ending (a superset: runs of
          // other lengths, names preceded by a letter or not in the list) faster than a loop.
          PLACES.lastIndex = i;
          if (!PLACES.test(line)) return null;
          const found = PLACES.lastIndex - 3;
          if (isDigit(line.charCodeAt(found))) {
            // Back to the start of the run of digits (the run's end is the match's).
            i = found;
            while (i > 0 && isDigit(line.charCodeAt(i - 1))) i--;
          } else if (isLetter(line.charCodeAt(found - 1))) {
            // Inside a run of letters: not a place a date starts.
            i = found + 3;
            continue;
          } else i = found;
        }
        const c = line.charCodeAt(i);
        let may = 0;
        let next = i + 1;
        if (c >= 48 && c <= 57) {
          while (next < length && isDigit(line.charCodeAt(next))) next++;
          const run = next - i;
          const after = line.charCodeAt(next);
          if (run === 4) may = after === 45 ? ISO : after === 47 ? NGINX : 0;
          else if (run === 2) may = after === 47 ? CLF : after === 45 ? PHP : 0;
          else if (i === 0 && run === 6 && after === 32) may = MYSQL;
          if ((run === 10 || run === 13) && (i === 0 || (i === 1 && line.charCodeAt(0) === 91))) may |= EPOCH;
        } else if (isLetter(c)) {
          // `i` starts a run of letters (runs are skipped whole), as the look-behinds require.
          if (c <= 90 && line.charCodeAt(i + 3) === 32) may = NAME_STARTS.get(nameKey(line, i)) ?? 0;
          while (next < length && isLetter(line.charCodeAt(next))) next++;
        } else if (i === 0) {
          if (c === 60 /* < */) may = RFC5424;
          else if (c === 64 /* @ */) may = TAI64N;
        }
        may &= ~dead;
        while (may !== 0) {
          const bit = may & -may;
          may ^= bit;
          const found = tryAt(31 - Math.clz32(bit), line, i);
          if (found === false) dead |= bit;
          else if (found !== null) return found;
        }
        i = next;
      }
      return null;
    },
  };
}

/** Lines longer than this past the place tried are compared by a copy (see holdsAt). */
const SEARCH_MAX = 256;

/**
 * True when `line` holds `text` (not empty) at `at`. The last character first (a new second
 * changes it); then a search starting at `at`, which finds the text there at once without the
 * copy a slice makes (~20 ns less a line). A search that does not find it there goes on through
 * the line: past SEARCH_MAX characters a slice is compared instead.
 */
function holdsAt(line: string, text: string, at: number): boolean {
  const last = text.length - 1;
  if (line.charCodeAt(at + last) !== text.charCodeAt(last)) return false;
  if (line.length - at > SEARCH_MAX) return line.slice(at, at + text.length) === text;
  return line.indexOf(text, at) === at;
}

/**
 * True when format `index`'s regex, tried at `start` in `line` where the line holds a text the
 * regex matched before (`start` to `end`), matches exactly that text again: the look-behind holds
 * (the scan only tries places where it does, but PHP's also refuses a `-`), and the character at
 * `end` (NaN past the line's end) can neither continue an optional part of the format nor fail its
 * closing look-ahead. Anything else is left to the regex.
 */
function endsAt(index: number, line: string, start: number, end: number): boolean {
  const c = line.charCodeAt(end);
  if (index === EPOCH_INDEX && start > 1) {
    // An audit log line's epoch: (?=:\d+\)).
    let k = end + 1;
    if (c !== 58 || !isDigit(line.charCodeAt(k))) return false;
    while (isDigit(line.charCodeAt(k))) k++;
    return line.charCodeAt(k) === 41;
  }
  if (Number.isNaN(c)) return true;
  switch (index) {
    case 0: // RFC 5424: (?= |$)
      return c === 32;
    case 1: // ctime: (\d{4})(?!\d)
    case 5: // nginx: (\d{2})(?!\d)
      return !isDigit(c);
    case 2: // ISO 8601: optional fraction [.,]\d, zone ` ?(Z|[+-]..)`, then (?![\d:]) or (?!\d)
      return (
        !isDigit(c) &&
        c !== 46 &&
        c !== 44 &&
        c !== 58 &&
        c !== 90 &&
        c !== 43 &&
        c !== 45 &&
        (c !== 32 || !zoneMayStart(line.charCodeAt(end + 1)))
      );
    case 3: // Common Log Format: optional .fraction, ` [+-]\d{4}`, then (?!\d)
      return !isDigit(c) && c !== 46 && (c !== 32 || !zoneMayStart(line.charCodeAt(end + 1)));
    case 4: // PHP: (?<![\d-]), optional .fraction, zone ` +0100| UTC| Europe/Berlin`, then (?![\d:])
      if (start > 0 && line.charCodeAt(start - 1) === 45) return false;
      return (
        c === 93 ||
        (c === 32 && !zoneMayStart(line.charCodeAt(end + 1)) && !isLetter(line.charCodeAt(end + 1)))
      );
    case 6: // syslog: optional .fraction, then (?![\d:])
      return !isDigit(c) && c !== 46 && c !== 58;
    case 7: // MySQL: (?![\d:])
      return !isDigit(c) && c !== 58;
    case 8: // TAI64N: (?=\s|$)
      return c === 32 || c === 9;
    case 9: // epoch at the line's start: optional .fraction, then (?=\]|\s|$)
      return c === 93 || c === 32 || c === 9;
    default:
      return false;
  }
}

// What parseFast says: the regex must decide, the format has no date here, it has one that is not
// a real time, or it has one (its end and time in fastEnd and fastMs).
const ASK = 0;
const NO_MATCH = 1;
const NOT_A_TIME = 2;
const MATCHED = 3;
let fastEnd = 0;
let fastMs = 0;

/** Month abbreviations as written in the formats' regexes (`Oct`, not `OCT`) → 1-12. */
const MONTH_OF = new Map<number, number>(MONTHS.split('|').map((name, i) => [nameKey(name, 0), i + 1]));

/** The number written by the two digits at `at`, or -1. */
function two(line: string, at: number): number {
  const a = line.charCodeAt(at) - 48;
  const b = line.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** `HH:MM:SS` at `at` as `[h, m, s]` into `hms`, or false. */
function clock(line: string, at: number, hms: number[]): boolean {
  const h = two(line, at);
  const m = two(line, at + 3);
  const sec = two(line, at + 6);
  if (h < 0 || m < 0 || sec < 0 || line.charCodeAt(at + 2) !== 58 || line.charCodeAt(at + 5) !== 58)
    return false;
  hms[0] = h;
  hms[1] = m;
  hms[2] = sec;
  return true;
}
const HMS = [0, 0, 0];

/**
 * The regex of format `index` (ISO 8601, Common Log Format, syslog) tried at `at`, by hand, for
 * the shapes logs really write: the same end and the same time as the regex and its `toMs`, or
 * ASK for anything else (a fraction, a zone after a blank, a digit where the regex would
 * backtrack), and then the regex runs. The scan only calls this where the format's look-behind
 * holds. The differential tests hold it to the regexes.
 */
function parseFast(index: number, line: string, at: number, zone: TimeZone, now: () => number): number {
  if (index === 3) {
    // Common Log Format: dd/MMM/YYYY:HH:MM:SS, then ` +0000` or nothing, then no digit.
    const day = two(line, at);
    const month = MONTH_OF.get(nameKey(line, at + 3));
    const century = two(line, at + 7);
    const year = two(line, at + 9);
    if (
      day < 0 ||
      month === undefined ||
      century < 0 ||
      year < 0 ||
      line.charCodeAt(at + 2) !== 47 ||
      line.charCodeAt(at + 6) !== 47 ||
      line.charCodeAt(at + 11) !== 58 ||
      !clock(line, at + 12, HMS)
    )
      return ASK;
    let end = at + 20;
    let offsetMs: number | undefined;
    const c = line.charCodeAt(end);
    if (c === 46 || isDigit(c)) return ASK;
    if (c === 32) {
      const sign = line.charCodeAt(end + 1);
      if (sign === 43 || sign === 45) {
        const hours = two(line, end + 2);
        const minutes = two(line, end + 4);
        if (hours < 0 || minutes < 0 || isDigit(line.charCodeAt(end + 6))) return ASK;
        offsetMs = zoneOffsetMs(line.slice(end + 1, end + 6));
        end += 6;
      }
    }
    const ms = wallToEpochMs(
      zone,
      century * 100 + year,
      month,
      day,
      HMS[0] as number,
      HMS[1] as number,
      HMS[2] as number,
      0,
      offsetMs,
    );
    if (Number.isNaN(ms)) return NOT_A_TIME;
    fastEnd = end;
    fastMs = ms;
    return MATCHED;
  }
  if (index === 6) {
    // syslog: MMM, a blank, the day as ` 3`, `3` or `13`, a blank, HH:MM:SS, then no `.`, digit or `:`.
    const month = MONTH_OF.get(nameKey(line, at));
    if (month === undefined || line.charCodeAt(at + 3) !== 32) return ASK;
    const d0 = line.charCodeAt(at + 4);
    const d1 = line.charCodeAt(at + 5);
    let day: number;
    let p: number;
    if (d0 === 32 && isDigit(d1)) {
      day = d1 - 48;
      p = at + 6;
    } else if (isDigit(d0) && isDigit(d1)) {
      day = (d0 - 48) * 10 + d1 - 48;
      p = at + 6;
    } else if (isDigit(d0) && d1 === 32) {
      day = d0 - 48;
      p = at + 5;
    } else return ASK;
    if (line.charCodeAt(p) !== 32 || !clock(line, p + 1, HMS)) return ASK;
    const end = p + 9;
    const c = line.charCodeAt(end);
    if (c === 46 || c === 58 || isDigit(c)) return ASK;
    const ms = inferYear(
      zone,
      now(),
      month,
      day,
      HMS[0] as number,
      HMS[1] as number,
      HMS[2] as number,
      0,
      undefined,
    );
    if (Number.isNaN(ms)) return NOT_A_TIME;
    fastEnd = end;
    fastMs = ms;
    return MATCHED;
  }
  if (index === 2) {
    // ISO 8601: YYYY-MM-DD, `T` or one blank, HH:MM:SS, an optional `.fff` (1-9 digits), then
    // `Z`, `+01:00`, `+0100`, `+01` or nothing, then no digit (nor `:` without a zone).
    const century = two(line, at);
    const year = two(line, at + 2);
    const month = two(line, at + 5);
    const day = two(line, at + 8);
    const sep = line.charCodeAt(at + 10);
    if (
      century < 0 ||
      year < 0 ||
      month < 0 ||
      day < 0 ||
      line.charCodeAt(at + 4) !== 45 ||
      line.charCodeAt(at + 7) !== 45 ||
      (sep !== 84 && sep !== 32) ||
      !clock(line, at + 11, HMS)
    )
      return ASK;
    let end = at + 19;
    let fraction = 0;
    let c = line.charCodeAt(end);
    if (c === 46 || c === 44) {
      let digits = end + 1;
      while (isDigit(line.charCodeAt(digits))) digits++;
      const count = digits - end - 1;
      if (count < 1 || count > 9) return ASK;
      fraction = fractionMs(line.slice(end + 1, digits));
      end = digits;
      c = line.charCodeAt(end);
    }
    let offsetMs: number | undefined;
    if (c === 90) {
      if (isDigit(line.charCodeAt(end + 1))) return ASK;
      offsetMs = 0;
      end += 1;
    } else if (c === 43 || c === 45) {
      if (two(line, end + 1) < 0) return ASK;
      let zoneEnd = end + 3;
      const colon = line.charCodeAt(zoneEnd) === 58;
      if (two(line, zoneEnd + (colon ? 1 : 0)) >= 0) zoneEnd += colon ? 3 : 2;
      else if (colon) return ASK;
      if (isDigit(line.charCodeAt(zoneEnd))) return ASK;
      offsetMs = zoneOffsetMs(line.slice(end, zoneEnd));
      end = zoneEnd;
    } else if (c === 58 || isDigit(c)) return ASK;
    else if (c === 32) {
      // A blank then `Z`, `+`, `-` may be a zone the regex takes; a blank then anything else ends it.
      const next = line.charCodeAt(end + 1);
      if (next === 90 || next === 43 || next === 45) return ASK;
    }
    const ms = wallToEpochMs(
      zone,
      century * 100 + year,
      month,
      day,
      HMS[0] as number,
      HMS[1] as number,
      HMS[2] as number,
      fraction,
      offsetMs,
    );
    if (Number.isNaN(ms)) return NOT_A_TIME;
    fastEnd = end;
    fastMs = ms;
    return MATCHED;
  }
  return ASK;
}

/** `Z`, `+`, `-` or a digit: what a zone after a blank can start with. */
function zoneMayStart(code: number): boolean {
  return code === 90 || code === 43 || code === 45 || isDigit(code);
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}
