import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express5 from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, it } from 'vitest';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createManualClock, type ManualClock } from '../../src/core/clock.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import type { FailureInput, FailureResult } from '../../src/stores/store.js';
import { type ExpressGuardOptions, portcullis } from '../../src/surfaces/express/index.js';
import { type Listening, listen, send } from '../helpers/http-client.js';
import { waitFor } from '../helpers/wait-for.js';

const HOUR_MS = 3_600_000;
const A = '127.0.0.2';
const B = '127.0.0.3';
const PROXY = '127.0.0.9';

/** Counts what reaches the store, to prove a blocked flood costs no round trip. */
class CountingStore extends MemoryStore {
  addFailureCalls = 0;
  override addFailure(input: FailureInput): Promise<FailureResult> {
    this.addFailureCalls++;
    return super.addFailure(input);
  }
}

const local = { ignoreip: [], ignoreself: false };
let cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function guardWith(
  options: PortcullisOptions,
  clock: ManualClock = createManualClock(),
  store = new MemoryStore(),
) {
  const guard = await createGuard({ store: { memory: true }, ...options }, { clock, store, env: {} });
  cleanups.push(() => guard.close());
  return guard;
}

type ExpressFactory = typeof express5;

/** An app with the middleware first, a login that always fails, a slow route and a catch-all. */
async function serve(
  makeExpress: ExpressFactory,
  guard: Guard,
  options?: ExpressGuardOptions,
  setup?: (app: ReturnType<ExpressFactory>, shield: ReturnType<typeof portcullis>) => void,
  serverOptions: { maxHeaderSize?: number } = {},
): Promise<Listening> {
  const app = makeExpress();
  const shield = portcullis(guard, options);
  app.use(shield);
  setup?.(app, shield);
  app.post('/login', (_req, res) => {
    res.status(401).send('wrong password');
  });
  app.get('/slow', () => {
    // never answers: the client gives up
  });
  app.use((_req, res) => {
    res.send('hello');
  });
  const server: Server = createServer(serverOptions, app);
  const listening = await listen(server);
  cleanups.push(() => listening.close());
  return listening;
}

const majors: [string, ExpressFactory][] = [
  ['Express 4', express4 as unknown as ExpressFactory],
  ['Express 5', express5],
];

