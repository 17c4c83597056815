import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  type ClientIpOptions,
  createClientIpResolver,
  originalClientAddress,
} from '../../../../src/sources/http/client-ip.js';

function req(
  peer: string | undefined,
  headers: IncomingHttpHeaders = {},
  socket: object = {},
): IncomingMessage {
  return { socket: { remoteAddress: peer, ...socket }, headers } as unknown as IncomingMessage;
}

const trusted: ClientIpOptions = { trustedProxies: ['10.0.0.0/8', '2001:db8:ffff::/48'] };

describe('client address without trusted proxies', () => {
  const resolver = createClientIpResolver();

  it('is the socket peer, canonical', () => {
    expect(resolver.resolve(req('192.0.2.7'))).toBe('192.0.2.7');
    expect(resolver.resolve(req('::ffff:192.0.2.7'))).toBe('192.0.2.7');
    expect(resolver.resolve(req('2001:DB8:0::1'))).toBe('2001:db8::1');
    expect(resolver.resolve(req(undefined))).toBeNull();
  });

  it('never reads a forwarding header', () => {
    expect(resolver.resolve(req('192.0.2.7', { 'x-forwarded-for': '198.51.100.1' }))).toBe('192.0.2.7');
    expect(resolver.stats).toEqual({ malformed: 0, unknown: 0 });
  });
});

describe('X-Forwarded-For', () => {
  it('is ignored when the peer is not trusted', () => {
    const resolver = createClientIpResolver(trusted);
    expect(resolver.resolve(req('192.0.2.7', { 'x-forwarded-for': '198.51.100.1' }))).toBe('192.0.2.7');
  });

  it('is walked from the right, skipping trusted hops; the first untrusted hop is the client', () => {
    const resolver = createClientIpResolver(trusted);
    const headers = { 'x-forwarded-for': '203.0.113.9, 198.51.100.1, 10.1.1.1, 10.2.2.2' };
    expect(resolver.resolve(req('10.0.0.1', headers))).toBe('198.51.100.1');
    expect(resolver.resolve(req('::ffff:10.0.0.1', headers))).toBe('198.51.100.1');
  });

  it('gives the leftmost hop when every hop is trusted', () => {
    const resolver = createClientIpResolver(trusted);
    expect(resolver.resolve(req('10.0.0.1', { 'x-forwarded-for': '10.9.9.9, 10.1.1.1' }))).toBe('10.9.9.9');
  });

  it('accepts ports, brackets, empty list elements and IPv6', () => {
    const resolver = createClientIpResolver(trusted);
    expect(resolver.resolve(req('10.0.0.1', { 'x-forwarded-for': '198.51.100.1:4711' }))).toBe(
      '198.51.100.1',
    );
    expect(resolver.resolve(req('10.0.0.1', { 'x-forwarded-for': '[2001:db8::7]:443' }))).toBe('2001:db8::7');
    expect(resolver.resolve(req('10.0.0.1', { 'x-forwarded-for': '2001:DB8::7, ,10.1.1.1,' }))).toBe(
      '2001:db8::7',
    );
    expect(resolver.resolve(req('2001:db8:ffff::1', { 'x-forwarded-for': '::ffff:198.51.100.3' }))).toBe(
      '198.51.100.3',
    );
    expect(resolver.stats.malformed).toBe(0);
  });

  it('ignores garbage the client wrote left of the real client', () => {
    const resolver = createClientIpResolver(trusted);
    const headers = { 'x-forwarded-for': 'garbage, <script>, 198.51.100.1' };
    expect(resolver.resolve(req('10.0.0.1', headers))).toBe('198.51.100.1');
    expect(resolver.stats.malformed).toBe(0);
  });

  it('judges the client unknown (never the trusted peer) and counts a chain with no usable client, never throwing', () => {
    const resolver = createClientIpResolver(trusted);
    const bad = [
      '',
      ',',
      ' , ,',
      'garbage',
      '198.51.100.1:notaport',
      '[2001:db8::1',
      '[2001:db8::1]x',
      '300.0.0.1',
      '01.2.3.4',
      '127.1',
      'unknown',
      '1.2.3.4, 10.0.0.1, junk, 10.1.1.1',
      'x'.repeat(100_000),
      `${'10.1.1.1,'.repeat(100)}`,
      '\u0000\uffff',
    ];
    for (const value of bad) {
      expect(
        resolver.resolve(req('10.0.0.1', { 'x-forwarded-for': value })),
        JSON.stringify(value.slice(0, 30)),
      ).toBeNull();
    }
    expect(resolver.stats.malformed).toBe(bad.length);
  });

  it('reads a repeated header (an array) as one list', () => {
    const resolver = createClientIpResolver(trusted);
    const headers = { 'x-forwarded-for': ['203.0.113.5', '198.51.100.1'] } as unknown as IncomingHttpHeaders;
    expect(resolver.resolve(req('10.0.0.1', headers))).toBe('198.51.100.1');
  });

  it('uses the peer when a trusted proxy sent no header', () => {
    const resolver = createClientIpResolver(trusted);
    expect(resolver.resolve(req('10.0.0.1'))).toBe('10.0.0.1');
  });
});

