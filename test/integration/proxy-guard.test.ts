import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/core/clock.js';
import { encodeProxyV1, encodeProxyV2 } from '../../src/sources/socket/proxy-protocol.js';
import { send } from '../helpers/http-client.js';
import {
  A,
  B,
  LB,
  rawExchange,
  runCleanups,
  startGuard,
  startProxy,
  startUpstream,
  statusOf,
} from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait-for.js';

afterEach(runCleanups);

const loginJail = {
  jails: { 'web-auth': { source: 'http' as const, filter: { status: [401] }, maxretry: 3, bantime: '2s' } },
};

describe('reverse proxy: guarding', () => {
  it('refuses the (maxretry+1)th request of a brute-forcing client, leaves others alone, serves it again after bantime', async () => {
    const clock = createManualClock(Date.now());
    const guard = await startGuard(loginJail, clock);
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url });
    const port = proxy.addresses[0]!.port;

    for (let i = 0; i < 3; i++) expect((await send(port, { path: '/status/401', from: A })).status).toBe(401);
    await waitFor(() => guard.isBanned(A), { timeoutMs: 1_000, intervalMs: 5, message: 'A to be banned' });
    const refused = await send(port, { path: '/status/401', from: A });
    expect(refused.status).toBe(403);
    expect(refused.headers['retry-after']).toBe('2');
    expect(upstream.seen.length).toBe(3); // the refused request never reached the application

    expect((await send(port, { path: '/', from: B })).status).toBe(200);

    clock.advance(2_001);
    guard.tick();
    const again = await send(port, { path: '/', from: A });
    expect(again.status).toBe(200);
    expect(again.body).toBe('upstream a\n');
  });

  it("deny: drop closes a banned client's connection at accept without a byte", async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, deny: 'drop' });
    const port = proxy.addresses[0]!.port;
    await guard.ban(A, { duration: '1h' });

    const dropped = await rawExchange(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], { from: A });
    expect(dropped.data.length).toBe(0);
    expect(dropped.end).not.toBe('timeout');
    expect(proxy.stats.dropped).toBe(1);
    expect(upstream.seen.length).toBe(0);
    expect((await send(port, { from: B })).status).toBe(200);
  });

  it('deny: drop also closes a keep-alive connection whose client is banned mid-way', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, deny: 'drop' });
    const port = proxy.addresses[0]!.port;
    const result = await rawExchange(
      port,
      (write, received) => {
        write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        // Banned once the first response is in, then asking again on the same connection.
        void waitFor(() => statusOf(received()) === 200, { timeoutMs: 5_000, message: 'the first response' })
          .then(() => guard.ban(A))
          .then(() => write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      },
      { from: A },
    );
    expect(statusOf(result.text)).toBe(200);
    expect(result.text.split('HTTP/1.1').length - 1).toBe(1);
    expect(result.end).toBe('reset');
  });

  it('deny: 403 (and a configured body) answers with Retry-After; a permanent ban has none', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, deny: { status: 403, body: 'go away\n' } });
    const port = proxy.addresses[0]!.port;
    await guard.ban(A, { duration: '90s' });
    await guard.ban(B, { duration: -1 });
    const temporary = await send(port, { from: A });
    expect(temporary).toMatchObject({ status: 403, body: 'go away\n' });
    expect(Number(temporary.headers['retry-after'])).toBeGreaterThanOrEqual(89);
    const permanent = await send(port, { from: B });
    expect(permanent.status).toBe(403);
    expect(permanent.headers['retry-after']).toBeUndefined();
    expect(upstream.seen.length).toBe(0);
  });
});

