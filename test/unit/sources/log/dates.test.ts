import { describe, expect, it } from 'vitest';
import { compileDatePattern } from '../../../../src/sources/log/date-pattern.js';
import { createDateDetector, stripDate } from '../../../../src/sources/log/dates.js';
import { parseTimeZone } from '../../../../src/sources/log/time-zone.js';

const NOW = Date.UTC(2026, 10, 25, 13, 0, 0); // 2026-11-25T13:00:00Z
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function detect(line: string, options: { logtimezone?: string; datepattern?: string; now?: number } = {}) {
  const detector = createDateDetector({
    logtimezone: options.logtimezone ?? 'UTC',
    datepattern: options.datepattern,
    now: () => options.now ?? NOW,
  });
  const found = detector.find(line);
  return found === null
    ? null
    : { time: iso(found.timeMs), format: found.format, rest: stripDate(line, found) };
}

describe('date detection', () => {
  it.each([
    [
      'syslog',
      'Nov 25 12:00:01 host sshd[1]: msg',
      '2026-11-25T12:00:01.000Z',
      'syslog (MMM dd HH:MM:SS)',
      'host sshd[1]: msg',
    ],
    [
      'syslog, space-padded day',
      'Nov  5 12:00:01 host x',
      '2026-11-05T12:00:01.000Z',
      'syslog (MMM dd HH:MM:SS)',
      'host x',
    ],
    [
      'ISO 8601 with fraction and zone',
      '2026-11-25T12:00:01.123+01:00 host x',
      '2026-11-25T11:00:01.123Z',
      'ISO 8601',
      'host x',
    ],
    ['ISO 8601 with Z', '2026-11-25T12:00:01.123456Z x', '2026-11-25T12:00:01.123Z', 'ISO 8601', 'x'],
    ['ISO 8601 with a space, no zone', '2026-11-25 12:00:01 x', '2026-11-25T12:00:01.000Z', 'ISO 8601', 'x'],
    [
      'ISO 8601 with a comma fraction',
      '2026-11-25 12:00:01,250 INFO x',
      '2026-11-25T12:00:01.250Z',
      'ISO 8601',
      'INFO x',
    ],
    [
      'RFC 5424',
      '<34>1 2026-11-25T12:00:01.003Z host app 12 - - msg',
      '2026-11-25T12:00:01.003Z',
      'RFC 5424',
      'host app 12 - - msg',
    ],
    [
      'Common Log Format',
      '192.0.2.7 - - [25/Nov/2026:12:00:01 +0200] "GET /x HTTP/1.1" 404 153',
      '2026-11-25T10:00:01.000Z',
      'Common Log Format (dd/MMM/YYYY:HH:MM:SS zone)',
      '192.0.2.7 - - "GET /x HTTP/1.1" 404 153',
    ],
    [
      'nginx error log',
      '2026/11/25 12:00:01 [error] 1#1: *1 x',
      '2026-11-25T12:00:01.000Z',
      'nginx error log (YYYY/MM/DD HH:MM:SS)',
      '[error] 1#1: *1 x',
    ],
    [
      'Apache error log',
      '[Wed Nov 25 12:00:01.123456 2026] [auth_basic:error] [pid 1] x',
      '2026-11-25T12:00:01.123Z',
      'ctime (Www MMM dd HH:MM:SS YYYY)',
      '[auth_basic:error] [pid 1] x',
    ],
    ['epoch seconds', '1764072001 x', '2025-11-25T12:00:01.000Z', 'epoch', 'x'],
    ['epoch seconds with fraction', '1764072001.123 x', '2025-11-25T12:00:01.123Z', 'epoch', 'x'],
    ['epoch milliseconds', '1764072001123 x', '2025-11-25T12:00:01.123Z', 'epoch', 'x'],
    ['epoch in brackets', '[1764072001] x', '2025-11-25T12:00:01.000Z', 'epoch', 'x'],
    [
      'Linux audit log (SELinux)',
      'type=USER_AUTH msg=audit(1764072001.123:401): pid=1 uid=0 res=failed',
      '2025-11-25T12:00:01.123Z',
      'epoch',
      'type=USER_AUTH msg=audit(:401): pid=1 uid=0 res=failed',
    ],
    [
      'RFC 5424 with an offset (sshd through rsyslog)',
      '<38>1 2019-07-08T17:40:16+02:00 gate sshd 57915 - - Failed password for root from 192.0.2.7 port 22 ssh2',
      '2019-07-08T15:40:16.000Z',
      'RFC 5424',
      'gate sshd 57915 - - Failed password for root from 192.0.2.7 port 22 ssh2',
    ],
    [
      'ISO date, two blanks, one-digit hour',
      '2015-10-07  8:25:38 [Warning] x',
      '2015-10-07T08:25:38.000Z',
      'ISO 8601',
      '[Warning] x',
    ],
    [
      'ISO date, one blank, one-digit hour',
      '2015-10-07 8:25:38 x',
      '2015-10-07T08:25:38.000Z',
      'ISO 8601',
      'x',
    ],
    [
      'old MySQL (YYMMDD, two blanks, one-digit hour)',
      "130324  0:04:00 [Warning] Access denied for user 'root'@'192.0.2.7' (using password: YES)",
      '2013-03-24T00:04:00.000Z',
      'MySQL (YYMMDD H:MM:SS)',
      "[Warning] Access denied for user 'root'@'192.0.2.7' (using password: YES)",
    ],
    [
      'old MySQL, two-digit hour',
      '130324 12:04:00 x',
      '2013-03-24T12:04:00.000Z',
      'MySQL (YYMMDD H:MM:SS)',
      'x',
    ],
    [
      'TAI64N (daemontools, runit, s6)',
      '@400000006b06cdcb0000000a sshd[1]: x',
      '2026-11-25T12:00:01.000Z',
      'TAI64N',
      'sshd[1]: x',
    ],
    ['TAI64N nanoseconds', '@400000006b06cdcb1dcd6500 x', '2026-11-25T12:00:01.500Z', 'TAI64N', 'x'],
    [
      'journalctl -o short-iso',
      '2026-11-25T12:00:01+0000 gate sshd[1]: x',
      '2026-11-25T12:00:01.000Z',
      'ISO 8601',
      'gate sshd[1]: x',
    ],
    [
      'journalctl -o short-precise',
      'Nov 25 12:00:01.123456 gate sshd[1]: x',
      '2026-11-25T12:00:01.123Z',
      'syslog (MMM dd HH:MM:SS)',
      'gate sshd[1]: x',
    ],
    [
      'journalctl -o short-unix',
      '1764072001.123456 gate sshd[1]: x',
      '2025-11-25T12:00:01.123Z',
      'epoch',
      'gate sshd[1]: x',
    ],
    [
      'PHP error_log (Roundcube)',
      '[25-Nov-2026 12:00:01 +0100]: <a1b2c3d4> Failed login',
      '2026-11-25T11:00:01.000Z',
      'PHP (dd-MMM-YYYY HH:MM:SS zone)',
      ': <a1b2c3d4> Failed login',
    ],
    [
      'PHP date then a word',
      '25-Nov-2026 12:00:01 Failed x',
      '2026-11-25T12:00:01.000Z',
      'PHP (dd-MMM-YYYY HH:MM:SS zone)',
      'Failed x',
    ],
    [
      'PHP error_log, UTC',
      '[25-Nov-2026 12:00:01 UTC] PHP x',
      '2026-11-25T12:00:01.000Z',
      'PHP (dd-MMM-YYYY HH:MM:SS zone)',
      'PHP x',
    ],
    [
      'JSON value',
      '{"time":"2026-11-25T12:00:01.000Z","ip":"192.0.2.7"}',
      '2026-11-25T12:00:01.000Z',
      'ISO 8601',
      '{"time":"","ip":"192.0.2.7"}',
    ],
  ])('%s', (_name, line, time, format, rest) => {
    expect(detect(line)).toEqual({ time, format, rest });
  });

  it('does not take numbers that only resemble the newer formats for dates', () => {
    // Not at the line start, not six digits, a 16-digit hex label that is not TAI64 (no leading 4).
    expect(detect('x 130324  0:04:00')?.format).not.toBe('MySQL (YYMMDD H:MM:SS)');
    expect(detect('1303245  0:04:00 x')).toBeNull();
    expect(detect('@500000006b06cdcb0000000a x')).toBeNull();
    expect(detect('@400000006b06cdcb0000 x')).toBeNull();
    // A month 13 is not a date.
    expect(detect('131324  0:04:00 x')).toBeNull();
    // Three blanks are not the two-blank ISO form.
    expect(detect('2015-10-07   8:25:38 x')).toBeNull();
  });

  it('returns null when a line has no date', () => {
    expect(detect('just text 12:00 and 192.0.2.7')).toBeNull();
    expect(detect('')).toBeNull();
  });

  it('uses the first date of the line, also when another format matched the line before', () => {
    const detector = createDateDetector({ logtimezone: 'UTC', now: () => NOW });
    expect(detector.find('2026-11-25 12:00:00 12 [Note] x')?.format).toBe('ISO 8601');
    // syslog in front of a server's own ISO stamp: the syslog date comes first.
    const found = detector.find('Nov 25 12:00:06 db mariadbd[9]: 2026-11-25 12:00:07 20 [Warning] x');
    expect(found?.format).toBe('syslog (MMM dd HH:MM:SS)');
    expect(iso(found?.timeMs)).toBe('2026-11-25T12:00:06.000Z');
    // ctime contains a syslog-looking date; the earlier (longer) one wins.
    expect(detector.find('Wed Nov 25 12:00:07 2026 [pid 1] x')?.format).toBe(
      'ctime (Www MMM dd HH:MM:SS YYYY)',
    );
  });

  it('ignores digits that only look like a date', () => {
    expect(detect('x 12026-11-25 12:00:01 y')).toBeNull();
    expect(detect('ver 2026/11/25 12:00:012 y')).toBeNull();
  });
});

