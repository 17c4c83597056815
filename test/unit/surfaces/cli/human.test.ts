import { describe, expect, it } from 'vitest';
import { plural, relativeTime, shortDuration, statsRows, table } from '../../../../src/surfaces/cli/human.js';

describe('human output', () => {
  it('writes times as an operator reads them', () => {
    const now = 1_000_000_000;
    expect(relativeTime(now + 59 * 60_000 + 30_000, now)).toBe('in 59m30s');
    expect(relativeTime(now - 5 * 60_000, now)).toBe('5m ago');
    expect(relativeTime(now + 26 * 3_600_000, now)).toBe('in 1d2h');
    expect(relativeTime(now + 3_600_000 + 5000, now)).toBe('in 1h');
    expect(relativeTime(null, now)).toBe('never');
    expect(shortDuration(400)).toBe('0s');
    expect(shortDuration(3 * 7 * 86_400_000)).toBe('3w');
  });

  it('says 1 ban, 2 bans, 0 jails', () => {
    expect(plural(1, 'ban')).toBe('1 ban');
    expect(plural(2, 'ban')).toBe('2 bans');
    expect(plural(0, 'jail')).toBe('0 jails');
  });

  it('aligns tables under their headers and shows stats compactly', () => {
    expect(
      table(
        ['A', 'LONGER'],
        [
          ['xyz', '1'],
          ['q', '22'],
        ],
      ),
    ).toBe('A    LONGER\nxyz  1\nq    22');
    expect(
      statsRows({ log: { sshd: { lines: 7, files: { '/a': {}, '/b': {} } } }, proxy: { requests: 3 } }),
    ).toEqual([
      ['log sshd', 'lines=7 files=2'],
      ['proxy', 'requests=3'],
    ]);
  });
});
