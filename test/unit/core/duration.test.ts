import { describe, expect, it } from 'vitest';
import { formatDuration, PERMANENT, parseDuration } from '../../../src/core/duration.js';

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
    ['2w', 1_209_600_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['600', 600_000],
    [600, 600_000],
    ['-1', PERMANENT],
    [-1, PERMANENT],
  ])('parses %j', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', '10 minutes', '1y', 'h', '-5', '1h 30m', '10M'])('rejects %j with a coded error', (input) => {
    expect(() => parseDuration(input)).toThrowError(
      expect.objectContaining({ code: 'PC_ERR_INVALID_DURATION' }),
    );
  });

  it('formats back to config syntax', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(PERMANENT)).toBe('-1');
    expect(formatDuration(1_209_600_000 + 1500)).toBe('2w1s500ms');
  });
});
