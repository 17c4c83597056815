import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cutTarget,
  PIECE_MIN_BYTES,
  planPieces,
  planRanges,
  takePieces,
  WARMUP_BYTES,
} from '../../../../src/surfaces/cli/test-parallel.js';

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

describe('planPieces (what a filter without sessions is cut into)', () => {
  it('cuts big pieces first and small ones last, each at a line start, covering the file', async () => {
    const line = `${'p'.repeat(999)}\n`;
    const lines = Math.ceil((40 * 1024 * 1024) / line.length);
    const size = lines * line.length;
    const path = file('pieces.log', line.repeat(lines));
    const pieces = await planPieces(path, size, 2);
    expect(pieces[0]?.start).toBe(0);
    expect(pieces.at(-1)?.end).toBe(size);
    for (let k = 1; k < pieces.length; k++) expect(pieces[k]?.start).toBe(pieces[k - 1]?.end);
    expect(pieces.every((p) => p.start % line.length === 0 && p.warmStart === p.start)).toBe(true);
    const sizes = pieces.map((p) => p.end - p.start);
    // A quarter of the file first (1 / (2 * jobs)), then a quarter of what is left, ...
    expect(Math.abs((sizes[0] as number) - size / 4)).toBeLessThan(line.length);
    for (let k = 1; k < sizes.length - 1; k++) {
      expect(sizes[k]).toBeLessThanOrEqual((sizes[k - 1] as number) + line.length);
      expect(sizes[k]).toBeGreaterThan(PIECE_MIN_BYTES - line.length);
    }
    expect(pieces.length).toBeGreaterThan(6);
    expect(pieces.length).toBeLessThan(20);
  });
});

describe('takePieces (which thread reads which piece)', () => {
  const plans = {
    plain: Array.from({ length: 12 }, (_, k) => ({ start: k * 10, end: (k + 1) * 10, warmStart: k * 10 })),
    sessions: [0, 1, 2].map((k) => ({ start: k * 40, end: (k + 1) * 40, warmStart: k * 40 })),
  };

  it('without sessions: a thread that starts late or reads slowly takes fewer pieces; each piece is read once', async () => {
    const next = new SharedArrayBuffer(4);
    const read: [number, number][] = [];
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const fast = takePieces({ usesSessions: false }, plans, 0, next, async (k) => {
      read.push([0, k]);
      await pause(2);
    });
    const late = pause(15).then(() =>
      takePieces({ usesSessions: false }, plans, 1, next, async (k) => {
        read.push([1, k]);
        await pause(20);
      }),
    );
    await Promise.all([fast, late]);
    expect(read.map(([, k]) => k).sort((a, b) => a - b)).toEqual(plans.plain.map((_, k) => k));
    const byLate = read.filter(([thread]) => thread === 1);
    expect(byLate.length).toBeGreaterThan(0);
    expect(byLate.length).toBeLessThan(read.length / 3);
  });

  it('with sessions: thread k reads range k only, whatever the timing', async () => {
    const next = new SharedArrayBuffer(4);
    const read: [number, number][] = [];
    await Promise.all(
      [0, 1, 2, 3].map((thread) =>
        takePieces({ usesSessions: true }, plans, thread, next, async (k) => {
          read.push([thread, k]);
        }),
      ),
    );
    expect(read.sort((a, b) => a[0] - b[0])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
  });
});
