import { describe, expect, it } from 'vitest';
import {
  type AccessLogEntry,
  escapeLogField,
  formatCombined,
  formatJsonLine,
  formatLogDate,
} from '../../../../src/sources/http/access-log.js';

const T = Date.UTC(2026, 10, 25, 12, 0, 1);
const entry: AccessLogEntry = {
  ip: '192.0.2.7',
  timeMs: T,
  method: 'GET',
  url: '/x',
  protocol: 'HTTP/1.1',
  status: 404,
  bytes: 153,
  referer: '',
  userAgent: 'curl/8.0',
  host: 'example.org',
  durationMs: 1.23456,
};

describe('access log formats', () => {
  it('writes the combined log format', () => {
    const offset = -new Date(T).getTimezoneOffset();
    const expectedDate = formatLogDate(T);
    expect(formatCombined(entry)).toBe(
      `192.0.2.7 - - [${expectedDate}] "GET /x HTTP/1.1" 404 153 "-" "curl/8.0"\n`,
    );
    if (offset === 0) expect(expectedDate).toBe('25/Nov/2026:12:00:01 +0000');
    expect(formatLogDate(T)).toMatch(/^25\/Nov\/2026:\d{2}:\d{2}:01 [+-]\d{4}$/);
  });

  it('escapes quotes, backslashes, control characters and non-ASCII as \\xHH', () => {
    expect(escapeLogField('plain text/1.0 (x; y)')).toBe('plain text/1.0 (x; y)');
    expect(escapeLogField('a"b\\c\nd\re\tf\x00\x7f\xff')).toBe(
      'a\\x22b\\x5Cc\\x0Ad\\x0De\\x09f\\x00\\x7F\\xFF',
    );
    expect(escapeLogField('é€😀')).toBe('\\xE9\\xE2\\x82\\xAC\\xF0\\x9F\\x98\\x80');
  });

  it('a forged user agent stays one field of one line', () => {
    const line = formatCombined({
      ...entry,
      status: 200,
      userAgent: 'x" 404 0 "-" "y\n192.0.2.66 - - [25/Nov/2026:12:00:01 +0000] "GET / HTTP/1.1" 404 1 "-" "z',
    });
    expect(line.split('\n')).toHaveLength(2); // the line and the empty rest after its newline
    expect(line.match(/"/g)).toHaveLength(6);
    expect(line).toMatch(/^192\.0\.2\.7 - - \[[^\]]+\] "GET \/x HTTP\/1\.1" 200 153 "-" "[^"]*"\n$/);
  });

  it('writes a request Node could not parse as "-", and an unknown client as -', () => {
    const line = formatCombined({
      ...entry,
      ip: null,
      method: '-',
      url: '',
      protocol: '',
      status: 400,
      bytes: 0,
      userAgent: '',
    });
    expect(line).toMatch(/^- - - \[[^\]]+\] "-" 400 0 "-" "-"\n$/);
  });

  it('writes JSON lines with time and ip first and every string escaped', () => {
    const line = formatJsonLine({ ...entry, userAgent: 'a"b\nc' });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(line.startsWith('{"time":"2026-11-25T12:00:01.000Z","ip":"192.0.2.7",')).toBe(true);
    expect(JSON.parse(line)).toEqual({
      time: '2026-11-25T12:00:01.000Z',
      ip: '192.0.2.7',
      method: 'GET',
      url: '/x',
      protocol: 'HTTP/1.1',
      status: 404,
      bytes: 153,
      referer: '',
      user_agent: 'a"b\nc',
      host: 'example.org',
      duration_ms: 1.235,
    });
  });
});
