// npm run bench:express — Express hello world, bare vs behind the portcullis middleware (two
// observing jails, 100k bans loaded), and with a rate jail added. The server runs in a child
// process, autocannon in this one; variants alternate, each measured 3 times, medians compared.
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import express from 'express';
import { formatIPv4 } from '../src/core/ip.js';
import type { Decision } from '../src/core/types.js';
import { createGuard, MemoryStore } from '../src/index.js';
import { portcullis } from '../src/surfaces/express/index.js';
import { fmt, machineLine, median } from './machine.js';

const VARIANTS = ['bare', 'guarded', 'guarded+rate'] as const;
type Variant = (typeof VARIANTS)[number];
const BANS = 100_000;
const ROUNDS = 3;
const DURATION_S = Number(process.env.DURATION ?? 5);
const CONNECTIONS = 50;

if (process.argv[2] === '--serve') await serve(process.argv[3] as Variant);
else await main();

async function serve(variant: Variant): Promise<void> {
  const app = express();
  if (variant !== 'bare') {
    const store = new MemoryStore();
    const now = Date.now();
    let seed = 0x9e3779b9;
    for (let i = 0; i < BANS; i++) {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      const decision: Decision = {
        target: formatIPv4((seed | 0x01000000) >>> 0 === 0x7f000001 ? 0x0a000001 : seed >>> 0),
        jail: 'scanners',
        reason: 'bench',
        startedAt: now,
        expiresAt: now + 3_600_000,
        banCount: 1,
        dryRun: false,
        origin: 'bench',
      };
      await store.putDecision(decision);
    }
    const jails: Record<string, unknown> = {
      'web-auth': { source: 'http', filter: { status: [401, 403], path: '^/(login|api/session)' } },
      scanners: { source: 'http', filter: 'scanners' },
    };
    // A rate no single client of the benchmark reaches: the cost of counting, not of refusing.
    if (variant === 'guarded+rate') jails.flood = { source: 'http', filter: 'flood', rate: '100000000/10s' };
    const guard = await createGuard({ store: { memory: true }, jails }, { store, env: {} });
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
}

async function start(variant: Variant): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', variant], {
    stdio: ['ignore', 'pipe', 'inherit'],
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

async function run(port: number, seconds: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(`nproc: ${availableParallelism()}, node ${process.version}`);
  console.log(
    `autocannon: ${CONNECTIONS} connections, ${DURATION_S}s per run, ${ROUNDS} runs per variant (alternating); ` +
      `guarded = 2 observing jails + ${fmt(BANS)} bans; guarded+rate adds a rate jail`,
  );
  const servers = new Map<Variant, number>();
  const children: ChildProcess[] = [];
  try {
    for (const variant of VARIANTS) {
      const { child, port } = await start(variant);
      children.push(child);
      servers.set(variant, port);
      await run(port, 1); // warm up: JIT, connection setup
    }
    const results = new Map<Variant, { rps: number; p50: number; p99: number; errors: number }[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const r = await run(servers.get(variant) as number, DURATION_S);
        results.set(variant, [...(results.get(variant) ?? []), r]);
        console.log(`  round ${round + 1} ${variant.padEnd(13)} ${fmt(r.rps)} req/s`);
      }
    }
    const bare = median((results.get('bare') ?? []).map((r) => r.rps));
    console.log('\nvariant        req/s (median)  vs bare   p50 ms  p99 ms  errors');
    for (const variant of VARIANTS) {
      const rs = results.get(variant) ?? [];
      const rps = median(rs.map((r) => r.rps));
      const delta = variant === 'bare' ? '' : `${fmt(((rps - bare) / bare) * 100, 1)}%`;
      console.log(
        `${variant.padEnd(14)} ${fmt(rps).padStart(14)}  ${delta.padStart(7)}  ${fmt(median(rs.map((r) => r.p50)), 1).padStart(6)}  ${fmt(median(rs.map((r) => r.p99)), 1).padStart(6)}  ${rs.reduce((n, r) => n + r.errors, 0)}`,
      );
    }
  } finally {
    for (const child of children) await stop(child);
  }
}
