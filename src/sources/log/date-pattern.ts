import { ConfigError } from '../../core/errors.js';
import {
  DAY_MS,
  type DateTemplate,
  fractionMs,
  inferYear,
  monthNumber,
  regexTemplate,
  wallToEpochMs,
  zoneOffsetMs,
} from './date-template.js';
import type { TimeZone } from './time-zone.js';

/**
 * strftime-style `datepattern`s, compiled once to a JS regex with only bounded quantifiers (so
 * matching is linear whatever the line) and a field list.
 *
 * | directive | meaning                                   |
 * | --------- | ----------------------------------------- |
 * | `%Y` `%y` | year (4 digits; 2 digits: 69-99 → 19xx)   |
 * | `%m` `%d` `%e` | month, day (1-2 digits; `%e` space-padded) |
 * | `%b` `%h` `%B` | month name (abbreviated / full, any case) |
 * | `%a` `%A` | weekday name (ignored)                    |
 * | `%H` `%I` `%p` | hour (24 h; 12 h with AM/PM)         |
 * | `%M` `%S` | minute, second                            |
 * | `%f`      | fraction of a second, 1-9 digits          |
 * | `%j`      | day of the year                           |
 * | `%s`      | seconds since the epoch (`%s.%f` for fractions) |
 * | `%z` `%Z` | zone: `+0100`/`+01:00`/`Z`; a name (`UTC`, `GMT` honoured, others use `logtimezone`) |
 * | `%T` `%F` `%D` `%R` | `%H:%M:%S`, `%Y-%m-%d`, `%m/%d/%y`, `%H:%M` |
 * | `%%`      | a literal `%`                             |
 *
 * Whitespace matches 1-16 blanks. A leading `^` (or fail2ban's `{^LN-BEG}`) anchors the date to
 * the start of the line; otherwise the first place the pattern matches is used. Without a year,
 * the year is inferred as for syslog; without a date at all, today (in the log's zone).
 */

type Field =
  | 'year'
  | 'year2'
  | 'month'
  | 'monthName'
  | 'day'
  | 'yday'
  | 'hour'
  | 'hour12'
  | 'ampm'
  | 'minute'
  | 'second'
  | 'fraction'
  | 'offset'
  | 'zoneName'
  | 'epoch'
  | 'ignore';

const DIRECTIVES: Record<string, { re: string; field: Field } | string> = {
  Y: { re: '\\d{4}', field: 'year' },
  y: { re: '\\d{2}', field: 'year2' },
  m: { re: '\\d{1,2}', field: 'month' },
  d: { re: '\\d{1,2}', field: 'day' },
  e: { re: '[ \\d]?\\d', field: 'day' },
  j: { re: '\\d{1,3}', field: 'yday' },
  b: { re: '[A-Za-z]{3}', field: 'monthName' },
  h: { re: '[A-Za-z]{3}', field: 'monthName' },
  B: { re: '[A-Za-z]{3,9}', field: 'monthName' },
  a: { re: '[A-Za-z]{3}', field: 'ignore' },
  A: { re: '[A-Za-z]{6,9}', field: 'ignore' },
  H: { re: '\\d{1,2}', field: 'hour' },
  I: { re: '\\d{1,2}', field: 'hour12' },
  p: { re: '[AaPp][Mm]', field: 'ampm' },
  M: { re: '\\d{1,2}', field: 'minute' },
  S: { re: '\\d{1,2}', field: 'second' },
  f: { re: '\\d{1,9}', field: 'fraction' },
  s: { re: '\\d{1,11}', field: 'epoch' },
  z: { re: 'Z|[+-]\\d{2}:?\\d{2}', field: 'offset' },
  Z: { re: '[A-Za-z]{1,5}', field: 'zoneName' },
  T: '%H:%M:%S',
  F: '%Y-%m-%d',
  D: '%m/%d/%y',
  R: '%H:%M',
};

/** Compiles a strftime-style pattern. Throws {@link ConfigError} naming an unknown directive. */
export function compileDatePattern(pattern: string): DateTemplate {
  let text = pattern.trim();
  let anchored = false;
  if (text.startsWith('{^LN-BEG}')) {
    anchored = true;
    text = text.slice('{^LN-BEG}'.length);
  } else if (text.startsWith('^')) {
    anchored = true;
    text = text.slice(1);
  }
  const fields: Field[] = [];
  const source = translate(text, fields, pattern, 0);
  if (fields.length === 0) {
    throw new ConfigError([`datepattern: ${JSON.stringify(pattern)} contains no date or time directive`]);
  }
  // Digits must not continue a number on the left: `%H:%M` must not match inside `112:30`.
  const prefix = anchored ? '^' : '(?<![\\dA-Za-z])';
  const re = new RegExp(`${prefix}${source}`, 'g');
  const has = (field: Field) => fields.includes(field);
  const hasDate =
    has('year') || has('year2') || has('month') || has('monthName') || has('day') || has('yday');
  return regexTemplate(pattern, re, (m, zone, now) => toMs(m, fields, hasDate, zone, now));
}