describe('year inference (syslog dates have none)', () => {
  it('uses the current year', () => {
    expect(detect('Mar  1 00:00:00 x')?.time).toBe('2026-03-01T00:00:00.000Z');
  });

  it('uses last year for a December line read in January', () => {
    const now = Date.UTC(2027, 0, 1, 0, 0, 30);
    expect(detect('Dec 31 23:59:59 x', { now })?.time).toBe('2026-12-31T23:59:59.000Z');
    expect(detect('Jan  1 00:00:10 x', { now })?.time).toBe('2027-01-01T00:00:10.000Z');
  });

  it('allows a line up to a day in the future (clock skew) before going back a year', () => {
    expect(detect('Nov 26 10:00:00 x')?.time).toBe('2026-11-26T10:00:00.000Z');
    expect(detect('Nov 27 10:00:00 x')?.time).toBe('2025-11-27T10:00:00.000Z');
  });

  it('infers the year in the log zone at New Year', () => {
    // 23:30 UTC on 31 December is already 1 January in Berlin.
    const now = Date.UTC(2026, 11, 31, 23, 30, 0);
    expect(detect('Jan  1 00:20:00 x', { now, logtimezone: 'Europe/Berlin' })?.time).toBe(
      '2026-12-31T23:20:00.000Z',
    );
  });
});