describe.each(majors)('%s', (_name, makeExpress) => {
  it('refuses the (maxretry+1)th request of a password guesser before any route, leaves others alone, and lets it back after bantime', async () => {
    const clock = createManualClock();
    const guard = await guardWith(
      {
        jails: {
          'web-auth': {
            source: 'http',
            filter: { status: 401, method: 'POST', path: '^/login$' },
            maxretry: 3,
            bantime: '1h',
            ...local,
          },
        },
      },
      clock,
    );
    let routed = 0;
    const server = await serve(makeExpress, guard, undefined, (app) => {
      app.use((_req, _res, next) => {
        routed++;
        next();
      });
    });
    const { port } = server;
    for (let i = 0; i < 3; i++) {
      expect((await send(port, { method: 'POST', path: '/login', from: A })).status).toBe(401);
      await server.settled(guard);
    }
    const routedBefore = routed;
    const refused = await send(port, { path: '/', from: A });
    expect(refused.status).toBe(403);
    expect(refused.headers['retry-after']).toBe('3600');
    expect(refused.body).toBe('Forbidden\n');
    expect(routed).toBe(routedBefore); // no route ran
    expect((await send(port, { path: '/', from: B })).status).toBe(200);
    expect(guard.isBanned(A)).toBe(true);

    clock.advance(HOUR_MS / 2);
    expect((await send(port, { path: '/', from: A })).headers['retry-after']).toBe('1800');
    clock.advance(HOUR_MS / 2);
    guard.tick();
    const back = await send(port, { path: '/', from: A });
    expect(back.status).toBe(200);
    expect(back.body).toBe('hello');
  });

  it('ignores X-Forwarded-For from an untrusted peer and believes it from a trusted proxy', async () => {
    const guard = await guardWith({
      http: { trusted_proxies: [`${PROXY}/32`] },
      jails: { 'web-auth': { source: 'http', filter: { status: 401 }, maxretry: 2, ...local } },
    });
    const server = await serve(makeExpress, guard);
    const { port } = server;
    // A guesser forging a header to frame someone else is banned itself.
    for (let i = 0; i < 2; i++) {
      await send(port, {
        method: 'POST',
        path: '/login',
        from: A,
        headers: { 'x-forwarded-for': '198.51.100.1' },
      });
      await server.settled(guard);
    }
    expect(guard.isBanned(A)).toBe(true);
    expect(guard.isBanned('198.51.100.1')).toBe(false);
    expect((await send(port, { from: A, headers: { 'x-forwarded-for': '198.51.100.77' } })).status).toBe(403);

    // Through the trusted proxy the client named in the header is the one counted and refused.
    for (let i = 0; i < 2; i++) {
      const headers = { 'x-forwarded-for': '203.0.113.50, 203.0.113.7' }; // the proxy appended .7
      await send(port, { method: 'POST', path: '/login', from: PROXY, headers });
      await server.settled(guard);
    }
    expect(guard.isBanned('203.0.113.7')).toBe(true);
    expect(guard.isBanned('203.0.113.50')).toBe(false);
    expect(guard.isBanned(PROXY)).toBe(false);
    expect((await send(port, { from: PROXY, headers: { 'x-forwarded-for': '203.0.113.7' } })).status).toBe(
      403,
    );
    expect((await send(port, { from: PROXY, headers: { 'x-forwarded-for': '203.0.113.8' } })).status).toBe(
      200,
    );
    expect((await send(port, { from: PROXY })).status).toBe(200);
  });

  it('bans a password guesser reported with fail(), without any status-code filter', async () => {
    const guard = await guardWith({ jails: { login: { source: 'api', maxretry: 3, ...local } } });
    const { port } = await serve(makeExpress, guard, undefined, (app, shield) => {
      app.post('/session', async (req, res) => {
        // The application knows the password was wrong; it answers 200 with an error page.
        const result = req.headers['x-use'] === 'guard' ? await guard.fail(req) : await shield.fail(req);
        res.send(`wrong password (${result.outcome})`);
      });
    });
    expect((await send(port, { method: 'POST', path: '/session', from: A })).body).toBe(
      'wrong password (counted)',
    );
    await send(port, { method: 'POST', path: '/session', from: A, headers: { 'x-use': 'guard' } });
    expect((await send(port, { method: 'POST', path: '/session', from: A })).body).toBe(
      'wrong password (banned)',
    );
    expect((await send(port, { method: 'POST', path: '/session', from: A })).status).toBe(403);
    expect((await send(port, { path: '/', from: B })).status).toBe(200);
  });

  it('bans a flood through a rate jail, and the flood after blocking never reaches the store', async () => {
    const store = new CountingStore();
    const guard = await guardWith(
      { jails: { flood: { source: 'http', filter: 'flood', rate: '20/10s', ...local } } },
      createManualClock(),
      store,
    );
    const { port } = await serve(makeExpress, guard);
    const statuses: number[] = [];
    for (let i = 0; i < 120; i++) statuses.push((await send(port, { path: `/page/${i}`, from: A })).status);
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(200));
    expect(statuses[20]).toBe(429);
    expect(statuses.slice(21).every((s) => s === 403 || s === 429)).toBe(true);
    expect(statuses.at(-1)).toBe(403);
    expect(guard.isBanned(A)).toBe(true);
    // The one failure (maxretry 1) is decided from this instance's own count, synchronously: the
    // store gets the decision, never a failure to count.
    expect(store.addFailureCalls).toBe(0);
    expect((await send(port, { path: '/', from: B })).status).toBe(200);
    expect(store.addFailureCalls).toBe(0);
  });

  it('never crashes on malformed forwarding headers and keeps serving', async () => {
    const guard = await guardWith({
      http: { trusted_proxies: [`${PROXY}/32`] },
      jails: { 'web-auth': { source: 'http', filter: { status: 401 }, maxretry: 50, ...local } },
    });
    const errors: Error[] = [];
    guard.on('error', (error) => errors.push(error));
    const { port } = await serve(makeExpress, guard, undefined, undefined, { maxHeaderSize: 256 * 1024 });
    const garbage = [
      '',
      ',,,',
      'garbage',
      '1.2.3.4:99999999',
      '[::1',
      '[::1]:x',
      '300.1.1.1',
      '1.2.3.4, , not-an-ip',
      '0x7f.0.0.1',
      `${'9'.repeat(100_000)}`,
      `${'1.2.3.4,'.repeat(12_000)}`,
      '\u00e9\u00e8',
    ];
    for (const value of garbage) {
      const reply = await send(port, { from: PROXY, headers: { 'x-forwarded-for': value } });
      expect(reply.status, JSON.stringify(value.slice(0, 40))).toBe(200);
    }
    // Repeated headers (joined by Node), on a trusted and an untrusted peer.
    const repeated: [string, string][] = [
      ['x-forwarded-for', '203.0.113.1'],
      ['x-forwarded-for', 'nonsense'],
    ];
    expect((await send(port, { from: PROXY, headers: repeated })).status).toBe(200);
    expect((await send(port, { from: A, headers: repeated })).status).toBe(200);
    // A broken request line never reaches the middleware; the server goes on.
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.end('GARBAGE \x00\x01 HTTP/9.9\r\n\r\n'));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
      socket.resume();
    });
    expect((await send(port, { from: B })).status).toBe(200);
    const shield = portcullis(guard);
    expect(shield.pipeline.stats.malformedForwarded).toBeGreaterThanOrEqual(10);
    expect(errors).toEqual([]);
  });

  it('judges aborted exchanges too: a client that gives up on /slow is still counted', async () => {
    const guard = await guardWith({
      jails: { slow: { source: 'http', filter: { path: '^/slow$' }, maxretry: 1, ...local } },
    });
    const server = await serve(makeExpress, guard);
    const socket = connect({ port: server.port, host: '127.0.0.1', localAddress: A }, () =>
      socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n'),
    );
    const closed = once(socket, 'close');
    // The client gives up once the app has the request (and the route is not answering).
    await waitFor(() => server.exchanges.received >= 1, {
      timeoutMs: 5_000,
      message: 'the request to arrive',
    });
    socket.destroy();
    await closed;
    await server.settled(guard);
    expect(guard.isBanned(A)).toBe(true);
  });

  it('answers banned clients with the configured page, or the middleware options', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-deny-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'denied.html'), '<h1>Go away</h1>\n');
    const { parseConfigText } = await import('../../src/config/load.js');
    const config = parseConfigText(
      'store: { memory: true }\nhttp:\n  deny: { status: 451, page: ./denied.html }\njails:\n  manual-only: { source: api }\n',
      join(dir, 'portcullis.yaml'),
      { env: {} },
    );
    const guard = await guardWith(config as unknown as PortcullisOptions);
    await guard.ban(A, { duration: -1 });
    const page = await serve(makeExpress, guard);
    const reply = await send(page.port, { from: A });
    expect(reply.status).toBe(451);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.headers['retry-after']).toBeUndefined(); // permanent
    expect(reply.body).toBe('<h1>Go away</h1>\n');

    const custom = await serve(makeExpress, guard, { status: 404, body: 'nothing here\n' });
    const other = await send(custom.port, { from: A });
    expect([other.status, other.body]).toEqual([404, 'nothing here\n']);
  });

  it('guard.express() loads the middleware lazily and behaves the same', async () => {
    const guard = await guardWith({ jails: { login: { source: 'api', maxretry: 2, ...local } } });
    await guard.ban(A, { duration: '10m' });
    const app = makeExpress();
    const shield = guard.express();
    app.use(shield);
    app.post('/login', async (req, res) => {
      await shield.fail(req);
      res.status(401).end();
    });
    app.use((_req, res) => {
      res.send('hello');
    });
    const { port, close } = await listen(createServer(app));
    cleanups.push(close);
    expect((await send(port, { from: A })).status).toBe(403);
    expect((await send(port, { from: B })).status).toBe(200);
    await send(port, { method: 'POST', path: '/login', from: B });
    await send(port, { method: 'POST', path: '/login', from: B });
    expect((await send(port, { from: B })).status).toBe(403);
  });
});

