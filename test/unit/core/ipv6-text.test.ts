import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../src/config/load.js';
import { clientKey, parseIp } from '../../../src/core/ip.js';
import { formatIPv6 } from '../../../src/core/ipv6-text.js';
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
