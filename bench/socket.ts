// npm run bench:socket (first half; bench/packets.ts runs after it) — the TCP guard side by side
// with a direct connection and a plain Node `net` pipe (the floor any Node forwarder pays), in
// one run, variants alternating, medians of ROUNDS rounds:
//  1. throughput: one connection downloads SIZE_MB from an upstream that writes as fast as it is
//     read, MB/s;
//  2. connection rate: CONCURRENCY clients in a loop, each connection sending 16 bytes, reading
//     the echo and closing, connections/s;
//  3. refusing: a banned client (wrk, 200 connections, reconnecting at once after each reset)
//     hammering a `deny: reset` listener: connections refused per second, read from the guard's
//     own `refusedBanned` counter.
// The forwarders run in child processes of their own (`--serve`), the upstream and the clients in
// this one; each forwarder's CPU time (utime + stime from /proc/<pid>/stat) is read around each
// measure, so its cost per MB, per connection and per refusal is known even when the clients are
// the limit (on a shared 2-core machine they often are). The guard runs with three counting jails
// (conn-flood, idle-connect, short-sessions; maxretry so high nothing bans, findtime 1 s) and
// 100k bans in its table, on a memory store. The connection-rate clients take turns over
// CLIENTS loopback addresses (127.0.1.x), as many clients would: one address would fill its
// ports with TIME_WAIT (bind() does not reuse them) and, counted at thousands of failures per
// window, measure the failure window's size rather than the guard.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatIPv4 } from '../src/core/ip.js';
import { createGuard } from '../src/index.js';
import { TcpGuard } from '../src/sources/socket/tcp-guard.js';
import { MemoryStore } from '../src/stores/memory/memory-store.js';
import { fmt, machineLine, median } from './machine.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SIZE_MB = Number(process.env.SIZE_MB ?? 200);
const SECONDS = Number(process.env.SECONDS ?? 3);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 50);
const BANS = 100_000;
const CLIENTS = 100;
/** `guard-0` is the guard without jails; `refuse` the guard with the client (127.0.0.1) banned. */
const FORWARDERS = ['pipe', 'guard-0', 'guard', 'refuse'] as const;
const VARIANTS = ['direct', 'pipe', 'guard-0', 'guard'] as const;
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s
type Forwarder = (typeof FORWARDERS)[number];
type Variant = (typeof VARIANTS)[number];

if (process.argv[2] === '--serve') await serve(process.argv[3] as Forwarder, Number(process.argv[4]));
else await main();

/**
 * A forwarder in this (child) process, to 127.0.0.1:`upstreamPort`. Prints its port, then one
 * line of stats for each line read on stdin; stops when stdin ends.
 */
async function serve(kind: Forwarder, upstreamPort: number): Promise<void> {
  let port: number;
  let stop: () => Promise<void>;
  let stats: () => object = () => ({});
  if (kind === 'pipe') {
    // The plain Node forwarder: accept, connect, pipe both ways.
    const server = createServer({ allowHalfOpen: true }, (client) => {
      const upstream = connect({ port: upstreamPort, host: '127.0.0.1', allowHalfOpen: true });
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as AddressInfo).port;
    stop = () => new Promise((resolve) => server.close(() => resolve()));
  } else {
    const rule = (filter: string) => ({ source: { socket: 'svc' }, filter, maxretry: 1_000_000_000 });
    const guard = await createGuard(
      {
        store: { memory: true },
        defaults: { ignoreip: [], ignoreself: false, findtime: '1s' },
        tcp: {
          svc: { listen: '127.0.0.1:0', target: `127.0.0.1:${upstreamPort}`, max_connections_per_ip: 0 },
        },
        jails:
          kind === 'guard-0'
            ? {}
            : { flood: rule('conn-flood'), silent: rule('idle-connect'), short: rule('short-sessions') },
      },
      { store: new MemoryStore(), env: {} },
    );
    for (let i = 0; i < BANS; i++) await guard.ban(formatIPv4(0x0a000000 + i), { duration: '1d' });
    if (kind === 'refuse') await guard.ban('127.0.0.1', { duration: '1d' });
    const tcp = new TcpGuard(guard, 'svc');
    await tcp.start();
    port = tcp.address?.port as number;
    stats = () => tcp.stats();
    stop = async () => {
      await tcp.close();
      await guard.close();
    };
  }
  process.stdout.write(`${port}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', () => process.stdout.write(`${JSON.stringify(stats())}\n`));
  lines.once('close', () => void stop().then(() => process.exit(0)));
}

interface Running {
  port: number;
  child: ChildProcess;
  /** The forwarder's counters (a line on its stdin, a JSON line back). */
  stats(): Promise<Record<string, number>>;
}

async function startForwarder(kind: Forwarder, upstreamPort: number): Promise<Running> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', kind, String(upstreamPort)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (text) => waiting.shift()?.(text));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`))),
  );
  exited.catch(() => {});
  const port = Number(await Promise.race([next(), exited]));
  return {
    port,
    child,
    async stats() {
      const answer = next();
      child.stdin?.write('stats\n');
      return JSON.parse(await answer) as Record<string, number>;
    },
  };
}