describe('fail() jail choice', () => {
  it('requires a jail name when several jails could take the report', async () => {
    const guard = await guardWith({ jails: { a: { source: 'api' }, b: { source: 'api' } } });
    const { port } = await serve(express5, guard, undefined, (app) => {
      app.post('/x', async (req, res) => {
        const outcome = await guard.fail(req).then(
          (r) => r.outcome,
          (error: { code: string; message: string }) => `${error.code}: ${error.message}`,
        );
        res.send(outcome);
      });
    });
    expect((await send(port, { method: 'POST', path: '/x', from: A })).body).toBe(
      "PC_ERR_UNKNOWN_JAIL: fail(): several jails could take this report (a, b); name one: fail(req, 'jail')",
    );
  });
});

describe('express access log', () => {
  it('writes served and refused exchanges in combined format, with the judged client', async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const express = (await import('express')).default;
    const { createGuard } = await import('../../src/index.js');
    const { portcullis, createAccessLog } = await import('../../src/surfaces/express/index.js');
    const { request } = await import('node:http');
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-express-log-'));
    const guard = await createGuard(
      { store: { memory: true }, defaults: { ignoreip: [], ignoreself: false }, jails: {} },
      { env: {} },
    );
    const accessLog = await createAccessLog({ path: join(dir, 'access.log'), format: 'combined' });
    const app = express();
    app.use(portcullis(guard, { accessLog }));
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as { port: number }).port;
    const get = (from: string) =>
      new Promise<number>((resolve, reject) => {
        request({ port, host: '127.0.0.1', path: '/', localAddress: from }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
          .on('error', reject)
          .end();
      });
    try {
      await guard.ban('127.0.0.5');
      expect(await get('127.0.0.4')).toBe(200);
      expect(await get('127.0.0.5')).toBe(403);
      await waitFor(() => accessLog.stats.lines >= 2, { timeoutMs: 5_000, message: 'two access log lines' });
      await accessLog.flush();
      const lines = readFileSync(join(dir, 'access.log'), 'utf8').trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^127\.0\.0\.4 - - \[.*\] "GET \/ HTTP\/1\.1" 200 /);
      expect(lines[1]).toMatch(/^127\.0\.0\.5 - - \[.*\] "GET \/ HTTP\/1\.1" 403 /);
    } finally {
      server.close();
      await accessLog.close();
      await guard.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