describe('zones', () => {
  it('reads zone-less times in logtimezone: UTC, offsets, IANA zones with DST', () => {
    expect(detect('2026-11-25 12:00:00 x', { logtimezone: '+0100' })?.time).toBe('2026-11-25T11:00:00.000Z');
    expect(detect('2026-11-25 12:00:00 x', { logtimezone: '-05:30' })?.time).toBe('2026-11-25T17:30:00.000Z');
    expect(detect('2026-11-25 12:00:00 x', { logtimezone: 'Europe/Berlin' })?.time).toBe(
      '2026-11-25T11:00:00.000Z',
    );
    expect(detect('2026-07-01 12:00:00 x', { logtimezone: 'Europe/Berlin' })?.time).toBe(
      '2026-07-01T10:00:00.000Z',
    );
    expect(detect('2026-07-01 12:00:00 x', { logtimezone: 'America/New_York' })?.time).toBe(
      '2026-07-01T16:00:00.000Z',
    );
  });

  it('a zone in the text wins over logtimezone', () => {
    expect(detect('2026-11-25T12:00:00Z x', { logtimezone: 'Europe/Berlin' })?.time).toBe(
      '2026-11-25T12:00:00.000Z',
    );
    expect(detect('1.2.3.4 - - [25/Nov/2026:12:00:00 -0800] x', { logtimezone: '+0100' })?.time).toBe(
      '2026-11-25T20:00:00.000Z',
    );
  });

  it('resolves the hour after a DST change', () => {
    // 29 March 2026, 03:30 CEST (the clock jumped from 02:00 to 03:00).
    expect(detect('2026-03-29 03:30:00 x', { logtimezone: 'Europe/Berlin' })?.time).toBe(
      '2026-03-29T01:30:00.000Z',
    );
    expect(detect('2026-03-29 01:30:00 x', { logtimezone: 'Europe/Berlin' })?.time).toBe(
      '2026-03-29T00:30:00.000Z',
    );
  });

  it('refuses a zone it does not know', () => {
    expect(() => parseTimeZone('Mars/Olympus_Mons')).toThrow(/logtimezone: expected "UTC"/);
    expect(parseTimeZone('UTC').offsetMs(0)).toBe(0);
    expect(parseTimeZone('GMT+2').offsetMs(0)).toBe(7_200_000);
  });
});

