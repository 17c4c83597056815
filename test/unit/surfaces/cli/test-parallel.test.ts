import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cutTarget, planRanges, WARMUP_BYTES } from '../../../../src/surfaces/cli/test-parallel.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-ranges-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('planRanges (the cut rule of portcullis test --jobs)', () => {
  it('starts each range at the first line start at or after k * size / jobs', async () => {
    // Lines of 10 bytes: targets 33 and 66 of 100 give starts 40 and 70.
    const path = file('tens.log', '123456789\n'.repeat(10));
    expect([cutTarget(100, 3, 1), cutTarget(100, 3, 2)]).toEqual([33, 66]);
    const ranges = await planRanges(path, 100, 3, false);
    expect(ranges).toEqual([
      { start: 0, end: 40, warmStart: 0 },
      { start: 40, end: 70, warmStart: 40 },
      { start: 70, end: 100, warmStart: 70 },
    ]);
  });

  it('keeps a target that is already a line start', async () => {
    const path = file('exact.log', '123456789\n'.repeat(10));
    const ranges = await planRanges(path, 100, 2, false);
    expect(ranges.map((r) => r.start)).toEqual([0, 50]);
  });

  it('leaves out ranges a long line swallows, and a cut past the last line start', async () => {
    // One line of 90 bytes then one of 10: every target but the last lands inside the first line.
    const path = file('long.log', `${'x'.repeat(89)}\n123456789\n`);
    const ranges = await planRanges(path, 100, 4, false);
    expect(ranges).toEqual([
      { start: 0, end: 90, warmStart: 0 },
      { start: 90, end: 100, warmStart: 90 },
    ]);
    const oneLine = file('one-line.log', 'y'.repeat(200_000));
    expect(await planRanges(oneLine, 200_000, 3, false)).toEqual([{ start: 0, end: 200_000, warmStart: 0 }]);
  });

  it('warms up from WARMUP_BYTES before the cut, or from the previous range start when that is nearer', async () => {
    const line = `${'z'.repeat(1023)}\n`;
    const lines = (3 * WARMUP_BYTES) / line.length;
    const size = lines * line.length;
    const path = file('warm.log', line.repeat(lines));
    const [first, second] = await planRanges(path, size, 2, true);
    expect(first?.warmStart).toBe(0);
    expect(second?.start).toBe(size / 2);
    expect(second?.warmStart).toBe(size / 2 - WARMUP_BYTES);
    // 8 ranges of 1.5 MiB: the warm-up goes back to the previous range's start only.
    const eight = await planRanges(path, size, 8, true);
    for (let k = 1; k < eight.length; k++) expect(eight[k]?.warmStart).toBe(eight[k - 1]?.start);
    expect(eight.every((r) => r.start % line.length === 0)).toBe(true);
  });
});
