import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import express5 from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, it } from 'vitest';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { portcullis } from '../../src/surfaces/express/index.js';
import { listen, send } from '../helpers/http-client.js';
import { cleanups as proxyCleanups, runCleanups, startProxy, startUpstream } from '../helpers/proxy.js';

// An attacker does not wait for answers: 200 wrong passwords written at once on one keep-alive
// connection, or many connections at once, against a login that takes 100 ms (like bcrypt). The
// jail's verdict must land before the next request of that client is admitted.

const A = '127.0.0.2';
const B = '127.0.0.3';
const MAXRETRY = 5;
const local = { ignoreip: [], ignoreself: false };
let cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  await runCleanups();
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function guardWith(options: PortcullisOptions): Promise<Guard> {
  const guard = await createGuard(
    { store: { memory: true }, ...options },
    { store: new MemoryStore(), env: {} },
  );
  cleanups.push(() => guard.close());
  return guard;
}

interface App {
  port: number;
  /** Login attempts that reached the route (the application). */
  attempts: () => number;
}

/** An Express app whose login fails after 100 ms; `reportFromApp`: the app calls `fail()` itself. */
async function serveLogin(make: typeof express5, guard: Guard, reportFromApp: boolean): Promise<App> {
  const app = make();
  const shield = portcullis(guard);
  app.use(shield);
  let attempts = 0;
  app.post('/login', async (req, res) => {
    attempts++;
    req.resume();
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (reportFromApp) await shield.fail(req, 'login');
    res.status(401).send('wrong password');
  });
  app.get('/', (_req, res) => {
    res.send('home');
  });
  const server = createServer(app) as Server;
  const listening = await listen(server);
  cleanups.push(() => listening.close());
  return { port: listening.port, attempts: () => attempts };
}

/** Writes `count` pipelined requests at once from `from`; resolves with the raw answer once the connection closes. */
function pipeline(port: number, from: string, count: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ port, host: '127.0.0.1', localAddress: from }, () => {
      socket.write(request.repeat(count));
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      // Every request answered (or refused): done.
      if ((text.match(/HTTP\/1\.1 \d{3} /g) ?? []).length >= count) socket.end();
    });
    socket.setTimeout(20_000, () => socket.destroy(new Error(`timed out; got ${text.slice(0, 200)}`)));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

const LOGIN =
  'POST /login HTTP/1.1\r\nHost: app\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\npassword=wrong';

for (const [name, make] of [
  ['Express 4', express4 as unknown as typeof express5],
  ['Express 5', express5],
] as const) {
  describe(`${name}: a brute-forcer that does not wait`, () => {
    it(`200 pipelined wrong passwords on one connection: at most maxretry (${MAXRETRY}) reach the app (status filter)`, async () => {
      const guard = await guardWith({
        jails: {
          login: { source: 'http', filter: { status: 401, path: '^/login$' }, maxretry: MAXRETRY, ...local },
        },
      });
      const app = await serveLogin(make, guard, false);
      const answer = await pipeline(app.port, A, 200, LOGIN);
      expect(app.attempts()).toBeLessThanOrEqual(MAXRETRY);
      // Every request was answered: 401s, then 403s.
      const statuses = (answer.match(/HTTP\/1\.1 (\d{3}) /g) ?? []).map((line) => line.slice(9, 12));
      expect(statuses).toHaveLength(200);
      expect(statuses.filter((s) => s === '401')).toHaveLength(app.attempts());
      expect(statuses.at(-1)).toBe('403');
      expect(guard.isBanned(A)).toBe(true);
      expect((await send(app.port, { path: '/', from: B })).status).toBe(200);
    });

    it('200 pipelined wrong passwords on a connection the attacker then kills: at most maxretry reach the app', async () => {
      const guard = await guardWith({
        jails: {
          login: { source: 'http', filter: { status: 401, path: '^/login$' }, maxretry: MAXRETRY, ...local },
        },
      });
      const app = await serveLogin(make, guard, false);
      await new Promise<void>((resolve) => {
        const socket = connect({ port: app.port, host: '127.0.0.1', localAddress: A }, () => {
          socket.write(LOGIN.repeat(200));
          // Dead while the first is still at the (100 ms) login: the queue behind it is released at once.
          setTimeout(() => socket.destroy(), 30);
        });
        socket.on('close', () => resolve());
        socket.on('error', () => {});
      });
      await new Promise((resolve) => setTimeout(resolve, 300)); // Kept: let any released request reach the route.
      expect(app.attempts()).toBeLessThanOrEqual(MAXRETRY);
    });

    it('200 pipelined wrong passwords reported by the app with fail(): at most maxretry reach it', async () => {
      const guard = await guardWith({ jails: { login: { source: 'api', maxretry: MAXRETRY, ...local } } });
      const app = await serveLogin(make, guard, true);
      await pipeline(app.port, A, 200, LOGIN);
      expect(app.attempts()).toBeLessThanOrEqual(MAXRETRY);
      expect(guard.isBanned(A)).toBe(true);
    });

    it('20 parallel connections of 10 attempts each: at most maxretry + the 20 in flight reach the app', async () => {
      const guard = await guardWith({
        jails: {
          login: { source: 'http', filter: { status: 401, path: '^/login$' }, maxretry: MAXRETRY, ...local },
        },
      });
      const app = await serveLogin(make, guard, false);
      await Promise.all(Array.from({ length: 20 }, () => pipeline(app.port, A, 10, LOGIN)));
      expect(app.attempts()).toBeLessThanOrEqual(MAXRETRY + 20);
      expect(guard.isBanned(A)).toBe(true);
      // B, who never failed, is served.
      expect((await send(app.port, { path: '/', from: B })).status).toBe(200);
    });
  });
}

