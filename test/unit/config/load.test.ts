import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/defaults.js';
import { DEFAULT_DENY_RESPONSE, resolveDenyResponse } from '../../../src/config/http.js';
import { parseConfigText } from '../../../src/config/load.js';
import { resolveProxyConfig } from '../../../src/config/proxy.js';
import { resolveProxyOptions } from '../../../src/surfaces/proxy/options.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-config-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const parse = (text: string) => parseConfigText(text, 'p.yaml', { env: {} });
const problemsOf = (text: string): string => {
  try {
    parse(text);
    return '';
  } catch (error) {
    return (error as Error).message;
  }
};

describe('warnings', () => {
  it('names, with their key path, ranges written with host bits set', () => {
    const config = parse(
      [
        'defaults: { ignoreip: [127.0.0.0/8, 10.1.2.3/8] }',
        'http: { trusted_proxies: ["2001:db8::1/32"] }',
        'proxy: { listen: ":80", target: "http://a:1", trusted_proxies: [192.168.1.1/24] }',
        'jails:',
        '  web: { ignoreip: ["::ffff:0:0/64"] }',
      ].join('\n'),
    );
    expect(config.warnings).toEqual([
      'p.yaml: defaults.ignoreip.1: 10.1.2.3/8 means 10.0.0.0/8',
      'p.yaml: jails.web.ignoreip.0: ::ffff:0:0/64 means ::/64',
      'p.yaml: http.trusted_proxies.0: 2001:db8::1/32 means 2001:db8::/32',
      'p.yaml: proxy.trusted_proxies.0: 192.168.1.1/24 means 192.168.1.0/24',
    ]);
    expect(Object.isFrozen(config.warnings)).toBe(true);
  });

  it('is empty for a clean file', () => {
    expect(parse('defaults: { ignoreip: [10.0.0.0/8, "::ffff:10.0.0.0/104"] }').warnings).toEqual([]);
  });
});

describe('values that would silently disable a jail', () => {
  it.each([
    ['findtime: 0', 'defaults.findtime: expected a duration longer than 0, got 0'],
    ['findtime: -1', '-1 (permanent) is only meaningful for bantime'],
    ['bantime: 0', 'defaults.bantime: expected a duration longer than 0, or -1 (permanent), got 0'],
    ['bantime: "0m"', 'got "0m": a ban of 0 ends as it starts'],
    ['maxretry: 0', 'defaults.maxretry: expected a whole number of failures, at least 1, got 0'],
    ['ipv6_prefix: -1', 'defaults.ipv6_prefix: expected at least 1, got -1'],
    ['ipv6_prefix: 0', 'defaults.ipv6_prefix: expected at least 1, got 0'],
  ])('refuses %s', (setting, message) => {
    expect(problemsOf(`defaults: { ${setting} }`)).toContain(message);
  });

  it('still takes a permanent ban and sub-second windows', () => {
    const config = parse('jails:\n  a: { bantime: -1, findtime: 500ms }\n');
    expect(config.jails[0]).toMatchObject({ banTimeMs: -1, findTimeMs: 500 });
  });

  it('refuses dbpurgeage 0 and -1', () => {
    expect(problemsOf('store: { dbpurgeage: -1 }')).toContain(
      'store.dbpurgeage: expected a duration longer than 0',
    );
    expect(problemsOf('store: { dbpurgeage: 0 }')).toContain('bantime_increment would never escalate');
  });
});

describe('actions not available yet', () => {
  it('accepts an empty actions list', () => {
    expect(
      parse('defaults: { actions: [] }\njails:\n  a: { actions: [] }\nactions: {}\n').jails,
    ).toHaveLength(1);
  });

  it('every planned kind runs now (ipset, iptables, nginx too): none is refused as unavailable', () => {
    const config = parse('jails:\n  a: { actions: [ipset, iptables, nginx, nftables-ssh] }\n');
    expect(config.jails[0]?.actions.map((spec) => spec.kind)).toEqual([
      'ipset',
      'iptables',
      'nginx',
      'nftables',
    ]);
  });
});

