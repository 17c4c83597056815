// npm run bench:express — Express hello world, bare vs behind the portcullis middleware.
//   noop          an empty middleware: what any router layer costs, the floor to compare with;
//   bans          the guard with 100k bans and no jail: client address + synchronous ban check;
//   guarded       the same plus two observing jails (web-auth, scanners) judging every response;
//   guarded+rate  plus a rate jail (counted per request, never exceeded);
//   payload       guarded plus the four payload rules (sqli, xss, lfi, cmd-injection) judging
//                 every request's target and headers.
// Bans live in an in-memory SQLite store (outside the JS heap, as with the default store). Each
// server runs in a child process and autocannon in this one; variants alternate, ROUNDS runs each,
// medians compared. Server CPU time per request is printed beside req/s: on a shared 2-core
// machine it is the steadier of the two.
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import express from 'express';
import { formatIPv4 } from '../src/core/ip.js';
import { createGuard, type PortcullisOptions } from '../src/index.js';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.js';
import { portcullis } from '../src/surfaces/express/index.js';
import { fmt, machineLine, median } from './machine.js';

const VARIANTS = ['bare', 'noop', 'bans', 'guarded', 'guarded+rate', 'payload'] as const;
type Variant = (typeof VARIANTS)[number];
const BANS = 100_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION_S = Number(process.env.DURATION ?? 5);
const CONNECTIONS = 50;

if (process.argv[2] === '--serve') await serve(process.argv[3] as Variant);
else await main();

async function serve(variant: Variant): Promise<void> {
  const app = express();
  if (variant === 'noop') {
    // Any middleware costs a router layer: the floor the guard is measured against.
    app.use((_req, _res, next) => next());
  } else if (variant !== 'bare') {
    const jails: NonNullable<PortcullisOptions['jails']> = {};
    if (variant !== 'bans') {
      jails['web-auth'] = { source: 'http', filter: { status: [401, 403], path: '^/(login|api/session)' } };
      jails.scanners = { source: 'http', filter: 'scanners' };
    }
    // A rate no single client of the benchmark reaches: the cost of counting, not of refusing.
    if (variant === 'guarded+rate') jails.flood = { source: 'http', filter: 'flood', rate: '100000000/10s' };
    if (variant === 'payload') {
      for (const rule of ['sqli', 'xss', 'lfi', 'cmd-injection'])
        jails[rule] = { source: 'http', filter: rule };
    }
    const store = new SqliteStore({ path: ':memory:' });
    const guard = await createGuard({ jails }, { store, env: {} });
    let seed = 0x9e3779b9;
    for (let i = 0; i < BANS; i++) {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      // Never 127/8: the benchmark's own client must stay allowed.
      await guard.ban(formatIPv4(seed >>> 24 === 127 ? (seed ^ 0x01000000) >>> 0 : seed), { duration: '1h' });
    }
    if (guard.stats.activeBans < BANS * 0.99) throw new Error(`only ${guard.stats.activeBans} bans loaded`);
    app.use(portcullis(guard));
  }
  app.get('/', (_req, res) => {
    res.send('Hello World!');
  });
  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    console.log(JSON.stringify({ port: address.port }));
  });
  // CPU time spent by this server, asked for by the parent around each run.
  process.on('message', () => process.send?.(process.cpuUsage()));
}

async function start(variant: Variant): Promise<{ child: ChildProcess; port: number }> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--serve', variant], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const lines = createInterface({ input: child.stdout as NonNullable<typeof child.stdout> });
  for await (const line of lines) {
    if (line.startsWith('{')) return { child, port: (JSON.parse(line) as { port: number }).port };
  }
  throw new Error(`${variant}: server exited before listening`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface RunResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Server CPU time (user + system) per request, µs: steadier than req/s on a shared machine. */
  cpuUs: number;
}

function serverCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (usage) => {
      const { user, system } = usage as NodeJS.CpuUsage;
      resolve(user + system);
    });
    child.send('cpu');
  });
}

async function run(child: ChildProcess, port: number, seconds: number): Promise<RunResult> {
  const cpuBefore = await serverCpu(child);
  const url = `http://127.0.0.1:${port}/`;
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds });
  const cpuAfter = await serverCpu(child);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    cpuUs: (cpuAfter - cpuBefore) / Math.max(1, result.requests.total),
  };
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(`nproc: ${availableParallelism()}, node ${process.version}`);
  console.log(
    `autocannon: ${CONNECTIONS} connections, ${DURATION_S}s per run, ${ROUNDS} runs per variant (alternating); ` +
      `noop = an empty middleware; bans = ${fmt(BANS)} bans, no jail; guarded = bans + 2 observing jails; guarded+rate adds a rate jail`,
  );
  const servers = new Map<Variant, { child: ChildProcess; port: number }>();
  try {
    for (const variant of VARIANTS) {
      const server = await start(variant);
      servers.set(variant, server);
      await run(server.child, server.port, 1); // warm up: JIT, connection setup
    }
    const results = new Map<Variant, RunResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const { child, port } = servers.get(variant) as { child: ChildProcess; port: number };
        const r = await run(child, port, DURATION_S);
        results.set(variant, [...(results.get(variant) ?? []), r]);
        console.log(
          `  round ${round + 1} ${variant.padEnd(13)} ${fmt(r.rps)} req/s, ${fmt(r.cpuUs, 1)} µs CPU/req`,
        );
      }
    }
    const of = (variant: Variant, pick: (r: RunResult) => number) =>
      median((results.get(variant) ?? []).map(pick));
    const bareRps = of('bare', (r) => r.rps);
    const bareCpu = of('bare', (r) => r.cpuUs);
    console.log('\nvariant        req/s (median)  vs bare  CPU µs/req  vs bare  p50 ms  p99 ms  errors');
    for (const variant of VARIANTS) {
      const rps = of(variant, (r) => r.rps);
      const cpu = of(variant, (r) => r.cpuUs);
      const pct = (value: number, base: number) =>
        variant === 'bare' ? '' : `${fmt(((value - base) / base) * 100, 1)}%`;
      const errors = (results.get(variant) ?? []).reduce((n, r) => n + r.errors, 0);
      console.log(
        [
          variant.padEnd(14),
          fmt(rps).padStart(14),
          pct(rps, bareRps).padStart(7),
          fmt(cpu, 1).padStart(10),
          pct(cpu, bareCpu).padStart(7),
          fmt(
            of(variant, (r) => r.p50),
            1,
          ).padStart(6),
          fmt(
            of(variant, (r) => r.p99),
            1,
          ).padStart(6),
          String(errors).padStart(6),
        ].join('  '),
      );
    }
  } finally {
    for (const { child } of servers.values()) await stop(child);
  }
}
