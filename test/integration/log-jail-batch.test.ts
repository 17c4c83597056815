import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import type { JailOptions, PortcullisOptions } from '../../src/config/schema.js';
import { createGuard, type Guard, type ReportResult } from '../../src/guard.js';
import { type LogJails, startLogJails } from '../../src/sources/log/log-jail.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { logJailSettled, makeTempDir, standInFilter } from '../helpers/log-files.js';
import { type RedisServerHandle, startRedis, uniquePrefix } from '../helpers/redis-server.js';

// A backlog arrives as large batches: many failures of many clients handed to the jail at once.
// These tests give the jail the guard itself (its synchronous report path, as `portcullis run`
// does) and check that what is counted, banned and told, and in which order, is what one report
// at a time in line order gives.

let dir: string;
let redis: RedisServerHandle;
const prefixes: string[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  const client = new Redis(redis.url, { lazyConnect: true });
  await client.connect().catch(() => {});
  for (const prefix of prefixes) {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
  }
  client.disconnect();
  await redis.stop();
});
beforeEach(() => {
  dir = makeTempDir('portcullis-batch-');
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  fs.rmSync(dir, { recursive: true, force: true });
});

type StoreKind = 'memory' | 'sqlite' | 'redis';

interface Told {
  ip: string;
  n: number;
  outcome: ReportResult['outcome'];
}

/** A guard on `store` with one jail reading `lines` (written before it starts), settled. */
async function drain(
  store: StoreKind,
  jail: JailOptions,
  lines: string[],
): Promise<{ guard: Guard; told: Told[]; logJails: LogJails }> {
  const file = path.join(dir, 'auth.log');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  const options: PortcullisOptions = {
    jails: {
      sshd: {
        source: { log: file, start: 'beginning' },
        filter: 'sshd',
        findtime: '1h',
        bantime: '1h',
        ignoreself: false,
        ...jail,
      },
    },
  };
  if (store === 'sqlite') options.store = { sqlite: path.join(dir, 'bans.db') };
  if (store === 'redis') {
    const prefix = uniquePrefix('batch');
    prefixes.push(prefix);
    options.store = { redis: { url: redis.url, prefix } };
  }
  const guard = await createGuard(resolveConfig(options, { env: {} }), {
    ...(store === 'memory' ? { store: new MemoryStore() } : {}),
    env: {},
    outboxPath: null,
  });
  closers.push(() => guard.close());
  const told: Told[] = [];
  guard.onReport((ip, report, result) => {
    told.push({ ip, n: Number(report.fields?.n), outcome: result.outcome });
  });
  const logJails = await startLogJails(guard, {
    makeFilter: () => standInFilter(),
    watch: false,
    pollIntervalMs: 50,
  });
  closers.push(() => logJails.close());
  await logJailSettled(logJails, 'sshd', lines.length);
  await guard.idle();
  return { guard, told, logJails };
}

/** `n` failures of each client, interleaved round-robin, numbered in line order, with noise between. */
function interleaved(perClient: Record<string, number>): string[] {
  const now = new Date().toISOString();
  const queues = Object.entries(perClient).map(([ip, count]) => ({ ip, left: count }));
  const lines: string[] = [];
  let n = 0;
  while (queues.some((queue) => queue.left > 0)) {
    for (const queue of queues) {
      if (queue.left === 0) continue;
      queue.left--;
      lines.push(`${now} FAIL from ${queue.ip} n=${++n}`);
      lines.push(`${now} session opened for user root`);
    }
  }
  return lines;
}

const outcomesOf = (told: readonly Told[], ip: string) =>
  told.filter((entry) => entry.ip === ip).map((entry) => entry.outcome);