async function stopForwarder(running: Running): Promise<void> {
  const exited = new Promise((resolve) => running.child.once('exit', resolve));
  running.child.stdin?.end();
  await exited;
}

/** CPU seconds (user + system) `pid` has used. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Runs `work`; also returns the CPU seconds the forwarder used meanwhile (0 for none). */
async function withCpu<T>(running: Running | undefined, work: () => Promise<T>): Promise<[T, number]> {
  const pid = running?.child.pid;
  const before = cpuSeconds(pid);
  const result = await work();
  return [result, cpuSeconds(pid) - before];
}

/** An upstream: a connection whose first byte is `D` gets SIZE_MB and an end; others an echo. */
async function startUpstream(): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', (first: Buffer) => {
      if (first[0] !== 0x44 /* D */) {
        socket.write(first);
        socket.pipe(socket);
        return;
      }
      let left = SIZE_MB * 1024 * 1024;
      const pump = () => {
        while (left > 0) {
          left -= chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        socket.end();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** MB/s of one download of SIZE_MB through `port`. */
function download(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let bytes = 0;
    const socket = connect({ port, host: '127.0.0.1' });
    socket.on('connect', () => socket.write('D'));
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('error', reject);
    socket.on('end', () => {
      socket.end();
      const seconds = (performance.now() - started) / 1000;
      if (bytes !== SIZE_MB * 1024 * 1024) reject(new Error(`got ${bytes} bytes`));
      else resolve(bytes / 1024 / 1024 / seconds);
    });
  });
}

/** Connections/s for SECONDS: CONCURRENCY loops of connect (from CLIENTS addresses in turn), 16 bytes each way, close. */
async function connectionRate(port: number): Promise<{ perSecond: number; count: number }> {
  const deadline = performance.now() + SECONDS * 1000;
  let done = 0;
  let failed = 0;
  const payload = Buffer.alloc(16, 0x65);
  let turn = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const localAddress = `127.0.1.${1 + (turn++ % CLIENTS)}`;
      const socket = connect({ port, host: '127.0.0.1', localAddress });
      let got = 0;
      socket.on('connect', () => socket.write(payload));
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= payload.length) socket.end();
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        if (got >= payload.length) done++;
        else failed++;
        resolve();
      });
    });
  const loop = async () => {
    while (performance.now() < deadline) await one();
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  if (failed > done / 100) throw new Error(`${failed} connections failed (${done} ok)`);
  return { perSecond: done / ((performance.now() - started) / 1000), count: done };
}