describe('datepattern', () => {
  it.each([
    ['%Y-%m-%d %H:%M:%S', 'at 2026-11-25 12:00:01 x', '2026-11-25T12:00:01.000Z', 'at x'],
    ['%d/%b/%Y:%H:%M:%S %z', 'h [25/Nov/2026:12:00:01 +0100] x', '2026-11-25T11:00:01.000Z', 'h x'],
    ['%b %d %H:%M:%S', 'Nov 25 12:00:01 x', '2026-11-25T12:00:01.000Z', 'x'],
    ['^%s', '1764072001 x', '2025-11-25T12:00:01.000Z', 'x'],
    ['%s.%f', 'ts=1764072001.5 x', '2025-11-25T12:00:01.500Z', 'ts= x'],
    ['%Y%m%d %H%M%S', '20261125 120001 x', '2026-11-25T12:00:01.000Z', 'x'],
    ['%d.%m.%y %I:%M:%S %p', '25.11.26 01:00:01 PM x', '2026-11-25T13:00:01.000Z', 'x'],
    ['%F %T.%f', '2026-11-25 12:00:01.042 x', '2026-11-25T12:00:01.042Z', 'x'],
    ['%a %B %e %H:%M:%S %Y', 'Wed November  5 12:00:01 2026 x', '2026-11-05T12:00:01.000Z', 'x'],
    ['%Y %j %H:%M', '2026 060 10:30 x', '2026-03-01T10:30:00.000Z', 'x'],
    ['{^LN-BEG}%H:%M:%S', '12:00:01 x', '2026-11-25T12:00:01.000Z', 'x'],
  ])('%s', (pattern, line, time, rest) => {
    expect(detect(line, { datepattern: pattern })).toEqual({ time, format: pattern, rest });
  });

  it('anchors with ^ and does not match inside numbers', () => {
    expect(detect('x 12:00:01', { datepattern: '^%H:%M:%S' })).toBeNull();
    expect(detect('112:00:01', { datepattern: '%H:%M:%S' })).toBeNull();
  });

  it('refuses unknown directives and patterns without any', () => {
    expect(() => compileDatePattern('%Y-%Q')).toThrow(/unknown directive %Q/);
    expect(() => compileDatePattern('no directives')).toThrow(/contains no date or time directive/);
  });

  it('matches in linear time whatever the line', () => {
    const template = compileDatePattern('%b %d %H:%M:%S');
    const line = 'Nov '.repeat(4000) + ' '.repeat(10_000);
    const start = performance.now();
    template.find(line, parseTimeZone('UTC'), () => NOW);
    expect(performance.now() - start).toBeLessThan(200);
  });
});