describe.each(['memory', 'sqlite', 'redis'] as const)('a backlog in one batch (%s store)', (store) => {
  it('bans exactly the clients that reach maxretry, once each; counts the others; never an ignored one', async () => {
    const lines = interleaved({
      '192.0.2.10': 7,
      '192.0.2.11': 5,
      '192.0.2.12': 4,
      '192.0.2.13': 1,
      '203.0.113.5': 9,
      '2001:db8:1::1': 3,
      '2001:db8:1::2': 3,
      '2001:db8:2::1': 4,
    });
    const { guard, told, logJails } = await drain(
      store,
      { maxretry: 5, ignoreip: ['203.0.113.0/24'] },
      lines,
    );

    expect(logJails.stats().sshd).toMatchObject({ lines: lines.length, matches: 36, reports: 36, errors: 0 });
    expect((await guard.decisions()).map((decision) => decision.target).sort()).toEqual([
      '192.0.2.10',
      '192.0.2.11',
      '2001:db8:1::/64',
    ]);
    expect(outcomesOf(told, '192.0.2.10')).toEqual([
      ...Array(4).fill('counted'),
      'banned',
      'already-banned',
      'already-banned',
    ]);
    expect(outcomesOf(told, '192.0.2.11')).toEqual([...Array(4).fill('counted'), 'banned']);
    expect(outcomesOf(told, '192.0.2.12')).toEqual(Array(4).fill('counted'));
    expect(outcomesOf(told, '192.0.2.13')).toEqual(['counted']);
    expect(outcomesOf(told, '203.0.113.5')).toEqual(Array(9).fill('ignored'));
    // Two addresses of one /64 are one client: its fifth failure bans the network.
    expect([...outcomesOf(told, '2001:db8:1::1'), ...outcomesOf(told, '2001:db8:1::2')].sort()).toEqual(
      ['already-banned', 'banned', 'counted', 'counted', 'counted', 'counted'].sort(),
    );
    expect(outcomesOf(told, '2001:db8:2::1')).toEqual(Array(4).fill('counted'));
    expect(guard.isBanned('192.0.2.12')).toBe(false);
    expect(guard.isBanned('2001:db8:1::77')).toBe(true);
    // Per client, reports were told in line order.
    for (const ip of new Set(told.map((entry) => entry.ip))) {
      const numbers = told.filter((entry) => entry.ip === ip).map((entry) => entry.n);
      expect(numbers, ip).toEqual([...numbers].sort((a, b) => a - b));
    }
    // Still banned clients counted no further: the ones below maxretry are the clients still failing.
    expect(guard.failingClients().get('sshd')).toBe(3);
  });

  it('a ban decided mid-batch stops counting for that client, also while its length is worked out (bantime_increment)', async () => {
    const lines = interleaved({ '192.0.2.20': 12, '192.0.2.21': 12 });
    const { guard, told } = await drain(
      store,
      { maxretry: 5, ignoreip: [], bantime_increment: { enabled: true, factor: 2 } },
      lines,
    );
    for (const ip of ['192.0.2.20', '192.0.2.21']) {
      // The ban is told before any later failure of that client: they waited for it, then were not counted.
      expect(outcomesOf(told, ip)).toEqual([
        ...Array(4).fill('counted'),
        'banned',
        ...Array(7).fill('already-banned'),
      ]);
    }
    const decisions = await guard.decisions();
    expect(decisions.map((decision) => [decision.target, decision.banCount]).sort()).toEqual([
      ['192.0.2.20', 1],
      ['192.0.2.21', 1],
    ]);
    expect(guard.failingClients().get('sshd') ?? 0).toBe(0);
  });
});

describe('a backlog in one batch: what is told, and when', () => {
  it('a dry-run jail would-bans once per client and enforces nothing', async () => {
    const lines = interleaved({ '192.0.2.30': 8, '192.0.2.31': 2 });
    const { guard, told } = await drain('memory', { maxretry: 3, ignoreip: [], dryrun: true }, lines);
    expect(outcomesOf(told, '192.0.2.30')).toEqual([
      'counted',
      'counted',
      'would-ban',
      ...Array(5).fill('already-banned'),
    ]);
    expect(outcomesOf(told, '192.0.2.31')).toEqual(['counted', 'counted']);
    expect(guard.isBanned('192.0.2.30')).toBe(false);
  });

  it('failures that only count are told in line order across clients, without waiting for a ban elsewhere', async () => {
    const lines = interleaved({ '192.0.2.40': 9, '192.0.2.41': 4, '192.0.2.42': 4, '192.0.2.43': 4 });
    const { told } = await drain('sqlite', { maxretry: 3, ignoreip: [] }, lines);
    // 192.0.2.40 is banned at its 3rd failure; everything else only counts, synchronously, in line order.
    const others = told.filter((entry) => entry.outcome === 'counted').map((entry) => entry.n);
    expect(others).toEqual([...others].sort((a, b) => a - b));
    expect(
      told
        .filter((entry) => entry.outcome === 'banned')
        .map((entry) => entry.ip)
        .sort(),
    ).toEqual(['192.0.2.40', '192.0.2.41', '192.0.2.42', '192.0.2.43']);
    expect(told).toHaveLength(21);
  });

  it('a backlog of 9,000 failures from 2,000 clients bans the 500 that reached maxretry and no other', async () => {
    const now = new Date().toISOString();
    const lines: string[] = [];
    let n = 0;
    // Clients 0..499 fail 6 times, the others 4 times, interleaved round by round.
    for (let round = 0; round < 6; round++) {
      for (let c = 0; c < 2000; c++) {
        if (round >= 4 && c >= 500) continue;
        lines.push(`${now} FAIL from 10.${c >> 8}.${c & 255}.1 n=${++n}`);
      }
    }
    const { guard, told, logJails } = await drain('memory', { maxretry: 5, ignoreip: [] }, lines);
    expect(logJails.stats().sshd).toMatchObject({ matches: lines.length, reports: lines.length });
    const banned = told.filter((entry) => entry.outcome === 'banned').map((entry) => entry.ip);
    expect(new Set(banned).size).toBe(500);
    expect(banned).toHaveLength(500);
    for (let c = 0; c < 2000; c++)
      expect(guard.isBanned(`10.${c >> 8}.${c & 255}.1`), String(c)).toBe(c < 500);
    expect(told.filter((entry) => entry.outcome === 'already-banned')).toHaveLength(500);
    expect(guard.failingClients().get('sshd')).toBe(1500);
  });
});