function translate(text: string, fields: Field[], pattern: string, depth: number): string {
  let out = '';
  let blank = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t') {
      if (!blank) out += '[ \\t]{1,16}';
      blank = true;
      continue;
    }
    blank = false;
    if (c !== '%') {
      out += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
      continue;
    }
    let d = text[++i];
    if (d === ':' && text[i + 1] === 'z') d = text[++i];
    if (d === '%') {
      out += '%';
      continue;
    }
    const directive = d === undefined ? undefined : DIRECTIVES[d];
    if (directive === undefined) {
      throw new ConfigError([
        `datepattern: unknown directive %${d ?? ''} in ${JSON.stringify(pattern)} (known: ${Object.keys(
          DIRECTIVES,
        )
          .map((k) => `%${k}`)
          .join(' ')} %%)`,
      ]);
    }
    if (typeof directive === 'string') {
      if (depth > 2) throw new ConfigError([`datepattern: ${JSON.stringify(pattern)} is nested too deeply`]);
      out += translate(directive, fields, pattern, depth + 1);
      continue;
    }
    fields.push(directive.field);
    out += `(${directive.re})`;
  }
  return out;
}

function toMs(
  m: RegExpExecArray,
  fields: readonly Field[],
  hasDate: boolean,
  zone: TimeZone,
  now: () => number,
): number {
  let year: number | undefined;
  let month = 1;
  let day = 1;
  let yday = 0;
  let hour = 0;
  let pm: boolean | undefined;
  let minute = 0;
  let second = 0;
  let ms = 0;
  let offset: number | undefined;
  let epoch: number | undefined;
  for (let i = 0; i < fields.length; i++) {
    const value = m[i + 1] as string;
    switch (fields[i]) {
      case 'year':
        year = Number(value);
        break;
      case 'year2': {
        const y = Number(value);
        year = y >= 69 ? 1900 + y : 2000 + y;
        break;
      }
      case 'month':
        month = Number(value);
        break;
      case 'monthName':
        month = monthNumber(value);
        if (month === 0 || (value.length > 3 && !FULL_MONTHS.includes(value.toLowerCase())))
          return Number.NaN;
        break;
      case 'day':
        day = Number(value.trim());
        break;
      case 'yday':
        yday = Number(value);
        break;
      case 'hour':
      case 'hour12':
        hour = Number(value);
        break;
      case 'ampm':
        pm = value.toLowerCase() === 'pm';
        break;
      case 'minute':
        minute = Number(value);
        break;
      case 'second':
        second = Number(value);
        break;
      case 'fraction':
        ms = fractionMs(value);
        break;
      case 'offset':
        offset = zoneOffsetMs(value);
        break;
      case 'zoneName': {
        const upper = value.toUpperCase();
        if (upper === 'UTC' || upper === 'GMT' || upper === 'Z') offset = 0;
        break;
      }
      case 'epoch':
        epoch = Number(value);
        break;
    }
  }
  if (epoch !== undefined) return epoch * 1000 + ms;
  if (pm !== undefined) {
    if (hour < 1 || hour > 12) return Number.NaN;
    hour = (hour % 12) + (pm ? 12 : 0);
  }
  if (yday > 366) return Number.NaN;
  if (!hasDate) {
    // A time of day only: today in the log's zone, or yesterday if that would be in the future.
    const nowMs = now();
    const local = new Date(nowMs + (offset ?? zone.offsetMs(nowMs)));
    const today = wallToEpochMs(
      zone,
      local.getUTCFullYear(),
      local.getUTCMonth() + 1,
      local.getUTCDate(),
      hour,
      minute,
      second,
      ms,
      offset,
    );
    return today > nowMs + 60_000 ? today - DAY_MS : today;
  }
  // Day of the year: from 1 January (a DST change in between would shift it by the change).
  const extraMs = yday > 0 ? (yday - 1) * DAY_MS : 0;
  if (yday > 0) {
    month = 1;
    day = 1;
  }
  if (year === undefined)
    return inferYear(zone, now() - extraMs, month, day, hour, minute, second, ms, offset) + extraMs;
  return wallToEpochMs(zone, year, month, day, hour, minute, second, ms, offset) + extraMs;
}

const FULL_MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
  'sept',
];
