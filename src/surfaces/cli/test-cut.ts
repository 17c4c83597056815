import { open } from 'node:fs/promises';

/**
 * Where `portcullis test --jobs N` cuts a file (see test-parallel.ts): at line starts, with a
 * warm-up stretch before each range for filters with sessions.
 */

/** Files smaller than this are read in one pass, whatever `--jobs` says. */
export const PARALLEL_MIN_BYTES = 16 * 1024 * 1024;
/** Bytes before a range that its worker feeds to a filter with sessions before counting. */
export const WARMUP_BYTES = 4 * 1024 * 1024;

export interface ByteRange {
  /** First byte counted (a line start). */
  start: number;
  /** First byte after the range (the next range's start, or the file's size). */
  end: number;
  /** Where the warm-up begins (a line start, `<= start`); `start` when there is none. */
  warmStart: number;
}

const SCAN_CHUNK_BYTES = 64 * 1024;

/**
 * The cut rule: range k (0 < k < jobs) starts at the first line start at or after
 * `floor(k * size / jobs)`, a line start being byte 0 or the byte after a `\n`. Empty ranges
 * (a line longer than a range) are left out. Deterministic: tests place lines around the cuts.
 */
export function cutTarget(size: number, jobs: number, k: number): number {
  return Math.floor((k * size) / jobs);
}

/** Plans the ranges of a `size`-byte file; `warmUp`: give ranges after the first a warm-up. */
export function planRanges(path: string, size: number, jobs: number, warmUp: boolean): Promise<ByteRange[]> {
  const targets: number[] = [];
  for (let k = 1; k < jobs; k++) targets.push(cutTarget(size, jobs, k));
  return rangesAt(path, size, targets, warmUp);
}

/** The smallest piece {@link planPieces} makes (but the last). */
export const PIECE_MIN_BYTES = 2 * 1024 * 1024;

/**
 * The pieces a filter without sessions is read in, which the threads take one after the other
 * as each is free (test-parallel.ts): each piece is `1 / (2 * jobs)` of what is left after the
 * pieces before it, at least {@link PIECE_MIN_BYTES}, so the first are big (few pieces) and the
 * last small (the threads finish together, whatever their start-up or the machine's load).
 */
export function planPieces(path: string, size: number, jobs: number): Promise<ByteRange[]> {
  const targets: number[] = [];
  for (let at = 0; ; ) {
    at += Math.max(PIECE_MIN_BYTES, Math.ceil((size - at) / (2 * jobs)));
    if (at >= size) break;
    targets.push(at);
  }
  return rangesAt(path, size, targets, false);
}

/** Ranges starting at the first line start at or after each target (ascending). */
async function rangesAt(
  path: string,
  size: number,
  targets: readonly number[],
  warmUp: boolean,
): Promise<ByteRange[]> {
  const file = await open(path, 'r');
  try {
    const starts = [0];
    for (const target of targets) {
      const at = await lineStartAtOrAfter(file, Math.max(target, starts.at(-1) ?? 0), size);
      if (at > (starts.at(-1) ?? 0) && at < size) starts.push(at);
    }
    const ranges: ByteRange[] = [];
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i] as number;
      const previous = i === 0 ? start : (starts[i - 1] as number);
      const warmStart = warmUp ? await warmUpStartIn(file, previous, start) : start;
      ranges.push({ start, end: starts[i + 1] ?? size, warmStart });
    }
    return ranges;
  } finally {
    await file.close();
  }
}

/**
 * Where the warm-up of a range starting at `start` begins: the first line start at or after
 * `start - WARMUP_BYTES`, or `previousStart` (the previous range's start) when that is later.
 */
export async function warmUpStart(path: string, previousStart: number, start: number): Promise<number> {
  if (previousStart >= start) return start;
  const file = await open(path, 'r');
  try {
    return await warmUpStartIn(file, previousStart, start);
  } finally {
    await file.close();
  }
}

function warmUpStartIn(file: FileReader, previousStart: number, start: number): Promise<number> {
  // `start` is a line start, so the scan never goes past it.
  return previousStart >= start
    ? Promise.resolve(start)
    : lineStartAtOrAfter(file, Math.max(previousStart, start - WARMUP_BYTES), start);
}

interface FileReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** The first line start at or after `position` (the file's size when no line starts there). */
export async function lineStartAtOrAfter(
  file: {
    read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  },
  position: number,
  size: number,
): Promise<number> {
  if (position <= 0) return 0;
  const buffer = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
  // The byte before `position` may be the `\n` that makes it a line start.
  for (let at = position - 1; at < size; ) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(SCAN_CHUNK_BYTES, size - at), at);
    if (bytesRead === 0) break;
    const newline = buffer.subarray(0, bytesRead).indexOf(0x0a);
    if (newline !== -1) return at + newline + 1;
    at += bytesRead;
  }
  return size;
}
