import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  removeHopByHop,
  removeResponseHopByHop,
  setForwardedHeaders,
} from '../../../../src/surfaces/proxy/forwarded-headers.js';

describe('forwarding headers', () => {
  it('replaces everything an untrusted peer sent', () => {
    const headers: IncomingHttpHeaders = {
      host: 'example.org',
      'x-forwarded-for': '203.0.113.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-port': '1',
      'x-real-ip': '203.0.113.1',
      forwarded: 'for=203.0.113.1',
    };
    setForwardedHeaders(headers, '192.0.2.7', false, '192.0.2.7', false);
    expect(headers).toEqual({
      host: 'example.org',
      'x-forwarded-for': '192.0.2.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'example.org',
      'x-real-ip': '192.0.2.7',
    });
  });

  it("extends a trusted peer's chain and keeps what it said", () => {
    const headers: IncomingHttpHeaders = {
      host: 'internal:8080',
      'x-forwarded-for': '198.51.100.4, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'example.org',
      forwarded: 'for=198.51.100.4',
    };
    setForwardedHeaders(headers, '10.0.0.3', true, '198.51.100.4', true);
    expect(headers).toEqual({
      host: 'internal:8080',
      'x-forwarded-for': '198.51.100.4, 10.0.0.2, 10.0.0.3',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'example.org',
      forwarded: 'for=198.51.100.4',
      'x-real-ip': '198.51.100.4',
    });
    const bare: IncomingHttpHeaders = { host: 'h' };
    setForwardedHeaders(bare, '10.0.0.3', true, null, true);
    expect(bare).toEqual({
      host: 'h',
      'x-forwarded-for': '10.0.0.3',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'h',
    });
  });

  it('removes hop-by-hop request headers, keeping what an upgrade needs', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'keep-alive, X-Secret',
      'x-secret': '1',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x',
      upgrade: 'h2c',
      accept: '*/*',
    };
    removeHopByHop(headers, false);
    expect(headers).toEqual({ connection: 'keep-alive, X-Secret', accept: '*/*' });
    const upgrade: IncomingHttpHeaders = { connection: 'Upgrade', upgrade: 'websocket' };
    removeHopByHop(upgrade, true);
    expect(upgrade).toEqual({ connection: 'Upgrade', upgrade: 'websocket' });
  });

  it("removes the upstream's connection headers from the response", () => {
    const headers: IncomingHttpHeaders = {
      connection: 'keep-alive, x-hop',
      'keep-alive': 'timeout=5',
      'x-hop': '1',
      etag: 'e',
    };
    removeResponseHopByHop(headers);
    expect(headers).toEqual({ etag: 'e' });
  });
});
