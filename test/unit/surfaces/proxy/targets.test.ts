import { describe, expect, it } from 'vitest';
import { parseListenAddress } from '../../../../src/surfaces/proxy/listen-address.js';
import { TargetPool } from '../../../../src/surfaces/proxy/targets.js';

const options = { maxSockets: 4, downMs: 60_000, upstreamTimeoutMs: 1_000, changeOrigin: false };

describe('TargetPool', () => {
  it('goes round-robin and skips a target marked down while another is up', () => {
    const pool = new TargetPool(['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'], options);
    try {
      expect([1, 2, 3, 4].map(() => pool.pick().url.slice(-1))).toEqual(['1', '2', '3', '1']);
      pool.markDown(pool.targets[1]!);
      expect([1, 2, 3, 4].map(() => pool.pick().url.slice(-1))).toEqual(['3', '1', '3', '1']);
      expect(pool.alternative(pool.targets[0]!)?.url.slice(-1)).toBe('3');
    } finally {
      pool.destroy();
    }
  });

  it('tries the least recently failed target when every one is down', () => {
    const pool = new TargetPool(['http://127.0.0.1:1', 'http://127.0.0.1:2'], options);
    try {
      pool.markDown(pool.targets[1]!);
      pool.markDown(pool.targets[0]!);
      pool.targets[1]!.downUntil -= 10;
      expect(pool.pick().url).toBe('http://127.0.0.1:2');
      pool.targets[0]!.downUntil = Date.now() - 1;
      expect([1, 2].map(() => pool.pick().url.slice(-1))).toContain('1');
    } finally {
      pool.destroy();
    }
  });

  it('builds one keep-alive agent per target', () => {
    const pool = new TargetPool(['http://127.0.0.1:1', 'https://127.0.0.1:2/base'], options);
    try {
      expect(pool.targets.map((t) => (t.agent as unknown as { keepAlive: boolean }).keepAlive)).toEqual([
        true,
        true,
      ]);
      expect(pool.targets[0]!.agent.maxSockets).toBe(4);
      expect(String(pool.targets[1]!.proxyOptions.target)).toBe('https://127.0.0.1:2/base');
      expect(pool.targets[0]!.proxy).not.toBe(pool.targets[0]!.keepAliveProxy);
    } finally {
      pool.destroy();
    }
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['0.0.0.0:8080', { host: '0.0.0.0', port: 8080, ipv6Only: false }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0, ipv6Only: false }],
    ['[::]:8080', { host: '::', port: 8080, ipv6Only: true }],
    ['[::1]:443', { host: '::1', port: 443, ipv6Only: true }],
    ['localhost:80', { host: 'localhost', port: 80, ipv6Only: false }],
    [':8080', { host: undefined, port: 8080, ipv6Only: false }],
    ['8080', { host: undefined, port: 8080, ipv6Only: false }],
  ])('parses %s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each(['::1:80', '[::1]80', '[nope]:80', '1.2.3.4:65536', '1.2.3.4:', 'a b:80', ''])(
    'refuses %j',
    (text) => {
      expect(() => parseListenAddress(text, 'proxy.listen.2')).toThrow(
        /^proxy\.listen\.2: expected an address/,
      );
    },
  );
});
