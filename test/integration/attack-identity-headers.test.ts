import { afterEach, describe, expect, it } from 'vitest';
import { send } from '../helpers/http-client.js';
import { A, LB, runCleanups, startGuard, startProxy, startUpstream } from '../helpers/proxy.js';

/**
 * Issue 8, item 5: a client sending about a thousand headers of its own (well under the 16 KiB
 * head limit) must not push the proxy's forwarding headers past what a Node upstream keeps (the
 * first 1,000 header pairs, `maxHeadersCount`): the upstream either sees who the client is or
 * never sees the request (431 from the proxy).
 */

afterEach(runCleanups);

const padding = (n: number): [string, string][] => Array.from({ length: n }, (_, i) => [`x-p${i}`, 'v']);

describe('reverse proxy: forwarding headers a thousand client headers cannot push out', () => {
  it.each([
    ['an untrusted client', A, [] as [string, string][], A],
    [
      'a client behind a trusted proxy',
      LB,
      [['x-forwarded-for', '198.51.100.7']] as [string, string][],
      '198.51.100.7',
    ],
  ])(
    '%s with 1,000 headers (needs proxy.max_headers for the trusted case): the Node upstream sees X-Forwarded-For and X-Real-IP, or gets nothing',
    async (_name, from, forwarding, client) => {
      const guard = await startGuard({});
      const upstream = await startUpstream();
      const proxy = await startProxy(guard, { target: upstream.url, trustedProxies: [LB] });
      const port = proxy.addresses[0]!.port;

      // The client's own forwarding header (if any) comes last, after its padding.
      const reply = await send(port, { path: '/echo', from, headers: [...padding(1_000), ...forwarding] });
      if (reply.status === 431) {
        expect(upstream.seen.length).toBe(0);
        return;
      }
      expect(reply.status).toBe(200);
      expect(upstream.seen.length).toBe(1);
      const seen = upstream.seen[0]!.headers;
      const chain = from === LB ? `${client}, ${LB}` : from;
      expect(seen['x-forwarded-for']).toBe(chain);
      expect(seen['x-real-ip']).toBe(client);
      expect(seen['x-forwarded-proto']).toBe('http');
      expect(seen.host).toBe(`127.0.0.1:${port}`);
    },
  );
});

describe('reverse proxy: many headers from behind a trusted proxy', () => {
  it('150 headers (under the cap): the forwarding headers are sent first and name the client', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, trustedProxies: [LB] });
    const port = proxy.addresses[0]!.port;
    const reply = await send(port, {
      path: '/echo',
      from: LB,
      headers: [...padding(150), ['x-forwarded-for', '198.51.100.7']],
    });
    expect(reply.status).toBe(200);
    const raw = upstream.seen[0]!;
    expect(raw.headers['x-forwarded-for']).toBe(`198.51.100.7, ${LB}`);
    expect(raw.headers['x-real-ip']).toBe('198.51.100.7');
    const order = Object.keys(raw.headers);
    expect(order.indexOf('x-forwarded-for')).toBeLessThan(8);
    expect(order.indexOf('x-real-ip')).toBeLessThan(8);
  });

  it('a head cut by Node (its forwarding header among the dropped) is an unknown client, never the proxy', async () => {
    const guard = await startGuard({
      jails: { any: { source: 'http', filter: { status: 401 }, maxretry: 2, bantime: '1h' } },
    });
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, trustedProxies: [LB], deny: 'drop' });
    const port = proxy.addresses[0]!.port;
    for (let i = 0; i < 3; i++) {
      const reply = await send(port, {
        path: '/status/401',
        from: LB,
        headers: [...padding(1_100), ['x-forwarded-for', '198.51.100.7']],
      });
      expect([401, 431]).toContain(reply.status);
      await guard.idle();
    }
    expect(guard.isBanned(LB)).toBe(false);
    expect(
      (await send(port, { path: '/', from: LB, headers: { 'x-forwarded-for': '198.51.100.8' } })).status,
    ).toBe(200);
  });
});
