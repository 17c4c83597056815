import { describe, expect, it } from 'vitest';
import { loadLogFilter } from '../../../../../src/detection/filters/regex/log-filter.js';
import { requiredLiterals, tokenize } from '../../../../../src/detection/filters/regex/regex-syntax.js';
import { expandTags, TagError } from '../../../../../src/detection/filters/regex/tags.js';

const filter = (failregex: string | string[], extra: Record<string, unknown> = {}) =>
  loadLogFilter({ failregex, ...extra }, { datepattern: '{NONE}', now: () => 0 });
const match = (f: ReturnType<typeof filter>, line: string) => {
  const result = f.processLine(line);
  return result.matches.length === 0 ? result.kind : result.matches.map((m) => ({ ip: m.ip, ...m.fields }));
};

describe('host tags', () => {
  it('<HOST> takes IPv4, IPv6 and [IPv6], and normalises them', () => {
    const f = filter('^from <HOST>$');
    expect(match(f, 'from 192.0.2.7')).toEqual([{ ip: '192.0.2.7' }]);
    expect(match(f, 'from 2001:DB8:0:0::7')).toEqual([{ ip: '2001:db8::7' }]);
    expect(match(f, 'from [2001:db8::7]')).toEqual([{ ip: '2001:db8::7' }]);
    expect(match(f, 'from ::ffff:192.0.2.7')).toEqual([{ ip: '192.0.2.7' }]);
    expect(match(f, 'from fe80::1%eth0')).toEqual([{ ip: 'fe80::1' }]);
  });

  it('<HOST> does not resolve DNS names: such a line is missed and says why', () => {
    const result = filter('^from <HOST>$').processLine('from host.example.com');
    expect(result).toMatchObject({ kind: 'missed', badHost: 'host.example.com', regexIndex: 0 });
    expect(filter('^from <HOST>$').processLine('from 192.0.2.300')).toMatchObject({
      kind: 'missed',
      badHost: '192.0.2.300',
    });
    expect(filter('^from <HOST>$').processLine('from 010.0.0.1')).toMatchObject({
      kind: 'missed',
      badHost: '010.0.0.1',
    });
  });

  it('<ADDR>, <IP4>, <IP6> take only addresses of their kind', () => {
    expect(match(filter('^from <ADDR>$'), 'from host.example.com')).toBe('missed');
    expect(match(filter('^from <IP4>$'), 'from 2001:db8::7')).toBe('missed');
    expect(match(filter('^from <IP6>$'), 'from 192.0.2.7')).toBe('missed');
    expect(match(filter('^from <IP6>$'), 'from 2001:db8::7')).toEqual([{ ip: '2001:db8::7' }]);
  });

  it('<CIDR> gives the address as the IP and the canonical range as a field', () => {
    expect(match(filter('^ban <CIDR>$'), 'ban 2001:db8:1:0::/64')).toEqual([
      { ip: '2001:db8:1::', cidr: '2001:db8:1::/64' },
    ]);
    expect(match(filter('^ban <CIDR>$'), 'ban 198.51.100.7/24')).toEqual([
      { ip: '198.51.100.7', cidr: '198.51.100.0/24' },
    ]);
  });

  it('(?P<host>...) is the IP too', () => {
    expect(match(filter('^ip=(?P<host>\\S+)$'), 'ip=192.0.2.9')).toEqual([{ ip: '192.0.2.9' }]);
  });
});

describe('field tags', () => {
  it('<F-NAME> and (?P<name>) become fields; F-ALT_USER merges into user', () => {
    const f = filter([
      '^user <F-USER>\\S+</F-USER> from <HOST> id <F-ID>\\d+</F-ID>$',
      '^login (?P<account>\\S+) from <HOST> via <F-AUTH-METHOD>\\w+</F-AUTH-METHOD>$',
      '^alt <F-ALT_USER1>\\S+</F-ALT_USER1> from <HOST>$',
    ]);
    expect(match(f, 'user bob from 192.0.2.7 id 42')).toEqual([{ ip: '192.0.2.7', user: 'bob', id: '42' }]);
    expect(match(f, 'login alice from 192.0.2.8 via pam')).toEqual([
      { ip: '192.0.2.8', account: 'alice', auth_method: 'pam' },
    ]);
    expect(match(f, 'alt carol from 192.0.2.9')).toEqual([{ ip: '192.0.2.9', user: 'carol' }]);
  });

  it('several groups may share a name; the one that took part gives the value', () => {
    const f = filter('^(?:user <F-USER>\\S+</F-USER>|account <F-USER>\\S+</F-USER>) from <HOST>$');
    expect(match(f, 'account dave from 192.0.2.10')).toEqual([{ ip: '192.0.2.10', user: 'dave' }]);
    const hosts = filter('^(?:v4 <IP4>|v6 <IP6>)$');
    expect(match(hosts, 'v6 2001:db8::1')).toEqual([{ ip: '2001:db8::1' }]);
  });

  it('vars are substituted, also inside each other; lower-case text in brackets stays literal', () => {
    const f = filter('^<verb> <who>$', {
      vars: { verb: 'denied', who: 'from <HOST> <port>', port: 'port \\d+' },
    });
    expect(match(f, 'denied from 192.0.2.7 port 22')).toEqual([{ ip: '192.0.2.7' }]);
    expect(expandTags('user=<bob>')).toBe('user=<bob>');
  });

  it('refuses unknown or unbalanced tags', () => {
    expect(() => expandTags('<HOSTNAME>')).toThrow(TagError);
    expect(() => expandTags('<F-USER>x')).toThrow(/not closed/);
    expect(() => expandTags('x</F-USER>')).toThrow(/not opened/);
    expect(() => expandTags('<a>', { a: '<b>', b: '<a>' })).toThrow(/loop/);
  });
});

describe('required literals (the prefilter)', () => {
  it.each([
    ['^Failed password for .* from x$', ['Failed password for ', ' from x']],
    ['^(?:Invalid|Illegal) user \\S+ from', [' user ', ' from']],
    ['^a(?:bcd)?efg', ['efg']],
    ['^x+yz', ['yz']],
    ['(?i)failed password', []],
    ['^foo|bar$', []],
    ['sshd\\[\\d+\\]: ', ['sshd[', ']: ']],
    ['\\Qa.b*c\\E', ['a.b*c']],
  ])('%s', (pattern, literals) => {
    expect(requiredLiterals(tokenize(pattern), 2).sort()).toEqual([...literals].sort());
  });
});
