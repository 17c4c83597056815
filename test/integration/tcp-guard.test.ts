import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, createServer as createTlsServer } from 'node:tls';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeProxyV1, encodeProxyV2 } from '../../src/sources/socket/proxy-protocol.js';
import { type RedisServerHandle, startRedis, uniquePrefix } from '../helpers/redis-server.js';
import {
  A,
  B,
  cleanups,
  echo,
  exchange,
  hold,
  LB,
  listenerTo,
  recordingLogger,
  runCleanups,
  startGuard,
  startTcpGuard,
  startUpstream,
} from '../helpers/tcp.js';
import { waitFor } from '../helpers/wait-for.js';

afterEach(runCleanups);

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('TCP guard: forwarding', () => {
  it('forwards 50 MB both ways byte-exact through the guard to an echo server, half-close included', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({ tcp: listenerTo(upstream) });
    const tcp = await startTcpGuard(guard);
    const payload = randomBytes(50 * 1024 * 1024);
    const result = await exchange(
      tcp.port,
      (socket) => {
        // Written in pieces as the socket drains: the guard's backpressure is what paces it.
        let offset = 0;
        const step = 1024 * 1024;
        const pump = () => {
          while (offset < payload.length) {
            const chunk = payload.subarray(offset, offset + step);
            offset += step;
            if (!socket.write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
          socket.end(); // half-close: the echo still answers, then ends its side
        };
        pump();
      },
      { timeoutMs: 60_000 },
    );
    expect(result.end).toBe('closed');
    expect(result.data.length).toBe(payload.length);
    expect(sha(result.data)).toBe(sha(payload));
    await waitFor(() => tcp.stats().active === 0, { message: 'the connection to be over' });
    const stats = tcp.stats();
    expect(stats).toMatchObject({ accepted: 1, active: 0, refusedBanned: 0, upstreamErrors: 0 });
    expect(stats.bytesIn).toBe(payload.length);
    expect(stats.bytesOut).toBe(payload.length);
  }, 90_000);

  it('carries a real redis-server session: a 50 MB value written and read back byte-exact', async () => {
    let redis: RedisServerHandle | undefined = await startRedis();
    cleanups.push(() => redis?.stop());
    const guard = await startGuard({ tcp: listenerTo(redis) });
    const tcp = await startTcpGuard(guard);
    const client = new Redis({
      port: tcp.port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    cleanups.push(() => {
      client.disconnect();
    });
    await client.connect();
    const key = `${uniquePrefix('tcp')}blob`;
    const value = randomBytes(50 * 1024 * 1024);
    expect(await client.set(key, value)).toBe('OK');
    const back = await client.getBuffer(key);
    expect(back?.length).toBe(value.length);
    expect(sha(back as Buffer)).toBe(sha(value));
    expect(await client.del(key)).toBe(1);
    await client.quit();
    await redis.stop();
    redis = undefined;
  }, 90_000);

  it('passes a half-close either way: the client ends first, or the upstream does', async () => {
    // Client first: the upstream answers only after the client's FIN.
    const late = await startUpstream({
      handler: (socket) => {
        const got: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => got.push(chunk));
        socket.once('end', () => socket.end(`got ${Buffer.concat(got).toString()}`));
      },
    });
    // Upstream first: it says hello and ends its side, then still reads what the client sends.
    let received: string | undefined;
    const early = await startUpstream({
      handler: (socket) => {
        socket.end('hello\n');
        const got: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => got.push(chunk));
        socket.once('end', () => {
          received = Buffer.concat(got).toString();
        });
      },
    });
    const guard = await startGuard({
      tcp: {
        late: { listen: '127.0.0.1:0', target: `127.0.0.1:${late.port}` },
        early: { listen: '127.0.0.1:0', target: `127.0.0.1:${early.port}` },
      },
    });
    const first = await startTcpGuard(guard, 'late');
    const second = await startTcpGuard(guard, 'early');
    expect((await echo(first.port, 'ping')).data.toString()).toBe('got ping');
    const result = await exchange(second.port, (socket) => {
      socket.once('end', () => socket.end('after your FIN')); // the client writes on after the upstream ended
    });
    expect(result.data.toString()).toBe('hello\n');
    await waitFor(() => received !== undefined, { message: 'the upstream to read past its own FIN' });
    expect(received).toBe('after your FIN');
  });

  it('opens each upstream connection with a PROXY v1 or v2 header naming the real client', async () => {
    const upstream = await startUpstream({ proxyProtocol: true });
    const guard = await startGuard({
      tcp: {
        v1: { listen: '127.0.0.1:0', target: `127.0.0.1:${upstream.port}`, proxy_protocol_upstream: 'v1' },
        v2: { listen: '127.0.0.1:0', target: `127.0.0.1:${upstream.port}`, proxy_protocol_upstream: 'v2' },
      },
    });
    for (const [name, version] of [
      ['v1', 1],
      ['v2', 2],
    ] as const) {
      const tcp = await startTcpGuard(guard, name);
      let clientPort = 0;
      const result = await exchange(
        tcp.port,
        (socket) => {
          clientPort = socket.localPort ?? 0;
          socket.end('data after the header');
        },
        { from: A },
      );
      expect(result.data.toString()).toBe('data after the header');
      const seen = upstream.seen.at(-1);
      expect(seen?.peer).toBe('127.0.0.1'); // the TCP peer is the guard...
      expect(seen?.header).toMatchObject({
        version,
        command: 'proxy',
        transport: 'tcp4',
        sourceAddress: A, // ...the header names the client
        sourcePort: clientPort,
        destinationAddress: '127.0.0.1',
        destinationPort: tcp.port,
      });
    }
  });

  it('takes a PROXY header only from trusted_proxies, and passes the client it names on', async () => {
    const upstream = await startUpstream({ proxyProtocol: true });
    const guard = await startGuard({
      tcp: listenerTo(upstream, {
        proxy_protocol: true,
        trusted_proxies: [LB],
        proxy_protocol_upstream: 'v2',
      }),
    });
    const tcp = await startTcpGuard(guard);
    const named = await exchange(
      tcp.port,
      (socket) => {
        socket.write(encodeProxyV1('192.0.2.7', 40000, '198.51.100.1', 22));
        socket.end('hi');
      },
      { from: LB },
    );
    expect(named.data.toString()).toBe('hi');
    expect(upstream.seen.at(-1)?.header).toMatchObject({
      sourceAddress: '192.0.2.7',
      sourcePort: 40000,
      destinationAddress: '198.51.100.1',
      destinationPort: 22,
    });
    // The client a trusted balancer names is the one judged: banned, it is dropped at accept.
    await guard.ban('192.0.2.7');
    const dropped = await exchange(
      tcp.port,
      (socket) => {
        socket.write(encodeProxyV2('192.0.2.7', 40001, '198.51.100.1', 22));
        socket.end('hi');
      },
      { from: LB },
    );
    expect(dropped.data.length).toBe(0);
    // Anyone else sending a header is closed without being forwarded.
    const untrusted = await exchange(
      tcp.port,
      (socket) => {
        socket.write(encodeProxyV1('192.0.2.8', 40000, '198.51.100.1', 22));
        socket.end('hi');
      },
      { from: A },
    );
    expect(untrusted.data.length).toBe(0);
    expect(upstream.seen.length).toBe(1);
    expect(tcp.stats()).toMatchObject({ refusedBanned: 1, proxyProtocolErrors: 1 });
  });

  it('closes the client when the upstream is down, and counts it', async () => {
    const upstream = await startUpstream();
    const port = upstream.port;
    await upstream.close();
    const guard = await startGuard({
      tcp: { svc: { listen: '127.0.0.1:0', target: `127.0.0.1:${port}` } },
      jails: {
        down: {
          source: { socket: 'svc' },
          filter: { event: 'close', end: 'upstream-error' },
          maxretry: 1,
          dryrun: true,
        },
      },
    });
    const tcp = await startTcpGuard(guard);
    const result = await exchange(tcp.port, (socket) => socket.write('anyone there?'), { timeoutMs: 5_000 });
    expect(result.end).not.toBe('timeout');
    expect(result.elapsedMs).toBeLessThan(2_000);
    await waitFor(() => tcp.stats().active === 0, { message: 'the connection to be over' });
    await guard.idle();
    expect(tcp.stats()).toMatchObject({ upstreamErrors: 1, active: 0, failures: 1 });
  });

  it('closes a connection where nothing moves for idle_timeout (end: timeout)', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({
      tcp: listenerTo(upstream, { idle_timeout: '300ms' }),
      jails: { idle: { source: { socket: 'svc' }, filter: { event: 'close', end: 'timeout' }, maxretry: 1 } },
    });
    const tcp = await startTcpGuard(guard);
    const result = await exchange(tcp.port, (socket) => socket.write('x'), { timeoutMs: 5_000 });
    expect(result.data.toString()).toBe('x'); // echoed, then nothing for 300 ms
    expect(result.end).not.toBe('timeout');
    expect(result.elapsedMs).toBeGreaterThanOrEqual(250);
    await guard.idle();
    expect(tcp.stats().timeouts).toBe(1);
    expect(guard.isBanned(A)).toBe(true);
  });
});

