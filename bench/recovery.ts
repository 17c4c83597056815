// npm run bench:recovery — what a Redis outage costs two guards sharing a store (a redis-server
// this script starts on a free port, restarted empty as a Redis without persistence would be):
//   outage: guard A decides N bans while Redis is down; time from Redis answering PING to A's
//     `storeUp` (queue written back, everything reloaded) and until guard B enforces all N;
//   lost: both guards enforce N bans made before the outage; time until both have written them
//     back (`storeUp`) and a fresh guard's `decisions()` holds all N.
// N = 1,000, 10,000 and 50,000 (BENCH_SIZES=1000,5000 to change), median of 3 runs, each on a
// fresh key prefix with fresh guards. Every wait is bounded; everything stays on loopback.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { Redis } from 'ioredis';
import type { PortcullisOptions } from '../src/config/schema.js';
import { formatIPv4 } from '../src/core/ip.js';
import { createGuard, type Guard } from '../src/index.js';
import { type RedisServerHandle, startRedis, uniquePrefix } from '../test/helpers/redis-server.js';
import { fmt, machineLine, median } from './machine.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,50000').split(',').map(Number);
const ROUNDS = 3;
const RETRY_MS = 100;
const POLL_MS = 10;
/** Bans made before the outage (lost scenario) are written this many at a time. */
const IN_FLIGHT = 256;
const EVENT_TIMEOUT_MS = 15_000;
const CONVERGE_TIMEOUT_MS = 60_000;
/** First address: 198.18.0.0/15 (benchmarking range) holds 131,072, enough for every N. */
const BASE_IP = 0xc6120000;

interface OutageRun {
  outageMs: number;
  reconnectMs: number;
  storeUpMs: number;
  peerMs: number;
}

interface LostRun {
  reconnectMs: number;
  bothUpMs: number;
  verifiedMs: number;
}

const problems: string[] = [];

function targets(n: number): string[] {
  return Array.from({ length: n }, (_, i) => formatIPv4(BASE_IP + i));
}

function guardConfig(url: string, prefix: string): PortcullisOptions {
  return {
    store: { redis: { url, prefix, command_timeout: '500ms' } },
    jails: { sshd: { maxretry: 1, bantime: '1h', ignoreip: [], ignoreself: false } },
  };
}

async function openGuard(url: string, prefix: string, name: string): Promise<Guard> {
  const guard = await createGuard(guardConfig(url, prefix), {
    env: {},
    storeRetryIntervalMs: RETRY_MS,
    instanceId: `bench-${name}`,
  });
  guard.on('error', (error) => problems.push(`guard ${name}: background error: ${error.message}`));
  return guard;
}

/** Resolves to the time (performance.now) of the next `event`; rejects after `timeoutMs`. */
function timeOf(emitter: NodeJS.EventEmitter, event: string, what: string, timeoutMs = EVENT_TIMEOUT_MS) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  return once(emitter, event, { signal: controller.signal }).then(
    () => {
      clearTimeout(timer);
      return performance.now();
    },
    () => {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    },
  );
}