describe('proxy: check-config accepts exactly what createProxy accepts', () => {
  const base = 'listen: ":8080", target: "http://127.0.0.1:3000"';
  const cases: [string, string | null][] = [
    ['timeouts: { header: 0 }', 'proxy.timeouts.header'],
    ['timeouts: { request: 0 }', 'proxy.timeouts.request'],
    ['timeouts: { keep_alive: -1 }', 'proxy.timeouts.keep_alive'],
    ['timeouts: { keep_alive: 0 }', 'proxy.timeouts.keep_alive'],
    ['timeouts: { upstream: 0 }', 'proxy.timeouts.upstream'],
    ['timeouts: { idle: -1 }', 'proxy.timeouts.idle'],
    ['timeouts: { proxy_protocol: -1 }', 'proxy.timeouts.proxy_protocol'],
    ['timeouts: { shutdown: -1 }', 'proxy.timeouts.shutdown'],
    ['target_down_time: -1', 'proxy.target_down_time'],
    ['access_log: { path: a.log, flush_interval: 0 }', 'proxy.access_log.flush_interval'],
    ['max_sockets: 0', 'proxy.max_sockets'],
    ['max_header_size: 100', 'proxy.max_header_size'],
    ['listen: "256.0.0.1:8080", target: "http://a:1"', 'proxy.listen'],
    ['listen: "1.2.3.4:65536", target: "http://a:1"', 'proxy.listen'],
    // Documented meanings of 0, valid for both.
    ['timeouts: { idle: 0 }', null],
    ['timeouts: { shutdown: 0 }', null],
    ['target_down_time: 0', null],
    ['max_connections_per_ip: 0', null],
    ['listen: ["localhost:0", "[::1]:65535"], target: "http://a:1"', null],
  ];
  it.each(cases)('%s', (setting, key) => {
    const text = setting.startsWith('listen') ? `proxy: { ${setting} }` : `proxy: { ${base}, ${setting} }`;
    const message = problemsOf(text);
    if (key === null) {
      expect(message).toBe('');
      const config = parse(text);
      // What `run` does with the loaded config:
      expect(() => resolveProxyOptions(config.proxy!, config.http)).not.toThrow();
    } else {
      expect(message).toMatch(new RegExp(`^p\\.yaml: ${key.replaceAll('.', '\\.')}(\\.\\d+)?: expected`));
      expect(message.split('\n')).toHaveLength(1);
    }
  });

  it('createProxy() options are held to the same bounds', () => {
    const options = { listen: ':8080', target: 'http://127.0.0.1:3000' };
    const refuse = (extra: object) => () => resolveProxyOptions({ ...options, ...extra }, undefined);
    expect(refuse({ headerTimeoutMs: 0 })).toThrow(
      'proxy.headerTimeoutMs: expected a number of at least 1, got 0',
    );
    expect(refuse({ idleTimeoutMs: -1 })).toThrow(
      'proxy.idleTimeoutMs: expected a number of at least 0 (0: never)',
    );
    expect(refuse({ listen: '256.0.0.1:80' })).toThrow('proxy.listen.0: expected an address');
    expect(refuse({ trustedProxies: ['::ffff:1.2.3.4/96'] })).toThrow(
      'proxy.trustedProxies.0: ::ffff:1.2.3.4/96 would mean all of IPv4',
    );
    expect(refuse({ accessLog: { path: 'x', flushIntervalMs: 0 } })).toThrow(
      'proxy.accessLog.flushIntervalMs: expected a number of at least 1, got 0',
    );
    expect(() =>
      resolveProxyOptions({ ...options, idleTimeoutMs: 0, shutdownTimeoutMs: 0 }, undefined),
    ).not.toThrow();
  });

  it('resolves every default from DEFAULTS, once', () => {
    const config = parse(`proxy: { ${base} }`);
    const d = DEFAULTS.proxy;
    expect(config.proxy).toMatchObject({
      headerTimeoutMs: d.headerTimeoutMs,
      requestTimeoutMs: d.requestTimeoutMs,
      idleTimeoutMs: d.idleTimeoutMs,
      keepAliveTimeoutMs: d.keepAliveTimeoutMs,
      maxConnectionsPerIp: d.maxConnectionsPerIp,
      preserveHost: d.preserveHost,
      deny: DEFAULT_DENY_RESPONSE,
      listen: [{ address: ':8080', proxyProtocol: d.proxyProtocol, tls: false }],
    });
    const direct = resolveProxyConfig({ listen: ':8080', target: 'http://127.0.0.1:3000' });
    expect(direct).toEqual({ ...config.proxy });
  });
});

describe('resolveDenyResponse', () => {
  it('inherits from the base and knows which content type a body or page has', () => {
    const page = join(dir, 'banned.html');
    writeFileSync(page, '<h1>no</h1>');
    const base = { status: 451, body: 'gone\n', contentType: 'text/plain; charset=utf-8' };
    expect(resolveDenyResponse(undefined)).toEqual(DEFAULT_DENY_RESPONSE);
    expect(resolveDenyResponse(429, base)).toEqual({ ...base, status: 429 });
    expect(resolveDenyResponse({ page }, base)).toEqual({
      status: 451,
      body: '<h1>no</h1>',
      contentType: 'text/html; charset=utf-8',
    });
    const html = { status: 403, body: '<p>x</p>', contentType: 'text/html; charset=utf-8' };
    expect(resolveDenyResponse({ body: 'plain' }, html).contentType).toBe('text/plain; charset=utf-8');
    expect(resolveDenyResponse({ contentType: 'application/json', body: '{}' }).contentType).toBe(
      'application/json',
    );
  });

  it('collects problems, or throws them without a list', () => {
    const problems: string[] = [];
    resolveDenyResponse({ status: 99, page: join(dir, 'absent.html') }, undefined, {
      where: 'http.deny',
      problems,
    });
    expect(problems).toEqual([
      `http.deny.page: cannot read ${join(dir, 'absent.html')}: ENOENT`,
      'http.deny.status: expected a status from 200 to 599, got 99',
    ]);
    expect(() => resolveDenyResponse({ status: 700 })).toThrow(
      'deny.status: expected a status from 200 to 599',
    );
  });
});
