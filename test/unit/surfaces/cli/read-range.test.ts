import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { gunzipped, readRange, sniffed } from '../../../../src/surfaces/cli/test-range.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-read-range-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** Everything readRange hands over, each chunk copied before the next is asked for. */
async function collect(path: string, start: number, end: number): Promise<{ bytes: Buffer; chunks: number }> {
  const parts: Buffer[] = [];
  for await (const chunk of readRange(path, start, end)) parts.push(Buffer.from(chunk));
  return { bytes: Buffer.concat(parts), chunks: parts.length };
}

function openFiles(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('readRange (portcullis test reads ahead into two buffers)', () => {
  const bytes = randomBytes(3 * MiB + 12_345);
  const file = join(dir, 'random.bin');
  writeFileSync(file, bytes);

  it('hands over exactly the bytes of [start, end), whatever the boundaries', async () => {
    const ranges: [number, number][] = [
      [0, bytes.length],
      [0, Number.POSITIVE_INFINITY],
      [1, MiB],
      [MiB - 1, MiB + 1],
      [MiB, 2 * MiB],
      [12_345, 3 * MiB + 1],
      [2 * MiB + 7, bytes.length + 1_000],
      [500, 500],
      [700, 10],
    ];
    for (const [start, end] of ranges) {
      const { bytes: got } = await collect(file, start, end);
      expect(
        got.equals(bytes.subarray(start, Math.max(start, Math.min(end, bytes.length)))),
        `${start}-${end}`,
      ).toBe(true);
    }
  });

  it('reuses its two buffers: a chunk kept past the next one is overwritten (documented), a copy is not', async () => {
    const kept: Buffer[] = [];
    const copies: Buffer[] = [];
    for await (const chunk of readRange(file, 0, bytes.length)) {
      kept.push(chunk);
      copies.push(Buffer.from(chunk));
    }
    expect(copies.length).toBe(4);
    expect(Buffer.concat(copies).equals(bytes)).toBe(true);
    // Chunk 0 and chunk 2 share a buffer: what chunk 0 holds now is chunk 2's start.
    expect((kept[0] as Buffer).buffer).toBe((kept[2] as Buffer).buffer);
    expect((kept[0] as Buffer).buffer).not.toBe((kept[1] as Buffer).buffer);
  });

  it('closes the file when the reader stops early or the range is empty', async () => {
    const before = openFiles();
    for await (const chunk of readRange(file, 0, bytes.length)) {
      expect(chunk.length).toBe(MiB);
      break; // a read of the next chunk is under way here
    }
    for await (const _ of readRange(file, 5, 5)) throw new Error('an empty range has no chunk');
    expect(openFiles()).toBe(before);
  });

  it('stops at the end of a file that became shorter than the range', async () => {
    const short = join(dir, 'short.bin');
    writeFileSync(short, bytes);
    truncateSync(short, MiB + 10);
    const { bytes: got } = await collect(short, 0, bytes.length);
    expect(got.equals(bytes.subarray(0, MiB + 10))).toBe(true);
  });

  it('rejects a file that cannot be opened', async () => {
    await expect(collect(join(dir, 'missing.bin'), 0, 10)).rejects.toThrow(/ENOENT/);
  });
});

describe('gunzipped (portcullis test FILE.gz)', () => {
  const text = Buffer.from(
    'Nov 25 12:00:01 gate sshd[1]: Failed password for root from 192.0.2.7 port 1 ssh2\n'.repeat(2_000),
  );

  async function read(path: string, delayMs = 0): Promise<Buffer> {
    const chunks = gunzipped(path);
    // The filter loads between the moment the input is made and its first read.
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const parts: Buffer[] = [];
    for await (const chunk of chunks) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts);
  }

  it('gives the text of every member', async () => {
    const file = join(dir, 'two-members.gz');
    writeFileSync(file, Buffer.concat([gzipSync(text), gzipSync(text)]));
    expect((await read(file)).equals(Buffer.concat([text, text]))).toBe(true);
  });

  it('rejects with the error of a file cut short, also when the reading starts late', async () => {
    // A gunzip made at once and read 100 ms later failed before anyone listened: the error
    // event went unhandled and took the process down.
    const file = join(dir, 'cut.gz');
    writeFileSync(file, gzipSync(text).subarray(0, 100));
    await expect(read(file, 100)).rejects.toThrow('unexpected end of file');
    await expect(read(join(dir, 'absent.gz'), 100)).rejects.toThrow(/ENOENT/);
  });
});

describe('sniffed (standard input or a pipe, told by its first bytes)', () => {
  const text = Buffer.from(
    'Nov 25 12:00:01 gate sshd[1]: Failed password for root from 192.0.2.7 port 1 ssh2\n'.repeat(500),
  );
  const isGzip = (head: Buffer) => head[0] === 0x1f && head[1] === 0x8b;

  /** Hands over `bytes` in pieces of `size`, always in the same buffer (as readRange may). */
  function reusing(bytes: Buffer, size: number) {
    const state = { returned: false, reads: 0 };
    async function* source(): AsyncGenerator<Buffer> {
      const buffer = Buffer.alloc(size);
      try {
        for (let at = 0; at < bytes.length; at += size) {
          const n = bytes.copy(buffer, 0, at, at + size);
          state.reads++;
          yield buffer.subarray(0, n);
          buffer.fill(0x2a); // what the next read would overwrite
        }
      } finally {
        state.returned = true;
      }
    }
    return { chunks: source(), state };
  }

  async function all(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of chunks) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts);
  }

  it('passes text on byte for byte, whatever the first chunks, and gzip as its text', async () => {
    for (const size of [1, 2, 5, 6, 7, 4096]) {
      expect((await all(sniffed(reusing(text, size).chunks, isGzip))).equals(text)).toBe(true);
      const gz = Buffer.concat([gzipSync(text), gzipSync(text)]);
      expect((await all(sniffed(reusing(gz, size).chunks, isGzip))).equals(Buffer.concat([text, text]))).toBe(
        true,
      );
    }
    // Shorter than the head, and empty.
    expect((await all(sniffed(reusing(Buffer.from('ab'), 1).chunks, isGzip))).toString()).toBe('ab');
    expect((await all(sniffed(reusing(Buffer.alloc(0), 1).chunks, isGzip))).length).toBe(0);
  });

  it('sees the first bytes only, and lets the source go when refused or left early', async () => {
    const seen: Buffer[] = [];
    const refused = reusing(text, 2);
    const refuse = (head: Buffer) => {
      seen.push(Buffer.from(head));
      throw new Error('refused');
    };
    await expect(all(sniffed(refused.chunks, refuse))).rejects.toThrow('refused');
    expect(seen.map(String)).toEqual(['Nov 25']);
    expect(refused.state).toEqual({ returned: true, reads: 3 });

    const early = reusing(text, 64);
    for await (const _ of sniffed(early.chunks, isGzip)) break;
    expect(early.state.returned).toBe(true);
    expect(early.state.reads).toBeLessThan(3);

    const gz = reusing(gzipSync(text), 64);
    for await (const _ of sniffed(gz.chunks, isGzip)) break;
    expect(gz.state.returned).toBe(true);
  });

  it('rejects with the error of a gzip stream cut short', async () => {
    await expect(all(sniffed(reusing(gzipSync(text).subarray(0, 100), 7).chunks, isGzip))).rejects.toThrow(
      'unexpected end of file',
    );
  });
});
