import { describe, expect, it } from 'vitest';
import { parseConfigText, resolveConfig } from '../../../../../src/config/load.js';
import { compileHttpFilter, statusSet } from '../../../../../src/detection/filters/http/compile.js';
import { DistinctTracker } from '../../../../../src/detection/filters/http/distinct.js';
import type { HttpFilterSpec } from '../../../../../src/detection/filters/http/filter-schema.js';
import { parseRate } from '../../../../../src/detection/filters/http/rate.js';
import type { HttpEvent } from '../../../../../src/sources/http/http-event.js';
import { decodeOnce } from '../../../../../src/sources/http/http-event.js';
import { event } from '../../../../helpers/http-events.js';

const matches = (spec: HttpFilterSpec, e: HttpEvent) => compileHttpFilter(spec).matches(e);

describe('HTTP filter matching', () => {
  it('status: codes, classes, ranges and lists', () => {
    expect(matches({ status: 404 }, event({ status: 404 }))).toBe(true);
    expect(matches({ status: '4xx' }, event({ status: 451 }))).toBe(true);
    expect(matches({ status: '4xx' }, event({ status: 500 }))).toBe(false);
    expect(matches({ status: ['401', '500-503'] }, event({ status: 502 }))).toBe(true);
    expect(matches({ status: ['401', '500-503'] }, event({ status: 504 }))).toBe(false);
    expect(matches({ status: 200 }, event({ status: 0, aborted: true }))).toBe(false);
    expect([...statusSet('2xx')].filter(Boolean)).toHaveLength(100);
  });

  it('method is case-insensitive; path, host, user agent, referer and query are RE2 searches', () => {
    expect(matches({ method: ['post', 'PUT'] }, event({ method: 'POST' }))).toBe(true);
    expect(matches({ method: 'POST' }, event({ method: 'GET' }))).toBe(false);
    expect(matches({ path: '^/login$' }, event({ url: '/login?next=/' }))).toBe(true);
    expect(matches({ path: '^/login$' }, event({ url: '/login/x' }))).toBe(false);
    expect(matches({ path: '(?i)/ADMIN' }, event({ url: '/admin' }))).toBe(true);
    expect(matches({ host: '^api\\.' }, event({ host: 'api.example.com' }))).toBe(true);
    expect(matches({ user_agent: 'curl/' }, event({ userAgent: 'curl/8.5.0' }))).toBe(true);
    expect(matches({ referer: 'casino' }, event({ referer: 'http://casino.example/' }))).toBe(true);
    expect(matches({ query: '(?i)union\\s+select' }, event({ url: '/item?id=1 UNION SELECT 1' }))).toBe(true);
    expect(matches({ url: '%2e%2e' }, event({ url: '/a/%2e%2e/b' }))).toBe(true);
  });

  it('path is decoded once, so encoded probes read as what they name', () => {
    expect(matches({ path: '/\\.env$' }, event({ url: '/%2eenv' }))).toBe(true);
    expect(matches({ path: '/\\.env' }, event({ url: '/%2eenv%zz' }))).toBe(true);
    expect(decodeOnce('/a%c0%af%2e')).toBe('/a%c0%af.');
  });

  it('headers: any request header, "^$" for a missing one', () => {
    const spec = { headers: { 'X-Api-Key': '^$' } };
    expect(matches(spec, event())).toBe(true);
    expect(matches(spec, event({ headers: { 'x-api-key': 'k' } }))).toBe(false);
    expect(
      matches({ headers: { accept: 'text/html' } }, event({ headers: { accept: 'text/html,*/*' } })),
    ).toBe(true);
  });

  it('keys at one level all match; all, any and not combine', () => {
    const spec: HttpFilterSpec = {
      status: [401, 403],
      any: [{ path: '^/login' }, { path: '^/api/session' }],
      not: { headers: { 'x-internal': 'yes' } },
    };
    expect(matches(spec, event({ status: 401, url: '/login' }))).toBe(true);
    expect(matches(spec, event({ status: 401, url: '/api/session' }))).toBe(true);
    expect(matches(spec, event({ status: 200, url: '/login' }))).toBe(false);
    expect(matches(spec, event({ status: 401, url: '/other' }))).toBe(false);
    expect(matches(spec, event({ status: 401, url: '/login', headers: { 'x-internal': 'yes' } }))).toBe(
      false,
    );
    expect(
      matches({ all: [{ method: 'POST' }, { status: '2xx' }] }, event({ method: 'POST', status: 201 })),
    ).toBe(true);
    expect(matches({}, event())).toBe(true);
  });
});