describe('reverse proxy: who the client is', () => {
  it('ignores X-Forwarded-For from an untrusted peer and replaces the chain', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, trustedProxies: [LB] });
    const port = proxy.addresses[0]!.port;
    await guard.ban('203.0.113.9');
    const reply = await send(port, {
      path: '/echo',
      from: A,
      headers: {
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        forwarded: 'for=203.0.113.9',
      },
    });
    expect(reply.status).toBe(200);
    const headers = JSON.parse(reply.body) as Record<string, string>;
    expect(headers['x-forwarded-for']).toBe(A);
    expect(headers['x-real-ip']).toBe(A);
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-host']).toBe(`127.0.0.1:${port}`);
    expect(headers.forwarded).toBeUndefined();
  });

  it('uses X-Forwarded-For from a trusted peer, appends the peer, and refuses a banned client (even with deny: drop)', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, trustedProxies: [LB], deny: 'drop' });
    const port = proxy.addresses[0]!.port;
    const reply = await send(port, {
      path: '/echo',
      from: LB,
      headers: { 'x-forwarded-for': '198.51.100.4', 'x-forwarded-proto': 'https' },
    });
    const headers = JSON.parse(reply.body) as Record<string, string>;
    expect(headers['x-forwarded-for']).toBe(`198.51.100.4, ${LB}`);
    expect(headers['x-real-ip']).toBe('198.51.100.4');
    expect(headers['x-forwarded-proto']).toBe('https');

    await guard.ban('198.51.100.4');
    // The load balancer's connection carries other clients too: answered, not dropped.
    const refused = await send(port, { from: LB, headers: { 'x-forwarded-for': '198.51.100.4' } });
    expect(refused.status).toBe(403);
    expect((await send(port, { from: LB, headers: { 'x-forwarded-for': '198.51.100.5' } })).status).toBe(200);
  });

  it.each([
    ['v1', encodeProxyV1('192.0.2.44', 51000, '127.0.0.1', 443), '192.0.2.44'],
    ['v1 IPv6', encodeProxyV1('2001:db8::44', 51000, '::1', 443), '2001:db8::44'],
    ['v2', encodeProxyV2('192.0.2.44', 51000, '127.0.0.1', 443), '192.0.2.44'],
    ['v2 IPv6', encodeProxyV2('2001:db8::44', 51000, '::1', 443), '2001:db8::44'],
  ])('takes the client from a PROXY protocol %s header', async (_name, header, client) => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, {
      target: upstream.url,
      listen: [{ address: '127.0.0.1:0', proxyProtocol: true }],
    });
    const port = proxy.addresses[0]!.port;
    const reply = await rawExchange(port, [
      Buffer.concat([header, Buffer.from('GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
    ]);
    expect(statusOf(reply.text)).toBe(200);
    const headers = JSON.parse(reply.text.slice(reply.text.indexOf('\r\n\r\n') + 4)) as Record<
      string,
      string
    >;
    expect(headers['x-forwarded-for']).toBe(client);
    expect(headers['x-real-ip']).toBe(client);
  });

  it('with trusted_proxies, takes PROXY protocol headers only from those peers', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, {
      target: upstream.url,
      trustedProxies: [LB],
      listen: [{ address: '127.0.0.1:0', proxyProtocol: true }],
    });
    const port = proxy.addresses[0]!.port;
    const request = 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const forged = await rawExchange(port, [encodeProxyV1('192.0.2.45', 1, '127.0.0.1', 2), request], {
      from: A,
    });
    expect(forged.data.length).toBe(0);
    const fromBalancer = await rawExchange(port, [encodeProxyV1('192.0.2.45', 1, '127.0.0.1', 2), request], {
      from: LB,
    });
    expect(fromBalancer.text).toContain('"x-real-ip":"192.0.2.45"');
    expect(proxy.stats.proxyProtocolErrors).toBe(1);
  });

  it('drops a banned PROXY protocol client after its header, and closes connections without a valid header', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, {
      target: upstream.url,
      deny: 'drop',
      proxyProtocolTimeoutMs: 300,
      listen: [{ address: '127.0.0.1:0', proxyProtocol: true }],
    });
    const port = proxy.addresses[0]!.port;
    await guard.ban('192.0.2.44');
    const banned = await rawExchange(port, [
      encodeProxyV2('192.0.2.44', 1, '127.0.0.1', 2),
      'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
    ]);
    expect(banned.data.length).toBe(0);

    // Plain HTTP on a PROXY protocol listener is garbage, as is a header that never ends.
    const plain = await rawExchange(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(plain.data.length).toBe(0);
    const slow = await rawExchange(port, ['PROXY TCP4 192.0.2.1']);
    expect(slow.data.length).toBe(0);
    expect(slow.end).not.toBe('timeout');
    expect(slow.elapsedMs).toBeGreaterThanOrEqual(250);
    // A LOCAL header (a health check) leaves the balancer as the client.
    const local = await rawExchange(port, [
      encodeProxyV2(null),
      'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ]);
    expect(local.text).toContain('"x-forwarded-for":"127.0.0.1"');
    expect(proxy.stats.proxyProtocolErrors).toBe(2);
    expect(upstream.seen.length).toBe(1);
  });
});