describe('TCP guard: refusing', () => {
  it('drops a banned client at accept: the upstream sees no connection, others are served', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({ tcp: listenerTo(upstream) });
    const tcp = await startTcpGuard(guard);
    await guard.ban(A, { duration: '1h' });
    const refused = await exchange(tcp.port, (socket) => socket.write('let me in'), { from: A });
    expect(refused.data.length).toBe(0);
    expect(refused.end).toBe('reset');
    expect(upstream.seen.length).toBe(0);
    expect((await echo(tcp.port, 'hello', B)).data.toString()).toBe('hello');
    expect(upstream.seen.length).toBe(1);
    expect(tcp.stats()).toMatchObject({ accepted: 2, refusedBanned: 1 });
  });

  it('deny: drop closes a banned client with a FIN instead of a reset', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({ tcp: listenerTo(upstream, { deny: 'drop' }) });
    const tcp = await startTcpGuard(guard);
    await guard.ban(A);
    const refused = await exchange(tcp.port, () => {}, { from: A });
    expect(refused).toMatchObject({ end: 'closed' });
    expect(refused.data.length).toBe(0);
    expect(upstream.seen.length).toBe(0);
  });

  it('a ban made while connected closes that client’s live connections, not the others’', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({ tcp: listenerTo(upstream) });
    const tcp = await startTcpGuard(guard);
    const a1 = await hold(tcp.port, A);
    const a2 = await hold(tcp.port, A);
    const b = await hold(tcp.port, B);
    await waitFor(() => upstream.seen.length === 3, { message: 'three upstream connections' });
    await guard.ban(A);
    await Promise.all([a1.ended, a2.ended]);
    expect(b.destroyed).toBe(false);
    b.write('still here');
    await waitFor(() => tcp.stats().closedOnBan === 2, { message: 'two connections cut' });
    const echoed = await new Promise<string>((resolve) =>
      b.once('data', (chunk) => resolve(chunk.toString())),
    );
    expect(echoed).toBe('still here');
  });

  it('max_connections_per_ip refuses the connection over the cap (end: refused), other clients unaffected', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({
      tcp: listenerTo(upstream, { max_connections_per_ip: 2 }),
      jails: { hoard: { source: { socket: 'svc' }, filter: { end: 'refused' }, maxretry: 2 } },
    });
    const tcp = await startTcpGuard(guard);
    await hold(tcp.port, A);
    await hold(tcp.port, A);
    const third = await exchange(tcp.port, () => {}, { from: A });
    expect(third.data.length).toBe(0);
    expect(third.end).toBe('reset');
    expect((await echo(tcp.port, 'ok', B)).data.toString()).toBe('ok');
    await waitFor(() => tcp.stats().active === 2, { message: "B's connection to be over" });
    expect(tcp.stats()).toMatchObject({ refusedLimit: 1, active: 2 });
    expect(guard.isBanned(A)).toBe(false);
    await exchange(tcp.port, () => {}, { from: A });
    await guard.idle();
    expect(guard.isBanned(A)).toBe(true); // the second refusal reached maxretry 2
  });
});