describe('any: with lone regexes on one field', () => {
  it('answers as each branch would alone: flags stay with their own pattern', () => {
    const spec: HttpFilterSpec = {
      any: [
        { path: '\\Qa+b' },
        { path: '(?i)/ADMIN' },
        { path: '(?-i)^/x$' },
        { user_agent: 'curl/' },
        { path: '/a\\.b', status: 404 },
      ],
    };
    expect(matches(spec, event({ url: '/a+b' }))).toBe(true);
    expect(matches(spec, event({ url: '/admin' }))).toBe(true);
    expect(matches(spec, event({ url: '/x' }))).toBe(true);
    // path is case-insensitive by default; `(?-i)` opts out, and no branch's flags leak into another.
    expect(matches(spec, event({ url: '/X' }))).toBe(false);
    expect(matches(spec, event({ url: '/y', userAgent: 'curl/8' }))).toBe(true);
    expect(matches(spec, event({ url: '/a.b', status: 404 }))).toBe(true);
    expect(matches(spec, event({ url: '/a.b', status: 200 }))).toBe(false);
  });

  it('keeps patterns that cannot share one RE2 (a group name used twice) apart', () => {
    const spec: HttpFilterSpec = { any: [{ path: '(?<p>/a)$' }, { path: '(?<p>/b)$' }] };
    expect(matches(spec, event({ url: '/a' }))).toBe(true);
    expect(matches(spec, event({ url: '/b' }))).toBe(true);
    expect(matches(spec, event({ url: '/c' }))).toBe(false);
  });
});

describe('distinct values per client', () => {
  it('counts a value only when it is new for the client within the window', () => {
    const tracker = new DistinctTracker({ windowMs: 60_000 });
    expect(tracker.isNew('a', '/x', 0)).toBe(true);
    expect(tracker.isNew('a', '/x', 1_000)).toBe(false); // a reload
    expect(tracker.isNew('a', '/y', 2_000)).toBe(true);
    expect(tracker.isNew('b', '/x', 2_000)).toBe(true); // another client
    expect(tracker.isNew('a', '/x', 61_001)).toBe(true); // a minute after it was last seen
  });

  it('keeps memory bounded in clients and values', () => {
    const tracker = new DistinctTracker({ windowMs: 60_000, maxClients: 100, maxValuesPerClient: 10 });
    for (let i = 0; i < 1000; i++) tracker.isNew(`client-${i}`, '/x', i);
    expect(tracker.size).toBe(100);
    for (let i = 0; i < 50; i++) tracker.isNew('one', `/p/${i}`, i);
    expect(tracker.isNew('one', '/p/49', 60)).toBe(false); // recent ones kept
    expect(tracker.isNew('one', '/p/0', 60)).toBe(true); // the oldest forgotten: counts again
  });

  it('compares over-long values on a bounded prefix', () => {
    const tracker = new DistinctTracker({ windowMs: 60_000, maxValueLength: 8 });
    expect(tracker.isNew('a', '/aaaaaaaa-1', 0)).toBe(true);
    expect(tracker.isNew('a', '/aaaaaaaa-2', 0)).toBe(false);
  });
});

describe('rates', () => {
  it('parses requests per duration', () => {
    expect(parseRate('100/10s')).toEqual({ points: 100, durationMs: 10_000 });
    expect(parseRate('5/s')).toEqual({ points: 5, durationMs: 1_000 });
    expect(parseRate('600/1m30s')).toEqual({ points: 600, durationMs: 90_000 });
    for (const bad of ['0/s', '100', '100/', '/10s', '100/10', '100/-1', 'many/s'])
      expect(parseRate(bad), bad).toBeNull();
  });
});

