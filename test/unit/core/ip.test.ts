import { describe, expect, it } from 'vitest';
import {
  checkCidr,
  clientKey,
  normalizeIp,
  parseCidr,
  parseHostPort,
  parseIp,
} from '../../../src/core/ip.js';
import { CidrSet } from '../../../src/core/prefix-trie.js';

describe('normalizeIp', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:1.2.3.4', '1.2.3.4'],
    ['::ffff:102:304', '1.2.3.4'],
    ['[2001:DB8::1]', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    [' 192.0.2.1 ', '192.0.2.1'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeIp(input)).toBe(expected);
  });

  it.each([
    '',
    'abc',
    '127.1',
    '0x7f.0.0.1',
    '010.0.0.1',
    '1.2.3.256',
    '1.2.3',
    '1.2.3.4.5',
    ':::',
    '1.2.3.4/8',
    '\u0000\u00ff',
  ])('rejects %j', (input) => {
    expect(normalizeIp(input)).toBeNull();
  });
});

describe('parseCidr and clientKey', () => {
  it('canonicalises ranges and zeroes host bits', () => {
    expect(parseCidr('10.1.2.3/8')?.text).toBe('10.0.0.0/8');
    expect(parseCidr('192.0.2.7')?.text).toBe('192.0.2.7');
    expect(parseCidr('2001:db8::1/32')?.text).toBe('2001:db8::/32');
    expect(parseCidr('::ffff:10.0.0.0/104')?.text).toBe('10.0.0.0/8');
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(parseCidr('10.0.0.0/-1')).toBeNull();
  });

  it('refuses a mapped range with host bits set instead of widening it to all of IPv4', () => {
    expect(parseCidr('::ffff:1.2.3.4/96')).toBeNull();
    expect(parseCidr('::ffff:102:304/96')).toBeNull();
    expect(checkCidr('::ffff:1.2.3.4/96')).toEqual({
      ok: false,
      reason: '::ffff:1.2.3.4/96 would mean all of IPv4 (0.0.0.0/0); for the single address write 1.2.3.4/32',
    });
    expect(checkCidr('::ffff:10.1.0.0/104')).toEqual({
      ok: false,
      reason:
        '::ffff:10.1.0.0/104 would mean 10.0.0.0/8; write 10.0.0.0/8 for that range, or 10.1.0.0/32 for the single address',
    });
    expect(parseCidr('::ffff:0.0.0.0/96')?.text).toBe('0.0.0.0/0');
    expect(parseCidr('::ffff:1.2.3.4/128')?.text).toBe('1.2.3.4');
  });

  it('accepts a range with host bits set, warning which network it means', () => {
    expect(checkCidr('10.1.2.3/8')).toMatchObject({ ok: true, warning: '10.1.2.3/8 means 10.0.0.0/8' });
    expect(checkCidr('2001:db8::1/32')).toMatchObject({
      ok: true,
      warning: '2001:db8::1/32 means 2001:db8::/32',
    });
    expect(checkCidr('10.0.0.0/8')).toMatchObject({ ok: true, warning: undefined });
    expect(checkCidr('192.0.2.7')).toMatchObject({ ok: true, warning: undefined });
  });

  it('takes IPv6 ranges that start with a mapped-looking address below /96', () => {
    expect(parseCidr('::ffff:0:0/64')?.text).toBe('::/64');
    expect(checkCidr('::ffff:0:0/64')).toMatchObject({ ok: true, warning: '::ffff:0:0/64 means ::/64' });
    expect(parseCidr('::ffff:0:0/80')?.text).toBe('::/80');
    expect(parseCidr('::/0')?.text).toBe('::/0');
    expect(parseCidr('fe80::1%eth0/64')?.text).toBe('fe80::/64');
    expect(parseCidr('[2001:db8::]/32')?.text).toBe('2001:db8::/32');
    expect(parseCidr('2001:db8::/129')).toBeNull();
  });

  it('keys IPv6 clients by their /64 (or the configured prefix)', () => {
    const ip = parseIp('2001:db8:1:2:3:4:5:6');
    expect(ip).not.toBeNull();
    expect(clientKey(ip!, 64)).toBe('2001:db8:1:2::/64');
    expect(clientKey(ip!, 128)).toBe('2001:db8:1:2:3:4:5:6');
    expect(clientKey(parseIp('192.0.2.1')!, 64)).toBe('192.0.2.1');
  });
});