describe('TCP guard: jails', () => {
  it('conn-flood: the connection that reaches maxretry is refused, and so is every one after; a second client is served', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({
      tcp: listenerTo(upstream),
      jails: { flood: { source: { socket: 'svc' }, filter: 'conn-flood', maxretry: 5 } },
    });
    const tcp = await startTcpGuard(guard);
    for (let i = 0; i < 4; i++) expect((await echo(tcp.port, `n${i}`, A)).data.toString()).toBe(`n${i}`);
    // Then eight at once: the count is synchronous, so none slips past the ban the 5th made.
    const results = await Promise.all(Array.from({ length: 8 }, () => echo(tcp.port, 'more', A)));
    expect(results.map((result) => result.data.length)).toEqual(Array(8).fill(0));
    expect(upstream.seen.length).toBe(4);
    expect(guard.isBanned(A)).toBe(true);
    expect((await echo(tcp.port, 'innocent', B)).data.toString()).toBe('innocent');
    const stats = tcp.stats();
    expect(stats.refusedBanned).toBe(8);
    // The rule's own settings apply below the jail's (maxretry 5 here).
    expect(guard.config.jails.find((jail) => jail.name === 'flood')).toMatchObject({
      maxRetry: 5,
      findTimeMs: 10_000,
      banTimeMs: 600_000,
    });
  });

  it('concurrency: opening past the cap bans, and the ban closes the connections held', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({
      tcp: listenerTo(upstream),
      jails: {
        hoard: { source: { socket: 'svc' }, filter: { event: 'open', concurrent: { gt: 3 } }, maxretry: 1 },
      },
    });
    const tcp = await startTcpGuard(guard);
    const held = [await hold(tcp.port, A), await hold(tcp.port, A), await hold(tcp.port, A)];
    const b = await hold(tcp.port, B);
    const fourth = await exchange(tcp.port, (socket) => socket.write('one more'), { from: A });
    expect(fourth.data.length).toBe(0);
    await Promise.all(held.map((socket) => socket.ended));
    expect(guard.isBanned(A)).toBe(true);
    expect(upstream.seen.length).toBe(4); // the three held and B's; the fourth never reached it
    expect(b.destroyed).toBe(false);
    expect(tcp.stats()).toMatchObject({ closedOnBan: 3, refusedBanned: 1 });
  });

  it('idle-connect: clients that connect and never talk are banned; one that talks is not', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({
      tcp: listenerTo(upstream),
      jails: { silent: { source: { socket: 'svc' }, filter: 'idle-connect', maxretry: 3 } },
    });
    const tcp = await startTcpGuard(guard);
    for (let i = 0; i < 3; i++) {
      const silent = await exchange(tcp.port, (socket) => socket.end(), { from: A });
      expect(silent.end).toBe('closed');
      await waitFor(() => tcp.stats().active === 0, { message: 'the connection to be over' });
      expect((await echo(tcp.port, 'talking', B)).data.toString()).toBe('talking');
    }
    await guard.idle();
    expect(guard.isBanned(A)).toBe(true);
    expect(guard.isBanned(B)).toBe(false);
    const after = await exchange(tcp.port, () => {}, { from: A });
    expect(after.end).toBe('reset');
  });

  it('dry-run: logs "would ban" with the events that counted, and keeps serving the client', async () => {
    const logger = recordingLogger();
    const upstream = await startUpstream();
    const guard = await startGuard(
      {
        tcp: listenerTo(upstream),
        jails: {
          trial: {
            source: { socket: 'svc' },
            filter: { event: 'close', bytes_in: { lt: 10 } },
            maxretry: 3,
            dryrun: true,
          },
        },
      },
      logger,
    );
    const tcp = await startTcpGuard(guard);
    for (const text of ['a', 'bb', 'ccc']) {
      expect((await echo(tcp.port, text, A)).data.toString()).toBe(text);
      await waitFor(() => tcp.stats().active === 0, { message: 'the connection to be over' });
    }
    await guard.idle();
    expect(guard.isBanned(A)).toBe(false);
    expect((await echo(tcp.port, 'still served', A)).data.toString()).toBe('still served');
    const line = logger.lines.find(
      (entry) => entry.fields.event === 'would-ban' && entry.fields.source === 'tcp:svc',
    );
    expect(line?.message).toMatch(
      /^would ban 127\.0\.0\.2 \(dry run, jail trial\): 3 matching connection events on tcp:svc$/,
    );
    const evidence = line?.fields.evidence as Record<string, unknown>[];
    expect(evidence.map((item) => item.bytes_in)).toEqual([1, 2, 3]);
    expect(evidence[0]).toMatchObject({ event: 'close', end: 'client-close', bytes_out: 1, concurrent: 1 });
    expect(evidence[0]?.duration).toMatch(/^\d+ms$/);
  });

  it('sni: reads the ClientHello server name without terminating TLS; a jail on it refuses before the upstream', async () => {
    const fixtures = new URL('../fixtures/tls/', import.meta.url);
    const tlsServer = createTlsServer({
      cert: readFileSync(new URL('one-cert.pem', fixtures)),
      key: readFileSync(new URL('one-key.pem', fixtures)),
    });
    let upstreamConnections = 0;
    tlsServer.on('connection', () => upstreamConnections++);
    tlsServer.on('secureConnection', (socket) => {
      socket.on('error', () => {});
      socket.end(`hello ${(socket as unknown as { servername: string }).servername}`);
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => tlsServer.close(() => resolve())));
    const port = (tlsServer.address() as { port: number }).port;
    const guard = await startGuard({
      tcp: { svc: { listen: '127.0.0.1:0', target: `127.0.0.1:${port}`, sni: true } },
      jails: {
        names: { source: { socket: 'svc' }, filter: { event: 'open', sni: '^bad\\.example$' }, maxretry: 1 },
      },
    });
    const tcp = await startTcpGuard(guard);
    const talk = (servername: string, from: string) =>
      new Promise<string>((resolve) => {
        const socket = connectTls({
          socket: connectTcp({ port: tcp.port, host: '127.0.0.1', localAddress: from }),
          servername,
          rejectUnauthorized: false,
        });
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        socket.on('error', () => resolve(`error:${text}`));
        socket.on('close', () => resolve(text));
      });
    // Passed through untouched (the upstream sees the name as sent); the jail sees it lower-cased.
    expect(await talk('Good.Example', B)).toBe('hello Good.Example');
    expect(await talk('BAD.example', A)).toMatch(/^error:/);
    expect(guard.isBanned(A)).toBe(true);
    expect(upstreamConnections).toBe(1);
  });
});

describe('TCP guard: lifecycle', () => {
  it('close() ends live connections and releases every socket; reports already made reach the guard', async () => {
    const upstream = await startUpstream();
    const guard = await startGuard({
      tcp: listenerTo(upstream),
      jails: { all: { source: { socket: 'svc' }, filter: { event: 'open' }, maxretry: 100 } },
    });
    const tcp = await startTcpGuard(guard);
    const sockets: Socket[] = [];
    for (let i = 0; i < 5; i++) sockets.push(await hold(tcp.port, i % 2 === 0 ? A : B));
    await waitFor(() => upstream.seen.length === 5, { message: 'five upstream connections' });
    await tcp.close();
    await tcp.close(); // idempotent
    expect(tcp.stats()).toMatchObject({ active: 0, failures: 5 });
    await Promise.all(sockets.map((socket) => (socket as Socket & { ended: Promise<string> }).ended));
    await waitFor(() => upstream.seen.every((seen) => seen.socket.destroyed), {
      message: 'upstream sides closed',
    });
    const refused = await new Promise<string>((resolve) => {
      const socket = connectTcp({ port: tcp.port, host: '127.0.0.1' });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      socket.on('connect', () => {
        socket.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