describe('HTTP jail configuration', () => {
  const load = (yaml: string) => parseConfigText(yaml, 'portcullis.yaml', { env: {} });
  const problems = (yaml: string): string[] => {
    try {
      load(yaml);
    } catch (error) {
      return (error as { problems: string[] }).problems;
    }
    throw new Error('expected the configuration to be refused');
  };

  it('refuses a regex RE2 cannot compile, naming the jail, the key and the regex', () => {
    expect(problems('jails:\n  web:\n    source: http\n    filter: { path: "^/(?!health)" }\n')).toEqual([
      'portcullis.yaml: jails.web.filter.path: expected a regex RE2 can compile (no lookaround, no backreferences), got "^/(?!health)": invalid perl operator: (?!',
    ]);
    expect(
      problems('jails:\n  web:\n    source: http\n    filter: { any: [ { user_agent: "(a)\\\\1" } ] }\n'),
    ).toEqual([
      'portcullis.yaml: jails.web.filter.any.0.user_agent: expected a regex RE2 can compile (no lookaround, no backreferences), got "(a)\\\\1": invalid escape sequence: \\1',
    ]);
  });

  it('names bad statuses, unknown keys, misplaced distinct, and rate mistakes', () => {
    const yaml = [
      'defaults: { rate: 10/s }',
      'jails:',
      '  a: { source: http, filter: { status: [401, "4x"], paht: "^/" } }',
      '  b: { source: http, filter: { any: [ { distinct: path } ] } }',
      '  c: { source: http, rate: 10/s, filter: { status: 404, distinct: path } }',
      '  d: { source: { log: /var/log/x.log }, filter: sshd, rate: 10/s }',
      '  e: { source: http, filter: scannerz }',
    ].join('\n');
    expect(problems(yaml)).toEqual([
      'portcullis.yaml: jails.a.filter.status.1: expected a status like 404, "4xx" or "500-599", got "4x"',
      'portcullis.yaml: jails.a.filter.paht: unknown setting',
      'portcullis.yaml: jails.b.filter.any.0.distinct: distinct is allowed only at the top level of a filter',
      'portcullis.yaml: jails.c.filter.status: a rate jail counts requests before they have a response: status cannot be used',
      'portcullis.yaml: jails.c.filter.distinct: a rate jail counts every matching request: distinct cannot be used',
      'portcullis.yaml: jails.d.rate: only http jails (source: http) have a request rate',
      'portcullis.yaml: jails.e.filter: no bundled HTTP rule named "scannerz" (known: auth-failures, bad-bots, cmd-injection, flood, lfi, method-abuse, not-found-burst, scanners, slow-clients, sqli, traversal, xss)',
      'portcullis.yaml: defaults.rate: a request rate belongs on one http jail, not in defaults',
    ]);
    expect(problems('jails:\n  f: { source: http, rate: "100 per second" }\n')).toEqual([
      'portcullis.yaml: jails.f.rate: expected a rate like "100/10s", got "100 per second"',
    ]);
    expect(problems('http: { forwarded_header: x-client-ip, trusted_proxies: [10.0.0.0/33] }\n')).toEqual([
      'portcullis.yaml: http.trusted_proxies.0: expected an IP address or CIDR range like "10.0.0.0/8", got "10.0.0.0/33"',
      'portcullis.yaml: http.forwarded_header: expected one of "x-forwarded-for", "forwarded", "x-real-ip", got "x-client-ip"',
    ]);
  });

  it('a bundled rule brings its jail settings: below the jail, above defaults', () => {
    const config = resolveConfig(
      {
        defaults: { maxretry: 7, bantime: '5m' },
        jails: {
          scanners: { source: 'http', filter: 'scanners' },
          strict: { source: 'http', filter: 'scanners', maxretry: 1 },
          flood: { source: 'http', filter: 'flood', rate: '50/5s' },
        },
      },
      { env: {} },
    );
    const byName = Object.fromEntries(config.jails.map((j) => [j.name, j]));
    expect(byName.scanners).toMatchObject({ maxRetry: 2, banTimeMs: 86_400_000 });
    expect(byName.strict?.maxRetry).toBe(1);
    expect(byName.scanners?.httpFilter).toHaveProperty('any');
    expect(byName.flood).toMatchObject({
      rate: { points: 50, durationMs: 5_000 },
      maxRetry: 1,
    });
    expect(byName.flood?.httpFilter).toHaveProperty('not');
    expect(config.http).toEqual({
      trustedProxies: [],
      forwardedHeader: 'x-forwarded-for',
      deny: { status: 403, body: 'Forbidden\n', contentType: 'text/plain; charset=utf-8' },
    });
  });
});