/** Polls every POLL_MS until `guard` enforces every target; resolves to the time it first did. */
async function enforcesAll(guard: Guard, all: string[], what: string): Promise<number> {
  const deadline = performance.now() + CONVERGE_TIMEOUT_MS;
  let missing = all;
  for (;;) {
    missing = missing.filter((ip) => !guard.isBanned(ip));
    const now = performance.now();
    if (missing.length === 0) return now;
    if (now > deadline) {
      throw new Error(
        `${what}: ${missing.length} of ${all.length} bans still missing after ${CONVERGE_TIMEOUT_MS} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function countMissing(guard: Guard, all: string[]): number {
  let missing = 0;
  for (const ip of all) if (!guard.isBanned(ip)) missing++;
  return missing;
}

/** A fresh guard's `decisions()`: how many of `all` the store holds. */
async function storedCount(url: string, prefix: string, all: string[]): Promise<number> {
  const fresh = await openGuard(url, prefix, 'fresh');
  try {
    const held = new Set((await fresh.decisions()).map((d) => d.target));
    return all.filter((ip) => held.has(ip)).length;
  } finally {
    await fresh.close();
  }
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
  });
}

/** Starts the server again (empty) and resolves to the time it first answered PING (polled every 2 ms). */
async function restart(redis: RedisServerHandle): Promise<number> {
  const started = redis.start();
  const deadline = performance.now() + EVENT_TIMEOUT_MS;
  let answered: number | undefined;
  while (answered === undefined && performance.now() < deadline) {
    if (await pingOnce(redis.port)) answered = performance.now();
    else await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await started;
  if (answered === undefined) throw new Error('redis-server did not answer PING after restart');
  return answered;
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) problems.push(message);
}

/** A decides N bans while Redis is down; Redis comes back empty. */
async function outageRun(redis: RedisServerHandle, n: number, round: number): Promise<OutageRun> {
  const prefix = uniquePrefix(`bench-recovery-outage-${n}-${round}`);
  const all = targets(n);
  const a = await openGuard(redis.url, prefix, 'A');
  const b = await openGuard(redis.url, prefix, 'B');
  try {
    const downA = timeOf(a, 'storeDown', 'A storeDown');
    const downB = timeOf(b, 'storeDown', 'B storeDown');
    const stopped = performance.now();
    await redis.stop();
    await Promise.all([downA, downB]);
    for (const ip of all) await a.ban(ip, { duration: '1h' });
    await a.idle();
    check(
      a.stats.pendingWrites === n,
      `outage N=${n} round ${round}: A pendingWrites ${a.stats.pendingWrites}, expected ${n}`,
    );

    const reconnected = timeOf(a.store, 'up', 'A store up');
    const upA = timeOf(a, 'storeUp', 'A storeUp', CONVERGE_TIMEOUT_MS);
    const upB = timeOf(b, 'storeUp', 'B storeUp', CONVERGE_TIMEOUT_MS);
    const restarting = restart(redis);
    const outageEnd = performance.now();
    const pinged = await restarting;
    const [reconnectAt, storeUpAt, peerAt] = await Promise.all([
      reconnected,
      upA,
      enforcesAll(b, all, `outage N=${n}: B`),
      upB,
    ]);

    check(
      a.stats.pendingWrites === 0,
      `outage N=${n} round ${round}: A pendingWrites ${a.stats.pendingWrites} after storeUp`,
    );
    const lostA = countMissing(a, all);
    check(lostA === 0, `outage N=${n} round ${round}: A no longer enforces ${lostA} of its bans`);
    const stored = await storedCount(redis.url, prefix, all);
    check(stored === n, `outage N=${n} round ${round}: a fresh guard's decisions() holds ${stored} of ${n}`);
    return {
      outageMs: outageEnd - stopped,
      reconnectMs: reconnectAt - pinged,
      storeUpMs: storeUpAt - pinged,
      peerMs: peerAt - pinged,
    };
  } finally {
    await Promise.all([a.close(), b.close()]);
    await deleteKeys(redis.url, prefix);
  }
}

/** Both guards enforce N bans made before the outage; Redis comes back empty. */
async function lostRun(redis: RedisServerHandle, n: number, round: number): Promise<LostRun> {
  const prefix = uniquePrefix(`bench-recovery-lost-${n}-${round}`);
  const all = targets(n);
  const a = await openGuard(redis.url, prefix, 'A');
  const b = await openGuard(redis.url, prefix, 'B');
  try {
    for (let i = 0; i < n; i += IN_FLIGHT) {
      await Promise.all(all.slice(i, i + IN_FLIGHT).map((ip) => a.ban(ip, { duration: '1h' })));
    }
    await enforcesAll(b, all, `lost N=${n}: B before the outage`);

    const downA = timeOf(a, 'storeDown', 'A storeDown');
    const downB = timeOf(b, 'storeDown', 'B storeDown');
    await redis.stop();
    await Promise.all([downA, downB]);

    const reconnected = timeOf(a.store, 'up', 'A store up');
    const upA = timeOf(a, 'storeUp', 'A storeUp', CONVERGE_TIMEOUT_MS);
    const upB = timeOf(b, 'storeUp', 'B storeUp', CONVERGE_TIMEOUT_MS);
    const pinged = await restart(redis);
    const [reconnectAt, upAAt, upBAt] = await Promise.all([reconnected, upA, upB]);
    const stored = await storedCount(redis.url, prefix, all);
    const verifiedAt = performance.now();

    check(stored === n, `lost N=${n} round ${round}: a fresh guard's decisions() holds ${stored} of ${n}`);
    for (const [name, guard] of [
      ['A', a],
      ['B', b],
    ] as const) {
      const missing = countMissing(guard, all);
      check(missing === 0, `lost N=${n} round ${round}: ${name} no longer enforces ${missing} bans`);
      check(
        guard.stats.pendingWrites === 0,
        `lost N=${n} round ${round}: ${name} pendingWrites ${guard.stats.pendingWrites} after storeUp`,
      );
    }
    return {
      reconnectMs: reconnectAt - pinged,
      bothUpMs: Math.max(upAAt, upBAt) - pinged,
      verifiedMs: verifiedAt - pinged,
    };
  } finally {
    await Promise.all([a.close(), b.close()]);
    await deleteKeys(redis.url, prefix);
  }
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

console.log(machineLine());
console.log(
  `nproc ${execFileSync('nproc').toString().trim()}, node ${process.version}, cpu ${cpuModel()}; ` +
    `${execFileSync('/usr/bin/redis-server', ['--version']).toString().trim()}`,
);
console.log(
  `guards: command_timeout 500ms, storeRetryIntervalMs ${RETRY_MS}, outbox in memory; ` +
    `B polled every ${POLL_MS} ms; median of ${ROUNDS} runs; times from Redis answering PING`,
);
const redis = await startRedis();
const rows: string[] = [];
try {
  for (const n of SIZES) {
    const outage: OutageRun[] = [];
    const lost: LostRun[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      outage.push(await outageRun(redis, n, round));
      lost.push(await lostRun(redis, n, round));
    }
    const m = <T>(runs: T[], key: keyof T) => fmt(median(runs.map((r) => r[key] as number)));
    const spread = <T>(runs: T[], key: keyof T) => runs.map((r) => fmt(r[key] as number)).join(' / ');
    console.log(
      `N=${fmt(n)} outage: outage ${spread(outage, 'outageMs')} ms; A reconnected ${spread(outage, 'reconnectMs')} ms, ` +
        `A storeUp ${spread(outage, 'storeUpMs')} ms, B enforces all ${spread(outage, 'peerMs')} ms`,
    );
    console.log(
      `N=${fmt(n)} lost: A reconnected ${spread(lost, 'reconnectMs')} ms, both storeUp ${spread(lost, 'bothUpMs')} ms, ` +
        `fresh decisions() verified ${spread(lost, 'verifiedMs')} ms`,
    );
    rows.push(
      `| ${fmt(n)} | ${m(outage, 'reconnectMs')} ms | ${m(outage, 'storeUpMs')} ms | ${m(outage, 'peerMs')} ms | ` +
        `${m(lost, 'bothUpMs')} ms | ${m(lost, 'verifiedMs')} ms |`,
    );
  }
} finally {
  await redis.stop();
}
console.log();
console.log(
  '| N | A reconnected | outage: A `storeUp` | outage: B enforces all | lost: both `storeUp` | lost: fresh `decisions()` has all |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
console.log();
if (problems.length === 0) console.log('checks: every ban enforced and stored, no background errors');
else for (const problem of problems) console.log(`PROBLEM: ${problem}`);
