import { afterEach, describe, expect, it } from 'vitest';
import type { ForwardedHeader } from '../../src/sources/http/client-ip.js';
import { send } from '../helpers/http-client.js';
import { LB, runCleanups, startGuard, startProxy, startUpstream } from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Issue 8, item 4: a client behind a trusted proxy cannot get the proxy judged in its place by
 * sending a malformed forwarding header. `LB` plays the trusted proxy: each case is the header
 * list it forwards — the client's own header lines as sent, then (for an appending proxy) its own.
 */

afterEach(runCleanups);

const CLIENT = '198.51.100.7';
const OTHER = '198.51.100.8';

interface Case {
  name: string;
  header: ForwardedHeader;
  /** The header lines the trusted proxy forwards for `client`. */
  lines: (client: string) => [string, string][];
  /** The client's own address can be read (an appending proxy): it is banned; else unknown. */
  identified: boolean;
}

const elements = (n: number) => Array.from({ length: n }, (_, i) => `for=192.0.2.${i % 250}`).join(', ');

const CASES: Case[] = [
  {
    name: 'Forwarded: an unterminated for=" before the element the proxy appended',
    header: 'forwarded',
    lines: (c) => [
      ['forwarded', 'for="'],
      ['forwarded', `for=${c};proto=http`],
    ],
    identified: true,
  },
  {
    name: 'Forwarded: an unterminated quote in the same line the proxy appended to',
    header: 'forwarded',
    lines: (c) => [['forwarded', `for="[2001:db8::1, for=${c}`]],
    identified: true,
  },
  {
    name: 'Forwarded: 100 elements before the one the proxy appended',
    header: 'forwarded',
    lines: (c) => [['forwarded', `${elements(100)}, for=${c}`]],
    identified: true,
  },
  {
    name: 'Forwarded: an unterminated for=" passed through alone (a proxy that does not append)',
    header: 'forwarded',
    lines: () => [['forwarded', 'for="']],
    identified: false,
  },
  {
    name: "X-Real-IP: the client's copy not stripped, then the proxy's",
    header: 'x-real-ip',
    lines: (c) => [
      ['x-real-ip', '203.0.113.66'],
      ['x-real-ip', c],
    ],
    identified: true,
  },
  {
    name: "X-Real-IP: a comma list from the client, then the proxy's",
    header: 'x-real-ip',
    lines: (c) => [
      ['x-real-ip', '203.0.113.66, junk, 203.0.113.67'],
      ['x-real-ip', c],
    ],
    identified: true,
  },
  {
    name: 'X-Real-IP: a comma list of junk passed through alone',
    header: 'x-real-ip',
    lines: () => [['x-real-ip', 'junk, 1.2.3']],
    identified: false,
  },
  {
    name: 'X-Forwarded-For: junk on the right of a trusted hop',
    header: 'x-forwarded-for',
    lines: () => [['x-forwarded-for', `203.0.113.9, ${LB}, junk`]],
    identified: false,
  },
];

describe('reverse proxy (deny: drop) behind a trusted proxy: a malformed forwarding header', () => {
  it.each(CASES)('$name: the proxy is never banned, others keep being served', async (c) => {
    const guard = await startGuard({
      http: { forwarded_header: c.header },
      jails: { 'web-auth': { source: 'http', filter: { status: 401 }, maxretry: 3, bantime: '1h' } },
    });
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, trustedProxies: [LB], deny: 'drop' });
    const port = proxy.addresses[0]!.port;

    for (let i = 0; i < 5; i++) {
      const reply = await send(port, { path: '/status/401', from: LB, headers: c.lines(CLIENT) });
      // The client is refused (the deny response: dropping would cut the shared connection)
      // once banned; never dropped, never an error.
      expect([401, 403]).toContain(reply.status);
      await guard.idle();
    }
    if (c.identified) {
      await waitFor(() => guard.isBanned(CLIENT), { timeoutMs: 2_000, message: 'the client to be banned' });
      expect((await send(port, { path: '/', from: LB, headers: c.lines(CLIENT) })).status).toBe(403);
    }
    expect(guard.isBanned(LB)).toBe(false);
    // Another client behind the same proxy, well-formed or not, is served.
    const named = c.header === 'forwarded' ? `for=${OTHER}` : OTHER;
    const other = await send(port, { path: '/', from: LB, headers: [[c.header, named]] });
    expect(other.status).toBe(200);
    expect((await send(port, { path: '/', from: LB })).status).toBe(200);
    expect(guard.isBanned(LB)).toBe(false);
    expect(proxy.stats.dropped).toBe(0);
  });
});