/** Connections refused per second while wrk (127.0.0.1, banned) hammers, from the guard's counter. */
async function refusals(running: Running): Promise<{ perSecond: number; count: number }> {
  const before = (await running.stats()).refusedBanned ?? 0;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    execFile('wrk', ['-t1', '-c200', `-d${SECONDS}s`, `http://127.0.0.1:${running.port}/`], (error) =>
      error === null ? resolve() : reject(error),
    );
  });
  const seconds = (performance.now() - started) / 1000;
  const count = ((await running.stats()).refusedBanned ?? 0) - before;
  return { perSecond: count / seconds, count };
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(
    `TCP guard: ${ROUNDS} rounds; download ${SIZE_MB} MB; ${CONCURRENCY} concurrent clients for ${SECONDS} s; wrk -c200 for refusals; guard with 3 counting jails and ${fmt(BANS)} bans`,
  );
  const upstream = await startUpstream();
  const empty = (): Record<Variant, number[]> => ({ direct: [], pipe: [], 'guard-0': [], guard: [] });
  const throughput = empty();
  const rate = empty();
  /** Forwarder CPU ms per MB and µs per connection. */
  const cpuPerMb = empty();
  const cpuPerConnection = empty();
  const refused: number[] = [];
  const cpuPerRefusal: number[] = [];
  const forwarders = new Map<Forwarder, Running>();
  for (const kind of FORWARDERS) forwarders.set(kind, await startForwarder(kind, upstream.port));
  const runningOf = (variant: Variant) => (variant === 'direct' ? undefined : forwarders.get(variant));
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const running = runningOf(variant);
        const port = running?.port ?? upstream.port;
        const [mbs, downloadCpu] = await withCpu(running, () => download(port));
        throughput[variant].push(mbs);
        cpuPerMb[variant].push((downloadCpu * 1000) / SIZE_MB);
        const [connections, rateCpu] = await withCpu(running, () => connectionRate(port));
        rate[variant].push(connections.perSecond);
        cpuPerConnection[variant].push((rateCpu * 1e6) / connections.count);
      }
      const refuse = forwarders.get('refuse') as Running;
      const [result, refuseCpu] = await withCpu(refuse, () => refusals(refuse));
      refused.push(result.perSecond);
      cpuPerRefusal.push((refuseCpu * 1e6) / Math.max(1, result.count));
      const last = (values: number[]) => fmt(values.at(-1) ?? 0);
      console.log(
        `round ${round}: MB/s ${VARIANTS.map((v) => `${v} ${last(throughput[v])}`).join(', ')}; conn/s ${VARIANTS.map((v) => `${v} ${last(rate[v])}`).join(', ')}; refused/s ${last(refused)}`,
      );
    }
  } finally {
    for (const running of forwarders.values()) await stopForwarder(running);
    await upstream.close();
  }
  const m = (values: number[]) => median(values);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  console.log(
    '\n| variant | download MB/s | vs pipe | forwarder CPU ms/MB | connections/s | vs pipe | forwarder CPU µs/connection |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const variant of VARIANTS) {
    const cpu = (values: number[], digits: number) => (variant === 'direct' ? '—' : fmt(m(values), digits));
    console.log(
      `| ${variant} | ${fmt(m(throughput[variant]))} | ${ratio(m(throughput[variant]), m(throughput.pipe))} | ${cpu(cpuPerMb[variant], 2)} | ${fmt(m(rate[variant]))} | ${ratio(m(rate[variant]), m(rate.pipe))} | ${cpu(cpuPerConnection[variant], 0)} |`,
    );
  }
  const perRefusal = m(cpuPerRefusal);
  console.log(
    `\nbanned connections refused: ${fmt(m(refused))}/s (goal ≥ 20,000/s); guard CPU ${fmt(perRefusal, 1)} µs per refusal (${fmt(1e6 / perRefusal)} refusals/s per core)`,
  );
  console.log(
    `guard vs pipe: throughput ${ratio(m(throughput.guard), m(throughput.pipe))}, connections ${ratio(m(rate.guard), m(rate.pipe))} (goal ≥ 0.90×); CPU per MB ${ratio(m(cpuPerMb.guard), m(cpuPerMb.pipe))}, per connection ${ratio(m(cpuPerConnection.guard), m(cpuPerConnection.pipe))}`,
  );
}