describe('CidrSet', () => {
  it('matches v4, v6 and mapped addresses against ranges', () => {
    const set = new CidrSet(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32', '::ffff:172.16.0.0/108']);
    expect(set.has('10.255.0.1')).toBe(true);
    expect(set.has('::ffff:10.0.0.1')).toBe(true);
    expect(set.has('192.0.2.1')).toBe(true);
    expect(set.has('192.0.2.2')).toBe(false);
    expect(set.has('2001:db8:ffff::1')).toBe(true);
    expect(set.has('2001:db9::1')).toBe(false);
    expect(set.has('172.16.5.5')).toBe(true);
    expect(set.has('172.32.0.1')).toBe(false);
    expect(set.has('garbage')).toBe(false);
  });

  it('stays exact with thousands of entries', () => {
    const set = new CidrSet();
    for (let i = 0; i < 5000; i++) set.add(`${10 + (i % 200)}.${i >> 8}.${i & 255}.0/24`);
    expect(set.size).toBe(5000);
    expect(set.has('10.0.0.77')).toBe(true);
    expect(set.has('10.0.1.77')).toBe(false);
    expect(set.has('209.19.135.1')).toBe(true);
  });

  it('a /0 covers everything of its family only', () => {
    const set = new CidrSet(['0.0.0.0/0']);
    expect(set.has('8.8.8.8')).toBe(true);
    expect(set.has('2001:db8::1')).toBe(false);
  });
});

describe('IPv6 parser agrees with ipaddr.js', () => {
  it('on valid and invalid forms', async () => {
    const ipaddr = (await import('ipaddr.js')).default;
    const samples = [
      '::',
      '::1',
      '1::',
      '2001:db8::',
      '2001:db8::1',
      '2001:0db8:0000:0000:0000:ff00:0042:8329',
      'fe80::1:2:3:4',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7::',
      '::2:3:4:5:6:7:8',
      '1::8',
      '64:ff9b::192.0.2.33',
      '1:2:3:4:5:6:1.2.3.4',
      'ABCD:EF01::',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      ':1::',
      '1:::2',
      '12345::',
      'g::1',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::1.2.3',
      '1:',
      ':',
      '::ffff:1.2.3.4',
      '::ffff:0:0',
    ];
    // ipaddr.js reads the deprecated IPv4-compatible form `::1.2.3.4` as mapped; RFC 4291 says ::102:304.
    expect(normalizeIp('::1.2.3.4')).toBe('::102:304');
    for (const text of samples) {
      const ours = parseIp(text);
      const theirs = ipaddr.IPv6.isValid(text) ? ipaddr.IPv6.parse(text) : null;
      if (theirs === null) {
        expect(ours, text).toBeNull();
      } else if (theirs.isIPv4MappedAddress()) {
        expect(ours?.family, text).toBe(4);
        expect(normalizeIp(text)).toBe(theirs.toIPv4Address().toString());
      } else {
        expect(normalizeIp(text), text).toBe(theirs.toRFC5952String());
      }
    }
  });
});

describe('parseHostPort', () => {
  it.each([
    ['0.0.0.0:8080', { host: '0.0.0.0', port: 8080 }],
    ['[::1]:0', { host: '::1', port: 0 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
    ['proxy-1.internal.example:80', { host: 'proxy-1.internal.example', port: 80 }],
    [':8080', { host: undefined, port: 8080 }],
    ['8080', { host: undefined, port: 8080 }],
  ])('parses %s', (text, expected) => {
    expect(parseHostPort(text)).toEqual(expected);
  });

  // A numeric-looking host that is not a dotted quad would reach getaddrinfo, which reads `10.1` as 10.0.0.1.
  it.each([
    '256.0.0.1:8080',
    '10.1:80',
    '1.2.3.4.5:80',
    '0x7f.0.0.1:80',
    '-bad-.example:80',
    'a..b:80',
    'a_b:80',
    '1.2.3.4:65536',
    '1.2.3.4:-1',
    '[1.2.3.4]:80',
    '::1:80',
    '',
  ])('refuses %j', (text) => {
    expect(parseHostPort(text)).toBeNull();
  });
});
