import { createServer, type Server } from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, it } from 'vitest';
import type { PortcullisOptions } from '../../src/config/schema.js';
import type { Guard } from '../../src/guard.js';
import { portcullis } from '../../src/surfaces/express/index.js';
import { type Listening, listen, send } from '../helpers/http-client.js';
import { cleanups, runCleanups, startGuard, startProxy, startUpstream } from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Issue 8, item 3: the path a jail judges is the path the application routes. Every spelling of
 * `/login` an app (behind the proxy, or Express itself) serves as `/login` counts against an
 * anchored `^/login$` jail, whatever its case.
 */

afterEach(runCleanups);

/** Each spelling, and the loopback address that sends it (one client per spelling). */
const SPELLINGS: [target: string, from: string][] = [
  ['/./login', '127.0.1.1'],
  ['/%2e/login', '127.0.1.2'],
  ['/a/../login', '127.0.1.3'],
  ['/.%2e/login', '127.0.1.4'],
  ['http://x/login', '127.0.1.5'],
  ['/login/.', '127.0.1.6'],
  ['//login', '127.0.1.7'],
  ['/LOGIN', '127.0.1.8'],
  ['/Login/', '127.0.1.9'],
];

const loginJail = (extra: Record<string, unknown> = {}): PortcullisOptions => ({
  jails: {
    'web-auth': { source: 'http', filter: { path: '^/login$', ...extra }, maxretry: 3, bantime: '1h' },
  },
});

/** Sends `count` POSTs to `target` from `from`, then waits until the guard judged them. */
async function attempts(
  port: number,
  target: string,
  from: string,
  count: number,
  settle: () => Promise<void>,
) {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    statuses.push((await send(port, { method: 'POST', path: target, from })).status);
    await settle();
  }
  return statuses;
}

describe('reverse proxy: a ^/login$ jail judges the path the upstream is sent', () => {
  it.each(SPELLINGS)('%s is judged as /login and bans at maxretry', async (target, from) => {
    const guard = await startGuard(loginJail());
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url });
    const port = proxy.addresses[0]!.port;
    await attempts(port, target, from, 3, () => guard.idle());
    await waitFor(() => guard.isBanned(from), {
      timeoutMs: 2_000,
      message: `${from} (${target}) to be banned`,
    });
    expect((await send(port, { method: 'POST', path: target, from })).status).toBe(403);
    expect(upstream.seen.length).toBe(3);
    // The proxy is not banned for it, and another client is served.
    expect((await send(port, { path: '/', from: '127.0.2.1' })).status).toBe(200);
  });

  it("bans a guesser at an upstream that routes /LOGIN as /login (hydra's 289 attempts never get that far)", async () => {
    const guard = await startGuard(loginJail({ status: 401 }));
    // An upstream routing case-insensitively, as Express does: every spelling of its login fails.
    const upstream = await startUpstream('a', 0, (req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname.toLowerCase().replace(/\/$/, '');
      if (path !== '/login') return false;
      res.statusCode = 401;
      res.end('wrong password\n');
      return true;
    });
    const proxy = await startProxy(guard, { target: upstream.url });
    const port = proxy.addresses[0]!.port;
    const from = '127.0.3.1';
    expect(await attempts(port, '/LOGIN', from, 3, () => guard.idle())).toEqual([401, 401, 401]);
    await waitFor(() => guard.isBanned(from), { timeoutMs: 2_000, message: 'the guesser to be banned' });
    expect((await send(port, { method: 'POST', path: '/LOGIN', from })).status).toBe(403);
  });

  it('forwards exactly the normalised target it judged (query as sent)', async () => {
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url });
    const port = proxy.addresses[0]!.port;
    for (const [target, expected] of [
      ['/./login?next=/a/../b', '/login?next=/a/../b'],
      ['//login', '/login'],
      ['/%6Cogin', '/login'],
      ['http://x/a/%2e%2e/login?q', '/login?q'],
      ['/login/.', '/login/'],
      ['/a%2F..%2Flogin', '/a%2F..%2Flogin'],
    ] as const) {
      await send(port, { path: target, from: '127.0.4.1' });
      expect(upstream.seen.at(-1)?.url, target).toBe(expected);
    }
  });

  it('a (?-i) pattern stays case-sensitive', async () => {
    const guard = await startGuard(loginJail({ path: '(?-i)^/login$' }));
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url });
    const port = proxy.addresses[0]!.port;
    await attempts(port, '/LOGIN', '127.0.5.1', 3, () => guard.idle());
    expect(guard.isBanned('127.0.5.1')).toBe(false);
    await attempts(port, '/./login', '127.0.5.2', 3, () => guard.idle());
    await waitFor(() => guard.isBanned('127.0.5.2'), {
      timeoutMs: 2_000,
      message: 'the guesser to be banned',
    });
  });
});

type ExpressFactory = typeof express5;
const majors: [string, ExpressFactory][] = [
  ['Express 4', express4 as unknown as ExpressFactory],
  ['Express 5', express5],
];

async function serve(makeExpress: ExpressFactory, guard: Guard): Promise<Listening> {
  const app = makeExpress();
  app.use(portcullis(guard));
  app.post('/login', (_req, res) => {
    res.status(401).send('wrong password');
  });
  app.use((_req, res) => {
    res.send('hello');
  });
  const server: Server = createServer(app);
  const listening = await listen(server);
  cleanups.push(() => listening.close());
  return listening;
}

describe.each(majors)('%s: a ^/login$ jail judges the path the route matches', (_name, makeExpress) => {
  it.each(SPELLINGS)('%s is judged as /login and bans at maxretry', async (target, from) => {
    const guard = await startGuard(loginJail());
    const server = await serve(makeExpress, guard);
    await attempts(server.port, target, from, 3, () => server.settled(guard));
    expect(guard.isBanned(from)).toBe(true);
    expect((await send(server.port, { path: '/', from })).status).toBe(403);
    expect((await send(server.port, { path: '/', from: '127.0.2.1' })).status).toBe(200);
  });

  it('bans a guesser hitting the login route as /LOGIN (Express routes ignore case)', async () => {
    const guard = await startGuard(loginJail({ status: 401, method: 'POST' }));
    const server = await serve(makeExpress, guard);
    const from = '127.0.3.1';
    // Express serves /LOGIN and /login/ from app.post('/login'): each is a wrong password.
    expect(await attempts(server.port, '/LOGIN', from, 2, () => server.settled(guard))).toEqual([401, 401]);
    expect(await attempts(server.port, '/Login/', from, 1, () => server.settled(guard))).toEqual([401]);
    expect(guard.isBanned(from)).toBe(true);
    expect((await send(server.port, { method: 'POST', path: '/login', from })).status).toBe(403);
  });
});
