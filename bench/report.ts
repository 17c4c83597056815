// npm run bench:report — report() throughput on SQLite and on Redis (a redis-server this script
// starts on a free port), counting only and with bans, 64 reports in flight.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PortcullisOptions } from '../src/config/schema.js';
import { formatIPv4 } from '../src/core/ip.js';
import { createGuard, type Guard } from '../src/index.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { fmt, machineLine, median } from './machine.js';

const REPORTS = Number(process.env.REPORTS ?? 100_000);
const IN_FLIGHT = 64;

async function run(guard: Guard, clients: number): Promise<{ rate: number; bans: number }> {
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < REPORTS) {
      const i = next++;
      await guard.report(formatIPv4(0xc6120000 + (i % clients)), { jail: 'bench' });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return { rate: REPORTS / ((performance.now() - start) / 1000), bans: guard.stats.bans };
}

async function measure(label: string, makeStore: () => PortcullisOptions['store']): Promise<void> {
  for (const [mode, maxretry, clients] of [
    ['counting only', 1_000_000, 50_000],
    ['banning (maxretry 5)', 5, REPORTS / 5],
  ] as const) {
    const rates: number[] = [];
    let bans = 0;
    for (let round = 0; round < 3; round++) {
      const guard = await createGuard(
        {
          store: makeStore(),
          jails: { bench: { maxretry, findtime: '1h', ignoreip: [], ignoreself: false } },
        },
        { env: {} },
      );
      const result = await run(guard, clients);
      rates.push(result.rate);
      bans = result.bans;
      await guard.close();
    }
    console.log(
      `${label}, ${mode}: ${fmt(median(rates))} reports/s (median of 3; ${fmt(bans)} bans per round)`,
    );
  }
}

console.log(machineLine());
console.log(`${fmt(REPORTS)} reports per round, ${IN_FLIGHT} in flight`);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
const redis = await startRedis();
try {
  let n = 0;
  await measure('memory', () => ({ memory: true }));
  await measure('SQLite', () => ({ sqlite: join(dir, `bench-${n++}.db`) }));
  await measure('Redis', () => ({ redis: { url: redis.url, prefix: `bench:${n++}:` } }));
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
