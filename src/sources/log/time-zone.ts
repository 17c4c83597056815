import { ConfigError } from '../../core/errors.js';

/**
 * The zone a log writes its zone-less times in (`logtimezone`): the host's local zone (default), a
 * fixed offset (`UTC`, `+0100`, `-05:30`), or an IANA zone (`Europe/Berlin`, resolved through Intl
 * so daylight saving time is right). Converting a wall-clock time is the hot path of date parsing,
 * so IANA offsets are cached per quarter hour of UTC time (every real zone changes its offset on a
 * quarter hour).
 */
export interface TimeZone {
  /** What the user wrote, or `local`. */
  readonly name: string;
  /** Milliseconds since the epoch of a wall-clock time in this zone. `month` is 1-12. */
  toEpochMs(
    year: number,
    month: number,
    day: number,
    hour: number,
    minute: number,
    second: number,
    ms: number,
  ): number;
  /** The zone's offset from UTC at an instant, in milliseconds (east positive). */
  offsetMs(epochMs: number): number;
}

const QUARTER_HOUR_MS = 900_000;
const OFFSET_CACHE_LIMIT = 4096;

/**
 * Parses a `logtimezone` value. `undefined`, `''` and `local` mean the host's zone. Throws
 * {@link ConfigError} for anything else that is neither an offset nor a zone Intl knows.
 */
export function parseTimeZone(text: string | undefined): TimeZone {
  if (text === undefined || text === '' || text === 'local') return LOCAL_ZONE;
  const fixed = parseOffset(text);
  if (fixed !== null) return fixedZone(text, fixed);
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: text,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new ConfigError([
      `logtimezone: expected "UTC", an offset like "+0100", or a zone like "Europe/Berlin", got ${JSON.stringify(text)}`,
    ]);
  }
  return ianaZone(text, format);
}

/**
 * `Z`, `UTC`, `GMT`, `+01`, `+0100`, `+01:00`, `UTC+1`, `GMT-05:30` → offset in ms (east positive);
 * `null` when `text` is not an offset.
 */
export function parseOffset(text: string): number | null {
  if (text === 'Z' || text === 'z' || text === 'UTC' || text === 'GMT') return 0;
  const m = /^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(text);
  if (m === null) return null;
  const hours = Number(m[2]);
  const minutes = m[3] === undefined ? 0 : Number(m[3]);
  if (hours > 14 || minutes > 59) return null;
  return (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000;
}

/** A zone at a constant offset from UTC. */
export function fixedZone(name: string, offsetMs: number): TimeZone {
  return {
    name,
    toEpochMs: (y, mo, d, h, mi, s, ms) => Date.UTC(y, mo - 1, d, h, mi, s, ms) - offsetMs,
    offsetMs: () => offsetMs,
  };
}

/** The host's zone, through `Date`'s local-time constructor (which knows its DST rules). */
const LOCAL_ZONE: TimeZone = {
  name: 'local',
  toEpochMs: (y, mo, d, h, mi, s, ms) => {
    const date = new Date(y, mo - 1, d, h, mi, s, ms);
    // Years 0-99 are mapped to 1900-1999 by the constructor.
    if (y < 100) date.setFullYear(y);
    return date.getTime();
  },
  offsetMs: (epochMs) => -new Date(epochMs).getTimezoneOffset() * 60_000,
};

export const UTC_ZONE: TimeZone = fixedZone('UTC', 0);

function ianaZone(name: string, format: Intl.DateTimeFormat): TimeZone {
  const cache = new Map<number, number>();
  const offsetMs = (epochMs: number): number => {
    const bucket = Math.floor(epochMs / QUARTER_HOUR_MS);
    let offset = cache.get(bucket);
    if (offset === undefined) {
      offset = computeOffset(format, bucket * QUARTER_HOUR_MS);
      if (cache.size >= OFFSET_CACHE_LIMIT) cache.clear();
      cache.set(bucket, offset);
    }
    return offset;
  };
  return {
    name,
    offsetMs,
    toEpochMs: (y, mo, d, h, mi, s, ms) => {
      const wall = Date.UTC(y, mo - 1, d, h, mi, s, ms);
      // Two passes settle the offset except inside a DST gap or overlap, where the earlier
      // offset wins (as most syslog daemons and fail2ban resolve it).
      const first = wall - offsetMs(wall);
      const second = wall - offsetMs(first);
      return second === first ? first : wall - offsetMs(second);
    },
  };
}

function computeOffset(format: Intl.DateTimeFormat, epochMs: number): number {
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  for (const part of format.formatToParts(epochMs)) {
    const value = Number(part.value);
    if (part.type === 'year') year = value;
    else if (part.type === 'month') month = value;
    else if (part.type === 'day') day = value;
    else if (part.type === 'hour') hour = value;
    else if (part.type === 'minute') minute = value;
    else if (part.type === 'second') second = value;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second) - Math.floor(epochMs / 1000) * 1000;
}
