import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { type AdminFixture, startAdminFixture } from '../helpers/admin.js';
import { send } from '../helpers/http-client.js';
import { waitFor } from '../helpers/wait-for.js';

const JAILS = {
  defaults: { ignoreip: [], ignoreself: false },
  jails: {
    'web-auth': { source: 'http' as const, filter: { status: [401] }, maxretry: 3, bantime: '1h' },
    api: { source: 'api' as const, maxretry: 2 },
  },
};

let fixture: AdminFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function start(options: Parameters<typeof startAdminFixture>[0] = {}): Promise<AdminFixture> {
  fixture = await startAdminFixture({ config: JAILS, ...options });
  return fixture;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field in the assertions.
const body = (reply: { body: string }) => JSON.parse(reply.body) as Record<string, any>;

/** Opens `/v1/events` and collects its frames until `close()`. */
function openStream(
  port: number,
  token: string,
  query = '',
): Promise<{ res: IncomingMessage; text: () => string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: `/v1/events${query}`,
        headers: { authorization: `Bearer ${token}` },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('error', () => {});
        resolve({ res, text: () => text, close: () => req.destroy() });
      },
    );
    req.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(error);
    });
    req.end();
  });
}

describe('admin API: authentication', () => {
  const PROTECTED: [string, string, unknown?][] = [
    ['GET', '/v1/status'],
    ['GET', '/v1/jails/web-auth'],
    ['GET', '/v1/decisions'],
    ['POST', '/v1/decisions', { target: '192.0.2.50' }],
    ['DELETE', '/v1/decisions/192.0.2.50'],
    ['DELETE', '/v1/decisions?target=192.0.2.51'],
    ['GET', '/v1/openapi.json'],
    ['GET', '/metrics'],
  ];

  it('refuses every endpoint but health without the token (401) and with a wrong one (401), serves it with the right one', async () => {
    const f = await start({ admin: { auth_failures: { maxretry: 1000 } } });
    await f.guard.ban('192.0.2.51');
    for (const [method, path, json] of PROTECTED) {
      const none = await f.call(path, { method, token: null, ...(json === undefined ? {} : { json }) });
      expect(none.status, `${method} ${path} without token`).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer realm="portcullis"/);
      expect(body(none).error.code).toBe('unauthorized');
      const wrong = await f.call(path, {
        method,
        token: `${f.token.slice(0, -1)}x`,
        ...(json === undefined ? {} : { json }),
      });
      expect(wrong.status, `${method} ${path} with a wrong token`).toBe(401);
      expect(body(wrong).error.code).toBe('bad_token');
      const right = await f.call(path, { method, ...(json === undefined ? {} : { json }) });
      expect(right.status, `${method} ${path} with the token: ${right.body}`).toBeLessThan(300);
    }
    // The event stream too.
    for (const token of [null, 'not-the-token-at-all']) {
      const reply = await send(f.port, {
        path: '/v1/events',
        headers: token === null ? {} : { authorization: `Bearer ${token}` },
      });
      expect(reply.status).toBe(401);
    }
    const stream = await openStream(f.port, f.token);
    expect(stream.res.statusCode).toBe(200);
    expect(stream.res.headers['content-type']).toMatch(/^text\/event-stream/);
    stream.close();
    // Other schemes and a token that is only a prefix of the right one are wrong too.
    expect(
      (await f.call('/v1/status', { token: null, headers: { authorization: `Basic ${f.token}` } })).status,
    ).toBe(401);
    expect((await f.call('/v1/status', { token: f.token.slice(0, 16) })).status).toBe(401);
    expect((await f.call('/v1/status', { token: `${f.token}0` })).status).toBe(401);
  });

  it('answers the health checks without a token', async () => {
    const f = await start();
    const health = await f.call('/healthz', { token: null });
    expect(health.status).toBe(200);
    expect(body(health)).toEqual({ status: 'ok' });
    const ready = await f.call('/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(body(ready)).toMatchObject({ ready: true, store: { kind: 'memory', available: true } });
  });

  it('refuses a client after 20 wrong tokens, even with the right token; another address is not refused', async () => {
    const f = await start();
    const attacker = '127.0.0.2';
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const guess = `${i.toString(16).padStart(4, '0')}${'0'.repeat(44)}`;
      statuses.push((await f.call('/v1/status', { token: guess, from: attacker })).status);
    }
    // Ten guesses are answered 401; from then on the address is refused outright.
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array(10).fill(429));
    const refused = await f.call('/v1/status', { from: attacker });
    expect(refused.status).toBe(429);
    expect(body(refused).error.code).toBe('too_many_auth_failures');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(500);
    // Nor can it ban through the API with the right token.
    expect(
      (await f.call('/v1/decisions', { method: 'POST', json: { target: '192.0.2.9' }, from: attacker }))
        .status,
    ).toBe(429);
    expect(f.guard.isBanned('192.0.2.9')).toBe(false);
    // Another client is served; health checks stay open to the refused one.
    expect((await f.call('/v1/status', { from: '127.0.0.3' })).status).toBe(200);
    expect((await f.call('/healthz', { token: null, from: attacker })).status).toBe(200);
    expect(f.admin.server.stats).toMatchObject({ authFailures: 10, authBlocks: 1, authBlockedNow: 1 });
  });
});

