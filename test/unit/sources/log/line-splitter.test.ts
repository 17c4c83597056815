import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../../../src/sources/log/line-splitter.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

describe('LineSplitter', () => {
  it('splits complete lines and holds a partial last line until it is completed', () => {
    const splitter = new LineSplitter();
    expect(splitter.push(bytes('one\ntwo\nthr'))).toEqual(['one', 'two']);
    expect(splitter.heldBytes).toBe(3);
    expect(splitter.push(bytes('ee'))).toEqual([]);
    expect(splitter.push(bytes('\nfour\n'))).toEqual(['three', 'four']);
    expect(splitter.heldBytes).toBe(0);
  });

  it('drops the \\r of CRLF line ends and keeps empty lines', () => {
    expect(new LineSplitter().push(bytes('a\r\n\r\nb\n\n'))).toEqual(['a', '', 'b', '']);
  });

  it('cuts a line longer than maxLineLength and keeps the next line intact', () => {
    const splitter = new LineSplitter(8);
    expect(splitter.push(bytes('0123456789abcdef\nshort\n'))).toEqual(['01234567', 'short']);
    expect(splitter.truncatedLines).toBe(1);
  });

  it('keeps a line of exactly maxLineLength bytes whole', () => {
    const splitter = new LineSplitter(4);
    expect(splitter.push(bytes('abcd\nabcde\n'))).toEqual(['abcd', 'abcd']);
    expect(splitter.truncatedLines).toBe(1);
  });

  it('never holds more than maxLineLength bytes of a 1 MB line arriving in pieces', () => {
    const splitter = new LineSplitter(16_384);
    const piece = Buffer.alloc(65_536, 0x61);
    for (let i = 0; i < 16; i++) expect(splitter.push(piece)).toEqual([]);
    expect(splitter.heldBytes).toBe(16 * 65_536);
    const lines = splitter.push(bytes('tail\nnext line\n'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('a'.repeat(16_384));
    expect(lines[1]).toBe('next line');
    expect(splitter.truncatedLines).toBe(1);
  });

  it('decodes invalid UTF-8 as U+FFFD per line, also when a sequence is split across chunks', () => {
    const splitter = new LineSplitter();
    const euro = bytes('€'); // e2 82 ac
    expect(splitter.push(Buffer.concat([bytes('x'), euro.subarray(0, 2)]))).toEqual([]);
    expect(splitter.push(Buffer.concat([euro.subarray(2), bytes('\n')]))).toEqual(['x€']);
    expect(splitter.push(Buffer.from([0x66, 0xff, 0x0a, 0xe2, 0x82, 0x0a, 0x6f, 0x6b, 0x0a]))).toEqual([
      'f\uFFFD',
      '\uFFFD',
      'ok',
    ]);
  });

  it('passes NUL bytes through', () => {
    expect(new LineSplitter().push(Buffer.from('a\0b\n\0\n', 'latin1'))).toEqual(['a\0b', '\0']);
  });

  it('flush() returns the held partial line once', () => {
    const splitter = new LineSplitter();
    splitter.push(bytes('done\npartial'));
    expect(splitter.flush()).toBe('partial');
    expect(splitter.flush()).toBeUndefined();
  });

  it('rejects a maxLineLength below 1', () => {
    expect(() => new LineSplitter(0)).toThrow(/maxLineLength/);
  });

  it('decodes exactly as a UTF-8 decoder does, whether a chunk is all ASCII or not (invalid bytes included)', () => {
    let state = 7;
    const next = () => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state;
    };
    const alphabets = [
      [0x41, 0x7a, 0x20, 0x0a, 0x0d, 0x00, 0x7f], // ASCII only: the Latin-1 copy
      [0x41, 0x0a, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80], // UTF-8 sequences
      [0x41, 0x0a, 0xff, 0xc3, 0x80, 0xed, 0xa0, 0x80, 0xf4, 0x90], // invalid and overlong bytes
    ];
    for (const alphabet of alphabets) {
      for (let round = 0; round < 200; round++) {
        const length = next() % 300;
        const data = Buffer.from(Array.from({ length }, () => alphabet[next() % alphabet.length] as number));
        const splitter = new LineSplitter(64);
        const got: string[] = [];
        for (let at = 0; at < data.length; ) {
          const size = 1 + (next() % 40);
          got.push(...splitter.push(data.subarray(at, at + size)));
          at += size;
        }
        const last = splitter.flush();
        if (last !== undefined) got.push(last);
        // The reference: each line alone through TextDecoder, cut to 64 bytes, CR dropped.
        const expected: string[] = [];
        let from = 0;
        for (;;) {
          const newline = data.indexOf(0x0a, from);
          const end = newline === -1 ? data.length : newline;
          if (newline === -1 && end === from) break;
          const line = new TextDecoder().decode(data.subarray(from, Math.min(end, from + 64)));
          expected.push(line.endsWith('\r') ? line.slice(0, -1) : line);
          if (newline === -1) break;
          from = newline + 1;
        }
        expect(got).toEqual(expected);
      }
    }
  });

  it('gives the same lines, one by one, from chunks of 1 MiB (decoded 64 KiB at a time) as line by line', () => {
    let state = 11;
    const next = () => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state >>> 8;
    };
    // Lines of every length around the slice size: short ones, ones of 60-70 KiB, CRLF, empty
    // lines, non-ASCII, and one longer than maxLineLength; chunks cut anywhere.
    const parts: string[] = [];
    for (let total = 0; total < 3 * 1024 * 1024; total += (parts.at(-1) as string).length) {
      const kind = next() % 10;
      const length = kind === 0 ? 60_000 + (next() % 10_000) : kind === 1 ? 0 : next() % 300;
      const text = 'x'.repeat(length).replace(/x/g, () => 'ab cé\u2028z'[next() % 7] as string);
      parts.push(`${text}${kind === 2 ? '\r\n' : '\n'}`);
    }
    parts.push('y'.repeat(200_000)); // no newline at the end, longer than the limit
    const data = Buffer.from(parts.join(''), 'utf8');
    const max = 100_000;
    const splitter = new LineSplitter(max);
    const got: string[] = [];
    for (let at = 0; at < data.length; ) {
      const size = (1 << 20) - (next() % 4096);
      splitter.forEachLine(data.subarray(at, at + size), (line) => got.push(line));
      at += size;
    }
    const last = splitter.flush();
    if (last !== undefined) got.push(last);
    const expected = parts.map((part) => {
      const line = part.replace(/\r?\n$/, '');
      const cut = Buffer.from(line, 'utf8').subarray(0, max);
      return new TextDecoder().decode(cut);
    });
    expect(got.length).toBe(expected.length);
    expect(got).toEqual(expected);
    expect(splitter.truncatedLines).toBe(1);
  });
});
