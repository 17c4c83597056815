import { describe, expect, it } from 'vitest';
import { clientKey, normalizeIp, parseCidr, parseIp } from '../../../src/core/ip.js';
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