describe('two guard middlewares on one app', () => {
  it('a request judged by both goes on (it does not wait for its own turn)', async () => {
    const guard = await guardWith({ jails: { login: { source: 'api', ...local } } });
    const app = express5();
    app.use(portcullis(guard));
    app.use(portcullis(guard, { status: 429 }));
    app.get('/', (_req, res) => {
      res.send('home');
    });
    const listening = await listen(createServer(app));
    cleanups.push(() => listening.close());
    expect((await send(listening.port, { path: '/', from: B })).status).toBe(200);
  });
});

describe('reverse proxy: a brute-forcer that does not wait', () => {
  it('200 pipelined wrong passwords on one connection: at most maxretry reach the upstream', async () => {
    const guard = await guardWith({
      jails: {
        login: { source: 'http', filter: { status: 401, path: '^/login$' }, maxretry: MAXRETRY, ...local },
      },
    });
    const upstream = await startUpstream('app', 0, (req, res) => {
      if (!req.url?.startsWith('/login')) return false;
      req.resume();
      setTimeout(() => {
        res.statusCode = 401;
        res.end('wrong password');
      }, 100);
      return true;
    });
    proxyCleanups.push(() => upstream.close());
    const proxy = await startProxy(guard, { target: upstream.url, deny: { status: 403 } });
    const port = Number(new URL(proxy.addresses[0]?.url ?? '').port);
    const answer = await pipeline(port, A, 200, LOGIN);
    const logins = upstream.seen.filter((r) => r.url.startsWith('/login')).length;
    expect(logins).toBeLessThanOrEqual(MAXRETRY);
    // The ban closes the client's connection: one 403 (with Connection: close), the rest unanswered.
    expect(answer).toMatch(/HTTP\/1\.1 403 /);
    expect(guard.isBanned(A)).toBe(true);
    expect((await send(port, { path: '/', from: B })).status).toBe(200);
  });
});

describe('a burst of failures at once', () => {
  it('60 simultaneous failures on a maxretry-10 jail make one decision, one history row and one ban event', async () => {
    const guard = await guardWith({
      jails: {
        slow: {
          source: 'api',
          maxretry: 10,
          bantime: '40m',
          bantime_increment: { enabled: true, factor: 1 },
          ...local,
        },
      },
    });
    const bans: string[] = [];
    guard.on('ban', (decision) => bans.push(decision.target));
    const results = await Promise.all(Array.from({ length: 60 }, () => guard.report(A, { jail: 'slow' })));
    const outcomes = results.map((r) => r.outcome);
    expect(outcomes.filter((o) => o === 'banned')).toHaveLength(1);
    expect(bans).toEqual([A]);
    expect(await guard.store.countBans(A, 'slow', 0)).toBe(1);
    const [decision] = await guard.decisions();
    expect(decision?.expiresAt).toBe((decision?.startedAt ?? 0) + 40 * 60_000);
  });
});
