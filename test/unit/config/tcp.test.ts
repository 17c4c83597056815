import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { TCP_DEFAULTS } from '../../../src/config/tcp.js';
import { compileFieldFilter } from '../../../src/detection/filters/fields/compile.js';
import {
  SOCKET_FIELDS,
  type SocketFilterEvent,
} from '../../../src/detection/filters/fields/socket-fields.js';
import { bundledTcpRules, loadTcpRule } from '../../../src/sources/socket/tcp-rules.js';

const parse = (text: string) => parseConfigText(text, 'p.yaml', { env: {} });
const problemsOf = (text: string): string[] => {
  try {
    parse(text);
  } catch (error) {
    return (error as Error).message.split('\n');
  }
  throw new Error('expected the configuration to be refused');
};

describe('tcp: listeners', () => {
  it('resolves a listener with every default, times in ms', () => {
    const config = parse('tcp:\n  ssh: { listen: "0.0.0.0:2222", target: "127.0.0.1:22" }\n');
    expect(config.tcp).toEqual([
      {
        name: 'ssh',
        listen: '0.0.0.0:2222',
        host: '0.0.0.0',
        port: 2222,
        ipv6Only: false,
        target: '127.0.0.1:22',
        targetHost: '127.0.0.1',
        targetPort: 22,
        proxyProtocolUpstream: null,
        proxyProtocol: false,
        trustedProxies: [],
        maxConnectionsPerIp: TCP_DEFAULTS.maxConnectionsPerIp,
        maxConnections: TCP_DEFAULTS.maxConnections,
        idleTimeoutMs: 600_000,
        connectTimeoutMs: 10_000,
        proxyProtocolTimeoutMs: 5_000,
        sni: false,
        sniTimeoutMs: 5_000,
        deny: 'reset',
      },
    ]);
  });

  it('reads every setting: IPv6 listen (IPv6 only), PROXY both ways, limits, timeouts, sni, deny', () => {
    const config = parse(
      [
        'http: { trusted_proxies: [10.0.0.0/8] }',
        'tcp:',
        '  redis:',
        '    listen: "[::]:6380"',
        '    target: "[::1]:6379"',
        '    proxy_protocol_upstream: v2',
        '    proxy_protocol: true',
        '    max_connections_per_ip: 16',
        '    max_connections: 0',
        '    idle_timeout: 0',
        '    connect_timeout: 2s',
        '    proxy_protocol_timeout: 1s',
        '    sni: true',
        '    sni_timeout: 500ms',
        '    deny: drop',
        '  smtp: { listen: ":25", target: "mail.internal:2525", trusted_proxies: [192.0.2.1] }',
      ].join('\n'),
    );
    expect(config.tcp?.[0]).toMatchObject({
      host: '::',
      port: 6380,
      ipv6Only: true,
      targetHost: '::1',
      targetPort: 6379,
      proxyProtocolUpstream: 2,
      proxyProtocol: true,
      trustedProxies: ['10.0.0.0/8'], // from http.trusted_proxies
      maxConnectionsPerIp: 16,
      maxConnections: 0,
      idleTimeoutMs: 0,
      connectTimeoutMs: 2_000,
      proxyProtocolTimeoutMs: 1_000,
      sni: true,
      sniTimeoutMs: 500,
      deny: 'drop',
    });
    expect(config.tcp?.[1]).toMatchObject({
      host: undefined,
      port: 25,
      targetHost: 'mail.internal',
      trustedProxies: ['192.0.2.1'],
    });
  });

  it('a typo in a listener key is named with a suggestion', () => {
    expect(problemsOf('tcp:\n  ssh: { listen: ":22", target: "127.0.0.1:22", idle_timout: 1m }\n')).toEqual([
      'p.yaml: tcp.ssh.idle_timout: unknown setting (did you mean "idle_timeout"?)',
    ]);
    expect(problemsOf('tcp:\n  ssh: { target: "127.0.0.1:22" }\n')).toEqual([
      'p.yaml: tcp.ssh.listen: expected an address like "0.0.0.0:2222" (an IP address or host name, IPv6 in brackets, and a port from 0 to 65535), got nothing',
    ]);
  });
});

