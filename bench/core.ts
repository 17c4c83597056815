// npm run bench:core — the local ban table: lookups/s and memory per ban with 1M banned
// addresses plus 10k banned ranges; restoring 1M bans from SQLite at start.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { systemClock } from '../src/core/clock.js';
import { formatIPv4 } from '../src/core/ip.js';
import { BanTable } from '../src/decisions/ban-table.js';
import { createGuard } from '../src/index.js';
import { fmt, machineLine, median } from './machine.js';

const BANS = Number(process.env.BANS ?? 1_000_000);
const RANGES = 10_000;
const LOOKUPS = 2_000_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench:core does)');

console.log(machineLine());
console.log(`ban table: ${fmt(BANS)} banned IPv4 addresses + ${fmt(RANGES)} banned ranges`);

// Deterministic pseudo-random addresses spread over the whole space.
let seed = 0x2545f491;
const rand32 = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
};
// Addresses as numbers: the table must pay for its own strings, as it does when restoring.
const banned = new Uint32Array(BANS);
for (let i = 0; i < BANS; i++) banned[i] = rand32();
const ranges: string[] = [];
for (let i = 0; i < RANGES; i++) ranges.push(`${formatIPv4(rand32() & 0xffffff00)}/${16 + (i % 9)}`);
const expires = Date.now() + 3_600_000;

gc();
const before = process.memoryUsage();
const table = new BanTable(systemClock);
const t0 = performance.now();
for (const ip of banned) table.add(formatIPv4(ip), 'sshd', expires);
for (const range of ranges) table.add(range, 'manual', expires);
const buildMs = performance.now() - t0;
gc();
const after = process.memoryUsage();
const bytes = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
console.log(
  `build: ${fmt(buildMs)} ms; memory: ${fmt(bytes / table.size, 1)} bytes per ban (heap + typed arrays, after GC)`,
);

// Lookups: half hits on banned addresses, half random (mostly misses that walk the range trie).
const probes: string[] = [];
for (let i = 0; i < 1000; i++)
  probes.push(formatIPv4(i % 2 === 0 ? (banned[rand32() % BANS] as number) : rand32()));
const probesV6 = Array.from({ length: 1000 }, (_, i) => `2001:db8:${(i * 7919) % 65536}::${i}`);
function measure(list: string[], label: string): void {
  const rates: number[] = [];
  let hits = 0;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < LOOKUPS; i++) if (table.has(list[i % list.length] as string)) hits++;
    rates.push(LOOKUPS / ((performance.now() - start) / 1000));
  }
  const rate = median(rates);
  console.log(
    `isBanned ${label}: ${fmt(rate)} lookups/s = ${fmt(1e9 / rate, 0)} ns per lookup (median of 5; ${hits} hits)`,
  );
}
measure(probes, 'IPv4 (50% hits)');
measure(probesV6, 'IPv6 (misses)');

// Restore at start: 1M bans written to a SQLite file, then a guard opens it.
const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
try {
  const path = join(dir, 'bans.db');
  const seedGuard = await createGuard({ store: { sqlite: path }, jails: {} }, { env: {} });
  await seedGuard.close();
  const db = new Database(path);
  const insert = db.prepare(
    'INSERT OR REPLACE INTO bans (target, jail, reason, started_at, expires_at, ban_count, dry_run, origin) VALUES (?, ?, ?, ?, ?, 1, 0, ?)',
  );
  db.transaction(() => {
    for (const ip of banned)
      insert.run(formatIPv4(ip), 'sshd', '5 failures within 10m', Date.now(), expires, 'bench');
  })();
  db.close();
  const times: number[] = [];
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    const guard = await createGuard({ store: { sqlite: path }, jails: {} }, { env: {} });
    times.push(performance.now() - start);
    if (round === 0) console.log(`restore: ${fmt(guard.stats.activeBans)} bans enforced after start`);
    await guard.close();
  }
  console.log(
    `restore from SQLite: ${fmt(median(times))} ms to start a guard with ${fmt(BANS)} bans (median of 3)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