describe('reverse proxy: upstreams', () => {
  it('answers 502 while the upstream is down and serves again when it is back', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream('a');
    const port0 = upstream.port;
    await upstream.close();
    const proxy = await startProxy(guard, { target: `http://127.0.0.1:${port0}` });
    const port = proxy.addresses[0]!.port;
    const down = await send(port, { from: A });
    expect(down).toMatchObject({ status: 502, body: 'Bad Gateway\n' });
    await startUpstream('back', port0);
    const back = await send(port, { from: A });
    expect(back).toMatchObject({ status: 200, body: 'upstream back\n' });
    expect(proxy.stats.badGateway).toBe(1);
  });

  it('answers 504 when the upstream hangs past the upstream timeout', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, upstreamTimeoutMs: 300 });
    const port = proxy.addresses[0]!.port;
    const started = performance.now();
    const reply = await send(port, { path: '/hang', from: A });
    const elapsed = performance.now() - started;
    expect(reply).toMatchObject({ status: 504, body: 'Gateway Timeout\n' });
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(2_000);
    // The proxy still serves.
    expect((await send(port, { from: B })).status).toBe(200);
  });

  it('balances round-robin and skips a target that refuses connections', async () => {
    const guard = await startGuard({});
    const one = await startUpstream('one');
    const two = await startUpstream('two');
    const dead = await startUpstream('dead');
    await dead.close();
    const proxy = await startProxy(guard, { targets: [one.url, two.url, dead.url], targetDownMs: 60_000 });
    const port = proxy.addresses[0]!.port;
    const bodies: string[] = [];
    for (let i = 0; i < 9; i++) {
      const reply = await send(port, { from: A });
      expect(reply.status).toBe(200);
      bodies.push(reply.body.trim());
    }
    expect(bodies.filter((b) => b === 'upstream one').length).toBeGreaterThanOrEqual(4);
    expect(bodies.filter((b) => b === 'upstream two').length).toBeGreaterThanOrEqual(4);
    expect(proxy.stats.retries).toBe(1); // the dead one was tried once, then skipped
    expect(proxy.stats.badGateway).toBe(0);
  });

  it('keeps upstream connections alive across requests', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const peers = new Set<number>();
    upstream.server.on('connection', (socket) => peers.add(socket.remotePort ?? 0));
    const proxy = await startProxy(guard, { target: upstream.url });
    const port = proxy.addresses[0]!.port;
    for (let i = 0; i < 5; i++) expect((await send(port, { from: A })).status).toBe(200);
    expect(peers.size).toBe(1);
  });
});

describe('reverse proxy: life cycle', () => {
  it('listens on several addresses and closes gracefully, letting a request in flight finish', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream('a', 0, (req, res) => {
      if (req.url !== '/slow') return false;
      // Kept: the response must still be in flight when close() begins (the subject).
      setTimeout(() => res.end('slow done\n'), 200);
      return true;
    });
    const proxy = await startProxy(guard, { target: upstream.url, listen: ['127.0.0.1:0', '[::1]:0'] });
    expect(proxy.addresses.map((a) => a.family)).toEqual(['IPv4', 'IPv6']);
    const inFlight = send(proxy.addresses[0]!.port, { path: '/slow', from: A });
    await waitFor(() => upstream.seen.some((r) => r.url === '/slow'), {
      message: '/slow to reach the upstream',
    });
    const closing = proxy.close();
    expect((await inFlight).body).toBe('slow done\n');
    await closing;
    await proxy.close(); // idempotent
    await expect(send(proxy.addresses[0]!.port, { from: A })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses invalid options with every problem named', async () => {
    const guard = await startGuard({});
    await expect(
      startProxy(guard, { listen: 'nowhere:99999', headerTimeoutMs: -1, target: 'ftp://x' }),
    ).rejects.toThrow(/proxy\.listen\.0: .*\n.*proxy\.targets\.0: .*ftp.*\n.*proxy\.headerTimeoutMs/s);
  });
});
