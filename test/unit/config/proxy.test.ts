import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-proxy-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'portcullis.yaml');
const parse = (text: string) => parseConfigText(text, file, { env: {} });

describe('proxy: configuration', () => {
  it('resolves every default, relative paths and the http section', () => {
    writeFileSync(join(dir, 'cert.pem'), 'x');
    writeFileSync(join(dir, 'key.pem'), 'x');
    const config = parse(
      [
        'http: { trusted_proxies: [10.0.0.0/8], deny: { status: 451, body: "no\\n" } }',
        'proxy:',
        '  listen: ["0.0.0.0:8080", { address: "[::]:8443", proxy_protocol: true }]',
        '  target: http://127.0.0.1:3000',
        '  tls: { cert: cert.pem, key: key.pem }',
        '  access_log: { path: logs/access.log }',
        '  timeouts: { header: 5s, upstream: 30s }',
      ].join('\n'),
    );
    expect(config.proxy).toEqual({
      listen: [
        { address: '0.0.0.0:8080', proxyProtocol: false, tls: true },
        { address: '[::]:8443', proxyProtocol: true, tls: true },
      ],
      targets: ['http://127.0.0.1:3000'],
      trustedProxies: ['10.0.0.0/8'],
      deny: { status: 451, body: 'no\n', contentType: 'text/plain; charset=utf-8' },
      headerTimeoutMs: 5_000,
      requestTimeoutMs: 60_000,
      bodyTimeoutMs: 10_000,
      idleTimeoutMs: 0,
      keepAliveTimeoutMs: 5_000,
      upstreamTimeoutMs: 30_000,
      proxyProtocolTimeoutMs: 5_000,
      shutdownTimeoutMs: 5_000,
      maxHeaderSize: 16_384,
      maxHeaders: 200,
      maxConnectionsPerIp: 256,
      maxSockets: 256,
      maxUpstreamPerIp: 64,
      bodyBufferSize: 65_536,
      targetDownMs: 5_000,
      preserveHost: true,
      tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
      accessLog: { path: join(dir, 'logs/access.log'), format: 'combined', flushIntervalMs: 1_000 },
    });
    expect(Object.isFrozen(config.proxy)).toBe(true);
  });

  it('takes deny: drop, a status, or a response', () => {
    const deny = (value: string) =>
      parse(`proxy: { listen: ":80", target: "http://a:1", deny: ${value} }`).proxy?.deny;
    expect(deny('drop')).toBe('drop');
    expect(deny('429')).toEqual({
      status: 429,
      body: 'Forbidden\n',
      contentType: 'text/plain; charset=utf-8',
    });
    expect(deny('{ body: "bye" }')).toEqual({
      status: 403,
      body: 'bye',
      contentType: 'text/plain; charset=utf-8',
    });
    expect(parse('jails: {}').proxy).toBeUndefined();
  });

  it('names the key path of every mistake', () => {
    const problems = (text: string) => {
      try {
        parse(text);
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(problems('proxy: { listen: ":80" }')).toContain('proxy: set exactly one of target or targets');
    expect(problems('proxy: { listen: "nope:x", target: "http://a:1" }')).toMatch(
      /proxy\.listen: expected an address like "0\.0\.0\.0:8080"/,
    );
    expect(problems('proxy: { listen: [":80"], targets: ["ftp://a"] }')).toMatch(
      /proxy\.targets\.0: expected an http:\/\/ or https:\/\/ URL/,
    );
    expect(problems('proxy: { listen: ":80", target: "http://a:1", deny: "reject" }')).toContain(
      'proxy.deny:',
    );
    expect(
      problems('proxy: { listen: ":80", target: "http://a:1", timeouts: { header: "soon" } }'),
    ).toContain('proxy.timeouts.header: expected a duration like "10m", got "soon"');
    expect(problems('proxy: { listen: ":80", target: "http://a:1", timeout: { header: 1 } }')).toContain(
      'proxy.timeout: unknown setting (did you mean "timeouts"?)',
    );
    expect(problems('proxy: { listen: [{ address: ":443", tls: true }], target: "http://a:1" }')).toContain(
      'proxy.listen.0.tls: needs proxy.tls { cert, key }',
    );
    expect(
      problems(
        'proxy: { listen: ":80", target: "http://a:1", tls: { cert: missing.pem, key: missing.pem } }',
      ),
    ).toMatch(/proxy\.tls\.cert: cannot read .*missing\.pem: ENOENT/);
    expect(
      problems('proxy: { listen: ":80", target: "http://a:1", access_log: { path: a, format: xml } }'),
    ).toContain('proxy.access_log.format: expected one of "combined", "json", got "xml"');
    expect(
      problems('proxy: { listen: ":80", target: "http://a:1", timeouts: { header: 30s, request: 10s } }'),
    ).toContain('proxy.timeouts.request: must be at least timeouts.header');
  });
});