describe('socket jails', () => {
  const tcp = 'tcp:\n  ssh: { listen: ":2222", target: "127.0.0.1:22" }\n';

  it('source: { socket: NAME } with a bundled rule takes the rule’s settings below its own', () => {
    const config = parse(
      `${tcp}jails:\n  flood: { source: { socket: ssh }, filter: conn-flood, bantime: 1h }\n`,
    );
    const jail = config.jails[0];
    expect(jail).toMatchObject({
      source: { kind: 'socket', listener: 'ssh' },
      maxRetry: 30,
      findTimeMs: 10_000,
      banTimeMs: 3_600_000,
      socketFilter: { event: 'open' },
    });
  });

  it('an inline filter is validated against the socket fields, a slow regex is a warning', () => {
    const config = parse(
      `${tcp}jails:\n  silent: { source: { socket: ssh }, filter: { event: close, bytes_in: 0 }, maxretry: 3 }\n`,
    );
    expect(config.jails[0]?.socketFilter).toEqual({ event: 'close', bytes_in: 0 });
    expect(problemsOf(`${tcp}jails:\n  x: { source: { socket: ssh }, filter: { sni: "(a" } }\n`)[0]).toMatch(
      /^p\.yaml: jails\.x\.filter\.sni: /,
    );
  });

  it('jails of other sources are untouched; a socket jail in a file without tcp: says so', () => {
    expect(
      parse(`${tcp}jails:\n  web: { source: http, filter: { status: 401 } }\n`).jails[0]?.socketFilter,
    ).toBeUndefined();
    expect(problemsOf('jails:\n  x: { source: { socket: ssh }, filter: conn-flood }\n')).toEqual([
      'p.yaml: jails.x.source.socket: no tcp: listener named "ssh" (the file has no tcp: section)',
    ]);
  });

  it('a socket jail given in defaults applies to every jail that sets no source', () => {
    const config = parse(
      `${tcp}defaults: { source: { socket: ssh }, filter: idle-connect }\njails:\n  a: {}\n`,
    );
    expect(config.jails[0]).toMatchObject({
      source: { kind: 'socket', listener: 'ssh' },
      maxRetry: 5,
      findTimeMs: 60_000,
    });
  });
});

describe('bundled socket rules', () => {
  const event = (fields: Partial<SocketFilterEvent>): SocketFilterEvent => ({
    event: 'close',
    listener: 'ssh',
    dport: 22,
    ...fields,
  });
  const rule = (name: string) => compileFieldFilter(SOCKET_FIELDS, loadTcpRule(name).filter).matches;

  it('every rule loads, has jail settings and a description', () => {
    expect(bundledTcpRules()).toEqual(
      expect.arrayContaining(['concurrency', 'conn-flood', 'idle-connect', 'short-sessions']),
    );
    for (const name of bundledTcpRules()) {
      const loaded = loadTcpRule(name);
      expect(loaded.description.length).toBeGreaterThan(20);
      expect(loaded.jail.maxretry).toBeGreaterThan(0);
    }
  });

  it('conn-flood counts opens; concurrency only an open over 32 held', () => {
    expect(rule('conn-flood')(event({ event: 'open', concurrent: 1 }))).toBe(true);
    expect(rule('conn-flood')(event({ event: 'close' }))).toBe(false);
    expect(rule('concurrency')(event({ event: 'open', concurrent: 33 }))).toBe(true);
    expect(rule('concurrency')(event({ event: 'open', concurrent: 32 }))).toBe(false);
  });

  it('idle-connect: closed without a byte by the client, a reset or the timeout; not a refusal or a dead upstream', () => {
    const idle = rule('idle-connect');
    for (const end of ['client-close', 'reset', 'timeout'] as const)
      expect(idle(event({ bytesIn: 0, end }))).toBe(true);
    for (const end of ['refused', 'upstream-error', 'upstream-close'] as const)
      expect(idle(event({ bytesIn: 0, end }))).toBe(false);
    expect(idle(event({ bytesIn: 1, end: 'client-close' }))).toBe(false);
  });

  it('short-sessions: under 2 s, having sent something, ended by the client', () => {
    const short = rule('short-sessions');
    expect(short(event({ durationMs: 300, bytesIn: 40, end: 'client-close' }))).toBe(true);
    expect(short(event({ durationMs: 2_000, bytesIn: 40, end: 'client-close' }))).toBe(false);
    expect(short(event({ durationMs: 300, bytesIn: 0, end: 'client-close' }))).toBe(false);
    expect(short(event({ durationMs: 300, bytesIn: 40, end: 'upstream-close' }))).toBe(false);
  });
});
