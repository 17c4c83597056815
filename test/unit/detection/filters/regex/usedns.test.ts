import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../../src/core/errors.js';
import { DnsCache, isDnsName, type Resolver } from '../../../../../src/detection/filters/regex/dns.js';
import {
  type LogFilterOptions,
  type LogMatch,
  loadLogFilter,
} from '../../../../../src/detection/filters/regex/log-filter.js';

const NOW = Date.UTC(2026, 10, 25, 13, 0, 0);
const base: LogFilterOptions = { logtimezone: 'UTC', now: () => NOW };
const line = (host: string, second = 1) =>
  `Nov 25 12:00:0${second} gate sshd[4101]: Failed password for root from ${host} port 51234 ssh2`;

/** A resolver answering from a table; counts calls; `hold` makes it wait until released. */
function fakeResolver(table: Record<string, string[]>) {
  const calls: string[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> | null = null;
  const resolver: Resolver = async (name) => {
    calls.push(name);
    if (gate !== null) await gate;
    const ips = table[name.toLowerCase()];
    if (ips === undefined) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return ips;
  };
  return {
    resolver,
    calls,
    hold() {
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
  };
}

describe('usedns', () => {
  it('no (the default): a DNS name is a missed line, and nothing is looked up', async () => {
    const dns = fakeResolver({ 'attacker.example.com': ['192.0.2.7'] });
    const late: LogMatch[][] = [];
    const filter = loadLogFilter('sshd', {
      ...base,
      dns: { resolver: dns.resolver },
      onResolved: (m) => late.push(m),
    });
    const result = filter.processLine(line('attacker.example.com'));
    expect(result.kind).toBe('missed');
    expect(result.badHost).toBe('attacker.example.com');
    await filter.settled();
    expect(dns.calls).toEqual([]);
    expect(late).toEqual([]);
  });

  it('yes: the failure is counted when the name resolves, with the line time; then from the cache', async () => {
    const dns = fakeResolver({ 'attacker.example.com': ['192.0.2.7', '2001:db8::7'] });
    const late: LogMatch[][] = [];
    const filter = loadLogFilter('sshd', {
      ...base,
      usedns: 'yes',
      dns: { resolver: dns.resolver },
      onResolved: (m) => late.push(m),
    });
    const first = filter.processLine(line('attacker.example.com', 1));
    // Never on the hot path: the line returns before the lookup.
    expect(first.kind).toBe('info');
    expect(first.resolving).toBe('attacker.example.com');
    expect(first.matches).toEqual([]);
    await filter.settled();
    expect(late).toHaveLength(1);
    expect(late[0]?.map((m) => m.ip)).toEqual(['192.0.2.7', '2001:db8::7']);
    expect(late[0]?.[0]?.timeMs).toBe(Date.UTC(2026, 10, 25, 12, 0, 1));
    expect(late[0]?.[0]?.fields).toMatchObject({ user: 'root', dns: 'attacker.example.com' });
    // Second line, same name (any case): matched at once from the cache, no second lookup.
    const second = filter.processLine(line('ATTACKER.example.com', 2));
    expect(second.kind).toBe('match');
    expect(second.matches.map((m) => m.ip)).toEqual(['192.0.2.7', '2001:db8::7']);
    expect(dns.calls).toEqual(['attacker.example.com']);
  });

  it('yes: lines with a name still being looked up share one lookup and are each counted', async () => {
    const dns = fakeResolver({ 'slow.example.net': ['198.51.100.9'] });
    dns.hold();
    const late: LogMatch[][] = [];
    const filter = loadLogFilter('sshd', {
      ...base,
      usedns: 'yes',
      dns: { resolver: dns.resolver },
      onResolved: (m) => late.push(m),
    });
    for (let i = 1; i <= 3; i++) expect(filter.processLine(line('slow.example.net', i)).kind).toBe('info');
    expect(dns.calls).toEqual(['slow.example.net']);
    expect(late).toEqual([]);
    dns.release();
    await filter.settled();
    expect(late.map((m) => [m[0]?.ip, m[0]?.timeMs])).toEqual([
      ['198.51.100.9', Date.UTC(2026, 10, 25, 12, 0, 1)],
      ['198.51.100.9', Date.UTC(2026, 10, 25, 12, 0, 2)],
      ['198.51.100.9', Date.UTC(2026, 10, 25, 12, 0, 3)],
    ]);
  });

  it('a name that does not resolve, or too slowly, counts nothing and is remembered as failed', async () => {
    const never: Resolver = () => new Promise(() => {});
    let clock = NOW;
    const cache = new DnsCache({ resolver: never, timeoutMs: 30, negativeCacheMs: 60_000, now: () => clock });
    const late: LogMatch[][] = [];
    const filter = loadLogFilter('sshd', {
      ...base,
      usedns: 'yes',
      dns: cache,
      onResolved: (m) => late.push(m),
    });
    const started = Date.now();
    expect(filter.processLine(line('tarpit.example.org')).kind).toBe('info');
    await filter.settled();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(late).toEqual([]);
    expect(cache.lookups).toBe(1);
    // Remembered: the next line is missed at once, without a lookup.
    const again = filter.processLine(line('tarpit.example.org', 2));
    expect(again.kind).toBe('missed');
    expect(again.badHost).toBe('tarpit.example.org');
    expect(cache.lookups).toBe(1);
    // After negativeCacheMs it is tried again.
    clock += 60_001;
    expect(filter.processLine(line('tarpit.example.org', 3)).kind).toBe('info');
    expect(cache.lookups).toBe(2);
    await filter.settled();
  });

  it('answers expire after cacheMs; the cache is bounded', async () => {
    const dns = fakeResolver({
      'a.example': ['192.0.2.1'],
      'b.example': ['192.0.2.2'],
      'c.example': ['192.0.2.3'],
    });
    let clock = NOW;
    const cache = new DnsCache({ resolver: dns.resolver, cacheMs: 1000, maxEntries: 2, now: () => clock });
    expect(await cache.resolve('a.example')).toEqual(['192.0.2.1']);
    expect(cache.cached('a.example')).toEqual(['192.0.2.1']);
    clock += 1001;
    expect(cache.cached('a.example')).toBeUndefined();
    await cache.resolve('a.example');
    await cache.resolve('b.example');
    await cache.resolve('c.example');
    expect(cache.cached('a.example')).toBeUndefined();
    expect(cache.cached('c.example')).toEqual(['192.0.2.3']);
    expect(dns.calls).toEqual(['a.example', 'a.example', 'b.example', 'c.example']);
  });

  it('warn: resolves, and warns once per name', async () => {
    const dns = fakeResolver({ 'mail.example.com': ['192.0.2.25'] });
    const warnings: [string, readonly string[]][] = [];
    const late: LogMatch[][] = [];
    const filter = loadLogFilter('sshd', {
      ...base,
      usedns: 'warn',
      dns: { resolver: dns.resolver },
      onResolved: (m) => late.push(m),
      onDnsWarning: (name, ips) => warnings.push([name, ips]),
    });
    filter.processLine(line('mail.example.com', 1));
    await filter.settled();
    expect(filter.processLine(line('mail.example.com', 2)).kind).toBe('match');
    expect(filter.processLine(line('mail.example.com', 3)).kind).toBe('match');
    expect(late).toHaveLength(1);
    expect(warnings).toEqual([['mail.example.com', ['192.0.2.25']]]);
  });

  it('only name-shaped hosts are looked up; a bad address stays a missed line', async () => {
    const dns = fakeResolver({});
    const filter = loadLogFilter('sshd', { ...base, usedns: 'yes', dns: { resolver: dns.resolver } });
    // 1.2.3.999 is neither an address nor a name (a label may not be all digits at the top).
    const result = filter.processLine(line('1.2.3.999'));
    expect(result.kind).toBe('missed');
    await filter.settled();
    expect(dns.calls).toEqual([]);
    expect(isDnsName('mail.example.com')).toBe(true);
    expect(isDnsName('localhost')).toBe(true);
    expect(isDnsName('1.2.3.999')).toBe(false);
    expect(isDnsName('a..b')).toBe(false);
    expect(isDnsName(`${'a'.repeat(64)}.com`)).toBe(false);
  });

  it('refuses an unknown usedns value, naming the key', () => {
    expect(() =>
      loadLogFilter('sshd', { ...base, usedns: 'raw' as never, optionsWhere: 'portcullis.yaml: jails.sshd' }),
    ).toThrow(ConfigError);
    try {
      loadLogFilter('sshd', { ...base, usedns: 'raw' as never, optionsWhere: 'portcullis.yaml: jails.sshd' });
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        'portcullis.yaml: jails.sshd.usedns: expected no, warn or yes, got "raw"',
      ]);
    }
  });
});
