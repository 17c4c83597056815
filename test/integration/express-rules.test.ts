import { createServer } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/core/clock.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { portcullis } from '../../src/surfaces/express/index.js';
import { type Listening, listen, send } from '../helpers/http-client.js';

/**
 * Every bundled HTTP rule behind a real Express server, driven by real request lines. Each test
 * uses its own client address (all of 127.0.0.0/8 is loopback) so the jails do not interfere.
 */
const local = { ignoreip: [], ignoreself: false };
let guard: Guard;
let server: Listening;

beforeAll(async () => {
  guard = await createGuard(
    {
      store: { memory: true },
      jails: {
        scanners: { source: 'http', filter: 'scanners', ...local },
        'auth-failures': { source: 'http', filter: 'auth-failures', ...local },
        'not-found-burst': { source: 'http', filter: 'not-found-burst', maxretry: 5, ...local },
        'bad-bots': { source: 'http', filter: 'bad-bots', ...local },
        traversal: { source: 'http', filter: 'traversal', ...local },
        'method-abuse': { source: 'http', filter: 'method-abuse', ...local },
        'post-flood': { source: 'http', filter: 'flood', rate: '10/10s', ...local },
      },
    },
    { clock: createManualClock(), store: new MemoryStore(), env: {} },
  );
  // The flood rule narrowed to POSTs: a request-only filter on a rate jail.
  const config = guard.config;
  guard.reload({
    ...config,
    jails: config.jails.map((jail) =>
      jail.name === 'post-flood' ? { ...jail, httpFilter: { method: 'POST' } } : jail,
    ),
  });
  const app = express();
  app.use(portcullis(guard));
  app.post(/^\/(login|api\/session)$/, (_req, res) => {
    res.status(401).send('no');
  });
  app.get('/api/session', (_req, res) => {
    res.status(401).send('not logged in');
  });
  app.get(/^\/missing\//, (_req, res) => {
    res.status(404).send('not found');
  });
  app.use((req, res) => {
    res.status(req.path === '/' ? 200 : 404).send('page');
  });
  server = await listen(createServer(app));
});

afterAll(async () => {
  await server?.close();
  await guard?.close();
});

async function hits(
  from: string,
  requests: { method?: string; path: string; ua?: string }[],
): Promise<number[]> {
  const statuses: number[] = [];
  for (const r of requests) {
    const headers = r.ua === undefined ? {} : { 'user-agent': r.ua };
    statuses.push(
      (await send(server.port, { method: r.method ?? 'GET', path: r.path, headers, from })).status,
    );
    await server.settled(guard);
  }
  return statuses;
}

describe('bundled HTTP rules through Express', () => {
  it('scanners: two probes ban', async () => {
    expect(await hits('127.0.0.10', [{ path: '/.env' }, { path: '/.git/config' }])).toEqual([404, 404]);
    expect((await send(server.port, { from: '127.0.0.10' })).status).toBe(403);
    expect(guard.lookup('127.0.0.10')?.jail).toBe('scanners');
  });

  it('auth-failures: five refused logins ban; a logged-out visitor polling its session does not', async () => {
    const polls = Array.from({ length: 8 }, () => ({ path: '/api/session' }));
    expect(await hits('127.0.0.11', polls)).toEqual(Array(8).fill(401));
    expect(guard.isBanned('127.0.0.11')).toBe(false);
    const guesses = Array.from({ length: 5 }, () => ({ method: 'POST', path: '/login' }));
    expect(await hits('127.0.0.12', guesses)).toEqual(Array(5).fill(401));
    expect((await send(server.port, { from: '127.0.0.12' })).status).toBe(403);
  });

  it('not-found-burst: five distinct missing paths ban; one missing path reloaded does not', async () => {
    const reloads = Array.from({ length: 10 }, () => ({ path: '/missing/logo.png' }));
    await hits('127.0.0.13', reloads);
    expect(guard.isBanned('127.0.0.13')).toBe(false);
    const guesses = ['admin', 'backup', 'old', 'test', 'dev'].map((word) => ({ path: `/missing/${word}` }));
    await hits('127.0.0.14', guesses);
    expect(guard.lookup('127.0.0.14')?.jail).toBe('not-found-burst');
  });

  it('bad-bots: one request from sqlmap bans', async () => {
    expect(
      await hits('127.0.0.15', [{ path: '/?id=1', ua: 'sqlmap/1.7.2#stable (https://sqlmap.org)' }]),
    ).toEqual([200]);
    expect(
      (await send(server.port, { from: '127.0.0.15', headers: { 'user-agent': 'Mozilla/5.0' } })).status,
    ).toBe(403);
    await hits('127.0.0.16', [{ path: '/', ua: 'curl/8.5.0' }]);
    expect(guard.isBanned('127.0.0.16')).toBe(false);
  });

  it('traversal: raw, encoded and overlong traversals ban at once', async () => {
    for (const [i, path] of [
      '/static/../../etc/passwd',
      '/..%c0%af..%c0%afetc/passwd',
      '/img?f=a.jpg%00.php',
    ].entries()) {
      const from = `127.0.0.${20 + i}`;
      await hits(from, [{ path }]);
      expect(guard.lookup(from)?.jail, path).toBe('traversal');
    }
  });

  it('method-abuse: TRACE and PROPFIND on a plain site ban', async () => {
    expect(
      await hits('127.0.0.17', [
        { method: 'TRACE', path: '/' },
        { method: 'PROPFIND', path: '/' },
      ]),
    ).toEqual([200, 200]);
    expect((await send(server.port, { from: '127.0.0.17' })).status).toBe(403);
  });

  it('flood narrowed to POST: GETs are never limited, the 11th POST in 10s is refused and bans', async () => {
    const gets = Array.from({ length: 30 }, () => ({ path: '/' }));
    expect((await hits('127.0.0.18', gets)).every((s) => s === 200)).toBe(true);
    const posts = Array.from({ length: 12 }, () => ({ method: 'POST', path: '/form' }));
    const statuses = await hits('127.0.0.18', posts);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(404));
    expect(statuses[10]).toBe(429);
    expect(statuses[11]).toBe(403);
    expect(guard.lookup('127.0.0.18')?.jail).toBe('post-flood');
  });
});
