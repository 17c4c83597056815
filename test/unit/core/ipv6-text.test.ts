import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/load.js';
import { clientKey, normalizeIp, parseIp } from '../../../src/core/ip.js';
import { formatIPv6, isCanonicalIPv6 } from '../../../src/core/ipv6-text.js';
import { JailSet } from '../../../src/detection/jails/jail-set.js';

/** The same small generator on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Every pattern of zero and non-zero groups, with group values of every width (1, 0xab, 0x0f00, 0xffff). */
function* addresses(): Generator<Uint8Array> {
  const next = random(3);
  const widths = [0x1, 0xab, 0xf00, 0xffff, 0x10, 0x8000];
  for (let pattern = 0; pattern < 256; pattern++) {
    for (let variant = 0; variant < 12; variant++) {
      const bytes = new Uint8Array(16);
      for (let group = 0; group < 8; group++) {
        if ((pattern & (1 << group)) === 0) continue;
        const value = variant < widths.length ? (widths[variant] as number) : 1 + Math.floor(next() * 0xffff);
        bytes[2 * group] = value >> 8;
        bytes[2 * group + 1] = value & 0xff;
      }
      yield bytes;
    }
  }
}

describe('formatIPv6', () => {
  it('writes exactly what ipaddr.js writes (RFC 5952) for every pattern of zero groups', () => {
    let checked = 0;
    for (const bytes of addresses()) {
      const expected = (ipaddr.fromByteArray([...bytes]) as ipaddr.IPv6).toRFC5952String();
      expect(formatIPv6(bytes), expected).toBe(expected);
      checked++;
    }
    expect(checked).toBe(256 * 12);
  });

  it('names the examples of RFC 5952 as it says', () => {
    const text = (address: string) => {
      const parsed = parseIp(address);
      if (parsed?.family !== 6) throw new Error(address);
      return formatIPv6(parsed.bytes);
    };
    expect(text('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(text('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(text('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(text('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1');
    expect(text('::')).toBe('::');
    expect(text('fe80:0:0:0:0:0:0:0')).toBe('fe80::');
    expect(text('2001:DB8::ABCD')).toBe('2001:db8::abcd');
  });

  it('a jail keys an IPv6 client by its network exactly like clientKey, for every ipv6_prefix', () => {
    const next = random(5);
    for (const prefix of [16, 32, 48, 56, 60, 64, 80, 96, 112, 120, 127, 128]) {
      const config = resolveConfig(
        { jails: { sshd: { ipv6_prefix: prefix, ignoreip: [], ignoreself: false } } },
        { env: {} },
      );
      const jail = new JailSet(config).get('sshd');
      if (jail === undefined) throw new Error('no jail');
      let i = 0;
      for (const bytes of addresses()) {
        if (i++ % 7 !== 0) continue;
        const ip = { family: 6 as const, bytes };
        expect(jail.keyOf(ip)).toBe(clientKey(ip, prefix));
      }
      const v4 = parseIp(`198.51.100.${Math.floor(next() * 255)}`);
      if (v4 === null) throw new Error('v4');
      expect(jail.keyOf(v4)).toBe(clientKey(v4, prefix));
    }
  });
});

/**
 * Texts of the addresses above, written every way RFC 4291 allows: each group in full (`0db8`) or
 * short, upper or lower case, any one run of zero groups (or none) as `::`, at times with a zone, in
 * brackets, with a dotted tail, or broken (a group too many, a `:::`).
 */
function* spellings(): Generator<string> {
  const next = random(11);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  for (const bytes of addresses()) {
    const groups = Array.from(
      { length: 8 },
      (_, g) => ((bytes[2 * g] as number) << 8) | (bytes[2 * g + 1] as number),
    );
    for (let variant = 0; variant < 6; variant++) {
      const written = groups.map((value) => {
        let hex = value.toString(16);
        if (next() < 0.1) hex = hex.padStart(4, '0');
        if (next() < 0.05) hex = hex.toUpperCase();
        return hex;
      });
      // Compress one run of zero groups (of any length, 1 included), or none.
      const runs: [number, number][] = [];
      for (let g = 0; g < 8; g++) {
        if (groups[g] !== 0) continue;
        let end = g;
        while (end < 8 && groups[end] === 0) end++;
        for (let a = g; a < end; a++) for (let b = a + 1; b <= end; b++) runs.push([a, b]);
        g = end;
      }
      let text = written.join(':');
      if (runs.length > 0 && next() < 0.8) {
        const [a, b] = pick(runs);
        text = `${written.slice(0, a).join(':')}::${written.slice(b).join(':')}`;
      }
      const r = next();
      if (r < 0.03) text = `${text}%eth0`;
      else if (r < 0.06) text = `[${text}]`;
      else if (r < 0.08) text = `${text}:1`;
      else if (r < 0.1) text = text.replace('::', ':::');
      else if (r < 0.12) text = `::ffff:${1 + Math.floor(next() * 200)}.0.2.${Math.floor(next() * 256)}`;
      yield text;
    }
    // The canonical text itself, every time.
    yield formatIPv6(bytes);
  }
}

describe('isCanonicalIPv6', () => {
  it('is true exactly for the texts normalizeIp gives back unchanged as IPv6', () => {
    let canonical = 0;
    let other = 0;
    for (const text of spellings()) {
      const parsed = parseIp(text);
      const expected = parsed?.family === 6 && normalizeIp(text) === text;
      expect(isCanonicalIPv6(text), text).toBe(expected);
      if (expected) canonical++;
      else other++;
    }
    // Both sides well represented.
    expect(canonical).toBeGreaterThan(3000);
    expect(other).toBeGreaterThan(10000);
  });

  it('turns down what only looks canonical', () => {
    for (const text of [
      '::ffff:c000:201', // IPv4-mapped: 192.0.2.1
      '2001:db8:0::1', // a zero group next to the ::
      '2001:db8::0:1',
      '2001:0:0:1::1', // fine: the longer run is compressed
      '2001::1:0:0:1', // an equal run after the :: is fine, before it is not
      '2001:0:0:1::1:1:1',
      '1:2:3:4:5:6:7::', // :: for one group
      '1::2::3',
      ':1::',
      '1:2:3:4:5:6:7:8:9',
      '2001:db8::01',
      '2001:DB8::1',
      '',
      ':',
    ]) {
      expect(isCanonicalIPv6(text), text).toBe(parseIp(text)?.family === 6 && normalizeIp(text) === text);
    }
    expect(isCanonicalIPv6('::')).toBe(true);
    expect(isCanonicalIPv6('::1')).toBe(true);
    expect(isCanonicalIPv6('fe80::')).toBe(true);
    expect(isCanonicalIPv6('2001:0:0:1::1')).toBe(true);
    expect(isCanonicalIPv6('2001:db8:0::1')).toBe(false);
    expect(isCanonicalIPv6('::ffff:c000:201')).toBe(false);
  });
});