describe('Forwarded (RFC 7239)', () => {
  const options: ClientIpOptions = { ...trusted, forwardedHeader: 'forwarded' };

  it('takes for= from the right, with quoted IPv6 and ports', () => {
    const resolver = createClientIpResolver(options);
    expect(
      resolver.resolve(req('10.0.0.1', { forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43' })),
    ).toBe('192.0.2.60');
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'for="[2001:db8:cafe::17]:4711"' }))).toBe(
      '2001:db8:cafe::17',
    );
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'For="192.0.2.43:47011", for=10.3.3.3' }))).toBe(
      '192.0.2.43',
    );
    expect(
      resolver.resolve(req('10.0.0.1', { forwarded: 'for=198.51.100.2, for="[2001:db8:ffff::9]"' })),
    ).toBe('198.51.100.2');
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'proto=https;for=198.51.100.8;host="a,b"' }))).toBe(
      '198.51.100.8',
    );
  });

  it('stops at an obfuscated identifier: the client is unknown, not the proxy', () => {
    const resolver = createClientIpResolver(options);
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'for=198.51.100.1, for=unknown' }))).toBeNull();
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'for=_hidden, for=10.1.1.1' }))).toBeNull();
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'for="_SEVKISEK"' }))).toBeNull();
    // An obfuscated hop left of the client does not matter.
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'for=unknown, for=198.51.100.1' }))).toBe(
      '198.51.100.1',
    );
    expect(resolver.stats.unknown).toBe(3);
  });

  it('judges the client unknown (never the trusted peer) on malformed elements', () => {
    const resolver = createClientIpResolver(options);
    const bad = [
      'for=',
      'for="unterminated',
      'proto=http',
      'for=1.2.3.4;for=5.6.7.8',
      'nonsense',
      'for="[::1"',
      ';;;,,,',
    ];
    for (const value of bad) {
      expect(resolver.resolve(req('10.0.0.1', { forwarded: value })), value).toBeNull();
    }
    expect(resolver.stats.malformed).toBe(bad.length);
  });

  it('takes the rightmost client a trusted proxy appended, whatever the client put on its left', () => {
    const resolver = createClientIpResolver(options);
    const appended = (sent: string) =>
      resolver.resolve(req('10.0.0.1', { forwarded: `${sent}, for=198.51.100.7` }));
    expect(appended('for="')).toBe('198.51.100.7');
    expect(appended('for="unterminated;proto=http')).toBe('198.51.100.7');
    expect(appended(Array.from({ length: 100 }, (_, i) => `for=192.0.2.${i % 250}`).join(', '))).toBe(
      '198.51.100.7',
    );
    expect(appended('nonsense, ;;;')).toBe('198.51.100.7');
    expect(appended('for="[2001:db8::1]:1", for=x"')).toBe('198.51.100.7');
    // Quotes balance from the right: a quoted comma in the proxy's own element is not a separator.
    expect(resolver.resolve(req('10.0.0.1', { forwarded: 'for=", for=198.51.100.8;host="a,b"' }))).toBe(
      '198.51.100.8',
    );
    expect(resolver.stats.malformed).toBe(0);
  });

  it('ignores X-Forwarded-For when Forwarded is the configured header', () => {
    const resolver = createClientIpResolver(options);
    expect(resolver.resolve(req('10.0.0.1', { 'x-forwarded-for': '198.51.100.1' }))).toBe('10.0.0.1');
  });
});

describe('X-Real-IP', () => {
  const options: ClientIpOptions = { ...trusted, forwardedHeader: 'x-real-ip' };

  it('is one address set by the proxy', () => {
    const resolver = createClientIpResolver(options);
    expect(resolver.resolve(req('10.0.0.1', { 'x-real-ip': '198.51.100.1' }))).toBe('198.51.100.1');
    expect(resolver.resolve(req('192.0.2.1', { 'x-real-ip': '198.51.100.1' }))).toBe('192.0.2.1');
  });

  it("takes the proxy's (the last) when the client's own copy was not stripped", () => {
    const resolver = createClientIpResolver(options);
    // Two headers reach Node as one comma list; a client may send a list itself.
    expect(resolver.resolve(req('10.0.0.1', { 'x-real-ip': '198.51.100.1, 203.0.113.1' }))).toBe(
      '203.0.113.1',
    );
    expect(resolver.resolve(req('10.0.0.1', { 'x-real-ip': 'junk, 1.2.3.4, 203.0.113.1' }))).toBe(
      '203.0.113.1',
    );
    const headers = { 'x-real-ip': ['6.6.6.6', '203.0.113.2'] } as unknown as IncomingHttpHeaders;
    expect(resolver.resolve(req('10.0.0.1', headers))).toBe('203.0.113.2');
    expect(resolver.stats.malformed).toBe(0);
    expect(resolver.resolve(req('10.0.0.1', { 'x-real-ip': '203.0.113.1, junk' }))).toBeNull();
    expect(resolver.stats.malformed).toBe(1);
  });
});

describe('the PROXY protocol hook', () => {
  it('replaces the peer with the address announced for the connection', () => {
    const socket = { remoteAddress: '10.0.0.1' } as Socket;
    originalClientAddress.set(socket, '198.51.100.20');
    const resolver = createClientIpResolver();
    const message = { socket, headers: { 'x-forwarded-for': '203.0.113.1' } } as unknown as IncomingMessage;
    expect(resolver.resolve(message)).toBe('198.51.100.20');
  });

  it('still applies trusted_proxies to the announced address', () => {
    const socket = { remoteAddress: '192.0.2.1' } as Socket;
    originalClientAddress.set(socket, '10.5.5.5');
    const resolver = createClientIpResolver(trusted);
    const message = { socket, headers: { 'x-forwarded-for': '203.0.113.1' } } as unknown as IncomingMessage;
    expect(resolver.resolve(message)).toBe('203.0.113.1');
  });
});
