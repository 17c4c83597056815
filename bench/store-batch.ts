// npm run bench:store — writing back a queue of decisions: putDecision one by one (one round trip
// each, what a guard did after an outage) against putDecisions / deleteDecisions, on Redis (a
// redis-server this script starts on a free port, with a second instance subscribed, as in a
// cluster of guards) and on a temporary SQLite file. Median of 3 rounds, each on fresh keys.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Decision } from '../src/core/types.js';
import { RedisStore } from '../src/stores/redis/redis-store.js';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.js';
import type { Store } from '../src/stores/store.js';
import { startRedis, uniquePrefix } from '../test/helpers/redis-server.js';
import { fmt, machineLine, median } from './machine.js';

const DECISIONS = Number(process.env.DECISIONS ?? 10_000);
const ROUNDS = 3;
const T0 = Date.now();

function decisions(round: number): Decision[] {
  return Array.from({ length: DECISIONS }, (_, i) => ({
    target: `10.${round}.${(i >> 8) & 255}.${i & 255}`,
    jail: 'sshd',
    reason: '5 failures in 10m',
    startedAt: T0,
    expiresAt: T0 + 3_600_000,
    banCount: 1,
    dryRun: false,
    origin: 'bench:1',
  }));
}

/** Resolves once `store` has received `count` messages (an empty promise when it is not shared). */
function received(store: Store | undefined, count: number): Promise<void> {
  if (store === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    let n = 0;
    const onMessage = () => {
      if (++n < count) return;
      store.off('message', onMessage);
      resolve();
    };
    store.on('message', onMessage);
  });
}

interface Timing {
  putMs: number;
  deleteMs: number;
  /** Until the other instance had every ban message. */
  announcedMs: number;
}

async function round(writer: Store, peer: Store | undefined, batch: Decision[], batched: boolean) {
  const bansHeard = received(peer, batch.length);
  let started = performance.now();
  if (batched) {
    await writer.putDecisions(batch);
  } else {
    for (const decision of batch) await writer.putDecision(decision);
  }
  const putMs = performance.now() - started;
  await bansHeard;
  const announcedMs = performance.now() - started;
  const unbansHeard = received(peer, batch.length);
  started = performance.now();
  const targets = batch.map((d) => d.target);
  if (batched) {
    await writer.deleteDecisions(targets);
  } else {
    for (const target of targets) await writer.deleteDecision(target);
  }
  const deleteMs = performance.now() - started;
  await unbansHeard;
  return { putMs, deleteMs, announcedMs } satisfies Timing;
}

async function measure(label: string, open: () => Promise<{ writer: Store; peer?: Store }>): Promise<void> {
  const results: Record<'one by one' | 'batched', Timing[]> = { 'one by one': [], batched: [] };
  for (let r = 0; r < ROUNDS; r++) {
    // alternate, so neither variant always runs on a warmer process
    const order = r % 2 === 0 ? (['one by one', 'batched'] as const) : (['batched', 'one by one'] as const);
    for (const variant of order) {
      const { writer, peer } = await open();
      results[variant].push(await round(writer, peer, decisions(r), variant === 'batched'));
      await Promise.all([writer.close(), peer?.close()]);
    }
  }
  const one = results['one by one'];
  const many = results.batched;
  const m = (timings: Timing[], key: keyof Timing) => median(timings.map((t) => t[key]));
  for (const [name, timings] of [
    ['one by one', one],
    ['batched', many],
  ] as const) {
    const peerText = label.startsWith('redis')
      ? `, all heard by the peer ${fmt(m(timings, 'announcedMs'))} ms`
      : '';
    console.log(
      `${label}, ${name}: put ${fmt(DECISIONS)} in ${fmt(m(timings, 'putMs'))} ms${peerText}; ` +
        `delete them in ${fmt(m(timings, 'deleteMs'))} ms`,
    );
  }
  console.log(
    `${label}: batched is ${fmt(m(one, 'putMs') / m(many, 'putMs'), 1)}× faster to put, ` +
      `${fmt(m(one, 'deleteMs') / m(many, 'deleteMs'), 1)}× to delete`,
  );
}

console.log(machineLine());
console.log(
  `nproc ${execFileSync('nproc').toString().trim()}, node ${process.version}; ` +
    `${fmt(DECISIONS)} decisions per round, median of ${ROUNDS}`,
);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-store-'));
const redis = await startRedis();
try {
  await measure('redis (localhost)', async () => {
    const prefix = uniquePrefix('bench');
    const writer = new RedisStore({ url: redis.url, prefix, instanceId: 'writer' });
    const peer = new RedisStore({ url: redis.url, prefix, instanceId: 'peer' });
    await Promise.all([writer.open(), peer.open()]);
    return { writer, peer };
  });
  let files = 0;
  await measure('sqlite (temp file)', async () => {
    const writer = new SqliteStore({ path: join(dir, `bench-${++files}.db`), watchIntervalMs: 0 });
    await writer.open();
    return { writer };
  });
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