describe('admin API: authentication behind a trusted proxy', () => {
  it('charges wrong tokens to the trusted peer too: invented X-Forwarded-For addresses do not buy more guesses', async () => {
    // Trusting loopback lets any local process name its own client address.
    const f = await start({ admin: { trusted_proxies: ['127.0.0.1'], auth_failures: { maxretry: 3 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const reply = await f.call('/v1/status', {
        token: `guess-${i}-${'x'.repeat(20)}`,
        from: '127.0.0.1',
        headers: { 'x-forwarded-for': `203.0.113.${i}` },
      });
      statuses.push(reply.status);
    }
    // Every invented client is below its own limit (one guess each), but the peer's budget is 10 x 3.
    expect(statuses.slice(0, 30)).toEqual(Array(30).fill(401));
    expect(statuses.slice(30)).toEqual(Array(10).fill(429));
    // Nothing more through that peer, whatever it claims, until the bantime ends.
    const claimed = await f.call('/v1/status', {
      from: '127.0.0.1',
      headers: { 'x-forwarded-for': '198.51.100.9' },
    });
    expect(claimed.status).toBe(429);
    expect(body(claimed).error.code).toBe('too_many_auth_failures');
    // A forwarded client that was never named is fine through a peer that is not refused.
    expect((await f.call('/v1/status', { from: '127.0.0.3' })).status).toBe(200);
    expect(f.admin.server.stats.authFailures).toBe(30);
  });

  it('still counts a forwarded client on its own: its maxretry applies below the peer budget', async () => {
    const f = await start({ admin: { trusted_proxies: ['127.0.0.1'], auth_failures: { maxretry: 3 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await f.call('/v1/status', {
        token: `guess-${i}-${'x'.repeat(20)}`,
        from: '127.0.0.1',
        headers: { 'x-forwarded-for': '203.0.113.77' },
      });
      statuses.push(reply.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Another client behind the same proxy is served.
    const other = await f.call('/v1/status', {
      from: '127.0.0.1',
      headers: { 'x-forwarded-for': '203.0.113.78' },
    });
    expect(other.status).toBe(200);
  });
});

describe('admin API: decisions', () => {
  it('bans with POST, lists and filters with GET, unbans with DELETE', async () => {
    const f = await start();
    const created = await f.call('/v1/decisions', {
      method: 'POST',
      json: { target: '192.0.2.7', bantime: '2h', reason: 'seen on the honeypot' },
    });
    expect(created.status).toBe(201);
    expect(body(created)).toMatchObject({
      target: '192.0.2.7',
      jail: 'manual',
      reason: 'seen on the honeypot',
    });
    expect(body(created).expiresAt - body(created).startedAt).toBe(7_200_000);
    expect(f.guard.isBanned('192.0.2.7')).toBe(true);
    const jailBan = await f.call('/v1/decisions', {
      method: 'POST',
      json: { target: '198.51.100.0/24', jail: 'web-auth' },
    });
    expect(jailBan.status).toBe(201);
    expect(body(jailBan)).toMatchObject({ target: '198.51.100.0/24', jail: 'web-auth' });

    const all = body(await f.call('/v1/decisions'));
    expect(all.count).toBe(2);
    expect(all.decisions.map((d: { target: string }) => d.target).sort()).toEqual([
      '192.0.2.7',
      '198.51.100.0/24',
    ]);
    const byJail = body(await f.call('/v1/decisions?jail=web-auth'));
    expect(byJail.decisions.map((d: { target: string }) => d.target)).toEqual(['198.51.100.0/24']);
    const byIp = body(await f.call('/v1/decisions?ip=198.51.100.77'));
    expect(byIp.decisions.map((d: { target: string }) => d.target)).toEqual(['198.51.100.0/24']);
    expect(body(await f.call('/v1/decisions?limit=1')).count).toBe(1);

    const jail = body(await f.call('/v1/jails/web-auth'));
    expect(jail).toMatchObject({ name: 'web-auth', currentlyBanned: 1, maxretry: 3 });
    expect(jail.bans.map((d: { target: string }) => d.target)).toEqual(['198.51.100.0/24']);

    const lifted = await f.call('/v1/decisions/192.0.2.7', { method: 'DELETE' });
    expect(lifted.status).toBe(200);
    expect(body(lifted)).toEqual({ target: '192.0.2.7', unbanned: 1 });
    expect(f.guard.isBanned('192.0.2.7')).toBe(false);
    const again = await f.call('/v1/decisions/192.0.2.7', { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(body(again).error.code).toBe('not_banned');
    // A network, percent-encoded in the path, or as ?target=.
    expect((await f.call('/v1/decisions/198.51.100.0%2F24?jail=api', { method: 'DELETE' })).status).toBe(404);
    expect(
      (await f.call('/v1/decisions?target=198.51.100.0%2F24&jail=web-auth', { method: 'DELETE' })).status,
    ).toBe(200);
    expect(f.guard.isBanned('198.51.100.77')).toBe(false);
    expect(body(await f.call('/v1/decisions')).count).toBe(0);
  });

  it('answers bad requests with the right status and a JSON error code', async () => {
    const f = await start({ server: { maxBodyBytes: 1024 } });
    const cases: [string, Parameters<AdminFixture['call']>[1], number, string][] = [
      ['/nowhere', {}, 404, 'not_found'],
      ['/v1/jails/nope', {}, 404, 'unknown_jail'],
      ['/v1/status', { method: 'PUT' }, 405, 'method_not_allowed'],
      ['/v1/decisions', { method: 'PATCH' }, 405, 'method_not_allowed'],
      [
        '/v1/decisions',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"target": ' },
        400,
        'bad_json',
      ],
      [
        '/v1/decisions',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' },
        400,
        'bad_json',
      ],
      ['/v1/decisions', { method: 'POST', json: ['192.0.2.1'] }, 400, 'bad_request'],
      ['/v1/decisions', { method: 'POST', json: { target: 'not-an-ip' } }, 400, 'bad_target'],
      ['/v1/decisions', { method: 'POST', json: { target: '192.0.2.300' } }, 400, 'bad_target'],
      ['/v1/decisions', { method: 'POST', json: {} }, 400, 'bad_target'],
      ['/v1/decisions', { method: 'POST', json: { target: '192.0.2.1', jail: 'nope' } }, 400, 'unknown_jail'],
      [
        '/v1/decisions',
        { method: 'POST', json: { target: '192.0.2.1', bantime: 'soon' } },
        400,
        'bad_request',
      ],
      ['/v1/decisions', { method: 'POST', json: { target: '192.0.2.1', banTime: '1h' } }, 400, 'bad_request'],
      [
        '/v1/decisions',
        { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"target":"192.0.2.1"}' },
        415,
        'unsupported_media_type',
      ],
      [
        '/v1/decisions',
        { method: 'POST', json: { target: '192.0.2.1', reason: 'x'.repeat(2000) } },
        413,
        'payload_too_large',
      ],
      ['/v1/decisions?ip=nope', {}, 400, 'bad_target'],
      ['/v1/decisions?limit=0', {}, 400, 'bad_request'],
      ['/v1/decisions?limit=ten', {}, 400, 'bad_request'],
      ['/v1/decisions/not-an-ip', { method: 'DELETE' }, 400, 'bad_target'],
      ['/v1/decisions', { method: 'DELETE' }, 400, 'bad_target'],
      ['/v1/events?types=ban,gossip', {}, 400, 'bad_request'],
    ];
    for (const [path, options, status, code] of cases) {
      const reply = await f.call(path, options);
      expect(reply.status, `${options?.method ?? 'GET'} ${path}: ${reply.body}`).toBe(status);
      expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(body(reply).error.code, path).toBe(code);
    }
    expect((await f.call('/v1/status', { method: 'PUT' })).headers.allow).toBe('GET');
    // Nothing was banned by any of them.
    expect(f.guard.stats.activeBans).toBe(0);
  });

  it('closes an oversized upload without reading it (413 from Content-Length)', async () => {
    const f = await start({ server: { maxBodyBytes: 1024 } });
    const reply = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const socket: Socket = connect(f.port, '127.0.0.1');
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
      });
      socket.on('error', reject);
      socket.on('close', () => resolve({ status: Number(text.split(' ')[1]), text }));
      socket.write(
        `POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${f.token}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"target":`,
      );
    });
    expect(reply.status).toBe(413);
    expect(reply.text).toMatch(/payload_too_large/);
  });
});

describe('admin API: event stream', () => {
  it('delivers a ban within 100 ms, and failures and unbans', async () => {
    const f = await start();
    const stream = await openStream(f.port, f.token);
    await waitFor(() => stream.text().includes('portcullis events'), { message: 'the stream to open' });
    const t0 = performance.now();
    const ban = f.guard.ban('203.0.113.5', { jail: 'web-auth', reason: 'test' });
    await waitFor(() => stream.text().includes('"target":"203.0.113.5"'), { intervalMs: 1, timeoutMs: 2000 });
    const elapsed = performance.now() - t0;
    await ban;
    expect(elapsed).toBeLessThan(100);
    expect(stream.text()).toMatch(/event: ban\ndata: \{"type":"ban"/);
    await f.guard.report('192.0.2.44', { jail: 'api' });
    await waitFor(() => stream.text().includes('event: failure'));
    expect(stream.text()).toMatch(
      /"type":"failure","time":\d+,"jail":"api","ip":"192\.0\.2\.44","failures":1,"maxretry":2/,
    );
    await f.call('/v1/decisions/203.0.113.5', { method: 'DELETE' });
    await waitFor(() => stream.text().includes('event: unban'));
    stream.close();
  });

  it('filters by type and sends heartbeats', async () => {
    const f = await start({ server: { heartbeatMs: 30 } });
    const stream = await openStream(f.port, f.token, '?types=unban');
    await waitFor(() => stream.text().includes(': heartbeat'), { timeoutMs: 2000 });
    await f.guard.ban('203.0.113.6');
    await f.guard.unban('203.0.113.6');
    await waitFor(() => stream.text().includes('event: unban'));
    expect(stream.text()).not.toContain('event: ban');
    stream.close();
  });

  it('drops a client that does not read instead of buffering for it', async () => {
    const f = await start({ server: { sseMaxBufferBytes: 64 * 1024, sseSlowClientMs: 200 } });
    // A raw client that sends the request and then never reads.
    const socket = connect(f.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.pause();
    socket.write(`GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${f.token}\r\n\r\n`);
    await waitFor(() => f.admin.server.stats.events.clients === 1);
    // A client that reads, connected at the same time, keeps its stream.
    const reader = await openStream(f.port, f.token);
    await waitFor(() => f.admin.server.stats.events.clients === 2);
    const reason = 'r'.repeat(4000);
    let i = 0;
    // Each ban is a ~4 KB frame, ten per turn of the event loop (a reader keeps up with that);
    // the kernel's socket buffers fill first, then the server's.
    while (f.admin.server.stats.events.dropped === 0 && i < 20_000) {
      for (let j = 0; j < 10; j++, i++)
        await f.guard.ban(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { reason });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(f.admin.server.stats.events).toMatchObject({ dropped: 1, clients: 1 });
    // Enough for the slow one to pass its bound, and the reader got every frame.
    expect(i).toBeGreaterThan(10);
    await waitFor(() => (reader.text().match(/event: ban/g) ?? []).length === i);
    reader.close();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => {});
    socket.resume();
    await closed;
  });

  it('refuses more streams than allowed with 503', async () => {
    const f = await start({ server: { sseMaxClients: 2 } });
    const a = await openStream(f.port, f.token);
    const b = await openStream(f.port, f.token);
    const third = await f.call('/v1/events');
    expect(third.status).toBe(503);
    expect(body(third).error.code).toBe('too_many_streams');
    a.close();
    b.close();
  });
});

describe('admin API: OpenAPI document', () => {
  it('is OpenAPI 3.1 JSON naming every path the server answers, and every path in it is answered', async () => {
    const f = await start();
    const reply = await f.call('/v1/openapi.json');
    expect(reply.status).toBe(200);
    const doc = JSON.parse(reply.body) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    const served = [
      '/',
      '/healthz',
      '/readyz',
      '/metrics',
      '/v1/status',
      '/v1/jails/{name}',
      '/v1/decisions',
      '/v1/decisions/{target}',
      '/v1/events',
      '/v1/openapi.json',
    ];
    expect(Object.keys(doc.paths).sort()).toEqual([...served].sort());
    await f.guard.ban('192.0.2.1');
    await f.guard.ban('192.0.2.2');
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const method of Object.keys(operations)) {
        const concrete = path.replace('{name}', 'web-auth').replace('{target}', '192.0.2.1');
        const query = method === 'delete' && path === '/v1/decisions' ? '?target=192.0.2.2' : '';
        if (path === '/v1/events') {
          const stream = await openStream(f.port, f.token);
          expect(stream.res.statusCode).toBe(200);
          stream.close();
          continue;
        }
        const answer = await f.call(concrete + query, {
          method: method.toUpperCase(),
          ...(method === 'post' ? { json: { target: '192.0.2.3' } } : {}),
        });
        expect(answer.status, `${method} ${concrete}`).toBeLessThan(300);
      }
    }
    // Every $ref resolves.
    const text = JSON.stringify(doc);
    const components = (doc as unknown as { components: { schemas: Record<string, unknown> } }).components
      .schemas;
    for (const match of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g))
      expect(components[match[1] as string], match[1]).toBeDefined();
  });
});

/** Reloads the fixture's guard with these `admin:` settings and token (what SIGHUP does). */
function reloadAdmin(f: AdminFixture, token: string, admin: Record<string, unknown> = {}): void {
  f.guard.reload(
    resolveConfig(
      {
        ...JAILS,
        store: { memory: true },
        admin: { listen: '127.0.0.1:0', token_env: 'PC_ADMIN_NEXT', process_metrics: false, ...admin },
      },
      { env: { PC_ADMIN_NEXT: token } },
    ),
  );
}

const ended = (res: IncomingMessage) =>
  new Promise<void>((resolve) => {
    if (res.complete || res.destroyed) resolve();
    res.once('end', () => resolve());
    res.once('close', () => resolve());
  });

describe('admin API: token rotation', () => {
  it('a reload that replaces the token ends the streams opened with the old one; an unchanged token keeps them', async () => {
    const f = await start();
    const stream = await openStream(f.port, f.token);
    // Same token, new config object: the stream stays.
    reloadAdmin(f, f.token);
    expect((await f.call('/healthz', { token: null })).status).toBe(200);
    expect(f.admin.server.stats.events.clients).toBe(1);
    const next = 'b'.repeat(40);
    reloadAdmin(f, next);
    // The next request to the listener, of anyone, ends it.
    expect((await f.call('/healthz', { token: null })).status).toBe(200);
    await ended(stream.res);
    expect(f.admin.server.stats.events).toMatchObject({ clients: 0, ended: 1 });
    expect((await f.call('/v1/events')).status).toBe(401);
    const fresh = await openStream(f.port, next);
    expect(fresh.res.statusCode).toBe(200);
    fresh.close();
  });

  it('without any request, the heartbeat ends a stream whose token was replaced', async () => {
    const f = await start({ server: { heartbeatMs: 50 } });
    const stream = await openStream(f.port, f.token);
    reloadAdmin(f, 'c'.repeat(40));
    await ended(stream.res);
    expect(f.admin.server.stats.events.clients).toBe(0);
  });
});

describe('admin API: Host header (DNS rebinding)', () => {
  it('answers only to its own loopback names and port; refuses another Host with 421', async () => {
    const f = await start();
    for (const host of [
      `127.0.0.1:${f.port}`,
      `localhost:${f.port}`,
      `[::1]:${f.port}`,
      'localhost',
      '127.0.0.1',
    ])
      expect((await f.call('/v1/status', { headers: { host } })).status, host).toBe(200);
    for (const host of [
      `evil.example:${f.port}`,
      'evil.example',
      `127.0.0.1:${f.port + 1}`,
      `127.0.0.1.evil.example:${f.port}`,
    ]) {
      const reply = await f.call('/v1/status', { headers: { host } });
      expect(reply.status, host).toBe(421);
      expect(body(reply).error.code).toBe('misdirected_request');
      // The dashboard page and the health checks too: a rebinding page learns nothing.
      expect((await f.call('/', { token: null, headers: { host } })).status, host).toBe(421);
    }
  });

  it('takes any Host with allow_remote (a TLS proxy in front names it)', async () => {
    const f = await start({ admin: { allow_remote: true } });
    expect((await f.call('/v1/status', { headers: { host: 'admin.example.org' } })).status).toBe(200);
  });
});

describe('admin API: event stream bounds', () => {
  it('refuses HEAD on /v1/events (405) without taking a stream slot; HEAD elsewhere is GET without body', async () => {
    const f = await start({ server: { sseMaxClients: 1 } });
    for (let i = 0; i < 3; i++) {
      const head = await f.call('/v1/events', { method: 'HEAD' });
      expect(head.status).toBe(405);
      expect(head.headers.allow).toBe('GET');
    }
    expect(f.admin.server.stats.events.clients).toBe(0);
    const stream = await openStream(f.port, f.token);
    expect(stream.res.statusCode).toBe(200);
    stream.close();
    const head = await f.call('/v1/status', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('ends a stream at its lifetime (the client reconnects)', async () => {
    const f = await start({ server: { heartbeatMs: 50, sseMaxLifetimeMs: 300 } });
    const stream = await openStream(f.port, f.token);
    const opened = Date.now();
    await ended(stream.res);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(250);
    expect(f.admin.server.stats.events).toMatchObject({ clients: 0, ended: 1 });
  });

  it('drops a client that stopped reading below the buffer bounds once its bytes sit undrained', async () => {
    // Buffer bounds far away: only the stall bound can end it.
    const f = await start({
      server: { heartbeatMs: 50, sseStallMs: 400, sseMaxBufferBytes: 256 << 20, sseSlowClientMs: 60_000 },
    });
    const socket = connect(f.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.pause();
    socket.write(`GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${f.token}\r\n\r\n`);
    await waitFor(() => f.admin.server.stats.events.clients === 1);
    // Enough ~16 KB frames to fill the kernel's socket buffers, so bytes wait in the server.
    const reason = 'r'.repeat(16_000);
    for (let i = 0; i < 1500 && f.admin.server.stats.events.dropped === 0; i++)
      await f.guard.ban(`10.9.${i >> 8}.${i & 255}`, { reason });
    await waitFor(() => f.admin.server.stats.events.dropped === 1, { timeoutMs: 5000 });
    expect(f.admin.server.stats.events.clients).toBe(0);
    socket.destroy();
  });
});

describe('admin API: OpenAPI matches the routes served', () => {
  it('lists the dashboard as fixed at start, whatever a reload says', async () => {
    const f = await start({ admin: { dashboard: false } });
    reloadAdmin(f, f.token, { dashboard: true });
    const doc = JSON.parse((await f.call('/v1/openapi.json')).body) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).not.toContain('/');
    expect((await f.call('/', { token: null })).status).toBe(404);
  });
});
