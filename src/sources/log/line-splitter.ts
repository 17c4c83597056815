import { isAscii } from 'node:buffer';

/** Longest line kept, in bytes, unless a source says otherwise. */
export const DEFAULT_MAX_LINE_LENGTH = 16_384;

const NEWLINE = 0x0a;
/** Complete lines are decoded this many bytes at a time (a string under V8's large-object size). */
const SLICE_BYTES = 64 * 1024;
const CARRIAGE_RETURN = 13;

/**
 * Splits a byte stream into complete lines, decoded as UTF-8 (invalid sequences become U+FFFD,
 * NUL bytes stay). A line longer than `maxLineLength` bytes is cut to that length and the rest of
 * it is dropped as it arrives, so memory never grows past the limit however long the line is. The
 * bytes after the last `\n` are held until the line is completed (or {@link flush}ed).
 *
 * Complete lines are decoded in one call per chunk: a `\n` byte can never be part of a multi-byte
 * UTF-8 sequence, so decoding many lines at once gives exactly what decoding each would. Bytes that
 * are all ASCII (most logs) are copied as Latin-1, the same characters at a fraction of the cost.
 */
export class LineSplitter {
  readonly #max: number;
  readonly #decoder = new TextDecoder('utf-8', { fatal: false });
  #pending: Buffer | undefined;
  #pendingLength = 0;
  #held = 0;
  #discarding = false;
  #truncated = 0;

  /** @param maxLineLength longest line kept, in bytes. Default 16384. */
  constructor(maxLineLength = DEFAULT_MAX_LINE_LENGTH) {
    if (!Number.isSafeInteger(maxLineLength) || maxLineLength < 1) {
      throw new RangeError(`maxLineLength: expected a whole number of bytes >= 1, got ${maxLineLength}`);
    }
    this.#max = maxLineLength;
  }

  /**
   * Bytes received after the last `\n` (the line being held, including any part already dropped
   * because it was too long). `bytes pushed - heldBytes` is where the last complete line ended.
   */
  get heldBytes(): number {
    return this.#held;
  }

  /** Lines cut to `maxLineLength` so far. */
  get truncatedLines(): number {
    return this.#truncated;
  }

  /**
   * Feeds bytes; returns the lines they complete, without their `\n` (and without a `\r` before
   * it). The chunk is not kept: callers may reuse its memory once this returns.
   */
  push(chunk: Uint8Array): string[] {
    const out: string[] = [];
    this.forEachLine(chunk, (line) => out.push(line));
    return out;
  }

  /**
   * {@link push} handing each line to `each` as soon as it is decoded: a big chunk is decoded a
   * few tens of KiB at a time, so no chunk-sized string is made (V8 puts strings over 128 KiB in
   * its large-object space, old generation: each one brings the next full collection closer) and
   * no array of thousands of lines outlives a young-generation collection.
   */
  forEachLine(chunk: Uint8Array, each: (line: string) => void): void {
    const firstNewline = chunk.indexOf(NEWLINE);
    if (firstNewline === -1) {
      this.#hold(chunk, 0, chunk.length);
      return;
    }
    let start = 0;
    if (this.#held > 0) {
      this.#hold(chunk, 0, firstNewline);
      each(this.#takeHeld());
      start = firstNewline + 1;
    }
    const lastNewline = chunk.lastIndexOf(NEWLINE);
    while (lastNewline >= start) {
      // Up to the last `\n` within SLICE_BYTES (or the next one, for a longer line).
      let end = lastNewline;
      if (end - start > SLICE_BYTES) {
        end = chunk.lastIndexOf(NEWLINE, start + SLICE_BYTES);
        if (end < start) end = chunk.indexOf(NEWLINE, start + SLICE_BYTES);
      }
      this.#splitComplete(chunk.subarray(start, end), each);
      start = end + 1;
    }
    if (start < chunk.length) this.#hold(chunk, start, chunk.length);
  }

  /** Returns the held partial line as a line (the stream ended), or `undefined` when there is none. */
  flush(): string | undefined {
    return this.#held > 0 ? this.#takeHeld() : undefined;
  }

  /** Forgets the held partial line. */
  reset(): void {
    this.#pendingLength = 0;
    this.#held = 0;
    this.#discarding = false;
  }

  /** `region` holds whole lines separated by `\n`, the last one's `\n` excluded. */
  #splitComplete(region: Uint8Array, each: (line: string) => void): void {
    if (region.length > this.#max && hasLongLine(region, this.#max)) {
      // Rare: cut lines one by one.
      let from = 0;
      for (;;) {
        const newline = region.indexOf(NEWLINE, from);
        const end = newline === -1 ? region.length : newline;
        if (end - from > this.#max) this.#truncated++;
        each(stripCr(this.#decode(region.subarray(from, Math.min(end, from + this.#max)))));
        if (newline === -1) return;
        from = newline + 1;
      }
    }
    const lines = this.#decode(region).split('\n');
    for (let i = 0; i < lines.length; i++) each(stripCr(lines[i] as string));
  }

  /** UTF-8 → string; ASCII, which is the same in Latin-1, by the cheaper copy. */
  #decode(bytes: Uint8Array): string {
    if (isAscii(bytes))
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    return this.#decoder.decode(bytes);
  }

  #hold(chunk: Uint8Array, from: number, to: number): void {
    const length = to - from;
    this.#held += length;
    if (this.#discarding || length === 0) return;
    const room = this.#max - this.#pendingLength;
    const take = Math.min(room, length);
    if (take > 0) {
      this.#pending ??= Buffer.allocUnsafe(this.#max);
      this.#pending.set(chunk.subarray(from, from + take), this.#pendingLength);
      this.#pendingLength += take;
    }
    if (length > room) this.#discarding = true;
  }

  #takeHeld(): string {
    if (this.#discarding) this.#truncated++;
    const line =
      this.#pending === undefined ? '' : this.#decode(this.#pending.subarray(0, this.#pendingLength));
    this.reset();
    return stripCr(line);
  }
}

function hasLongLine(region: Uint8Array, max: number): boolean {
  let from = 0;
  for (;;) {
    const newline = region.indexOf(NEWLINE, from);
    const end = newline === -1 ? region.length : newline;
    if (end - from > max) return true;
    if (newline === -1) return false;
    from = newline + 1;
  }
}

function stripCr(line: string): string {
  return line.charCodeAt(line.length - 1) === CARRIAGE_RETURN ? line.slice(0, -1) : line;
}
