import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/types.js';
import { createGuard } from '../../src/index.js';
import { type GuardProcess, spawnGuard } from '../helpers/guard-process.js';
import { type RedisServerHandle, startRedis, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

let redis: RedisServerHandle;
const prefixes: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  // Remove what these tests wrote, then stop the server we started.
  const client = new Redis(redis.url, { lazyConnect: true });
  await client.connect().catch(() => {});
  for (const prefix of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  }
  client.disconnect();
  await redis.stop();
});

function configFor(prefix: string) {
  prefixes.push(prefix);
  return {
    store: { redis: { url: redis.url, prefix } },
    jails: { sshd: { maxretry: 3, bantime: '1h', ignoreip: [], ignoreself: false } },
  };
}

describe('two guard processes on one Redis', () => {
  let a: GuardProcess;
  let b: GuardProcess;
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
  });

  it('a ban earned on A is enforced by B within 50 ms; an unban likewise', async () => {
    const config = configFor(uniquePrefix('two'));
    [a, b] = await Promise.all([spawnGuard(config), spawnGuard(config)]);

    // Failures reported on both instances count together.
    await a.call('report', '192.0.2.50', { jail: 'sshd' });
    await b.call('report', '192.0.2.50', { jail: 'sshd' });
    const result = await a.call<{ outcome: string; started: number }>('report', '192.0.2.50', {
      jail: 'sshd',
    });
    expect(result.outcome).toBe('banned');
    const banOnA = a.events.find((e) => e.event === 'ban' && e.target === '192.0.2.50');
    const banOnB = await b.waitForEvent((e) => e.event === 'ban' && e.target === '192.0.2.50');
    expect(banOnA?.source).toBe('local');
    expect(banOnB.source).toBe('remote');
    const banLatency = banOnB.at - (banOnA?.at as number);
    expect(banLatency).toBeLessThan(50);
    expect(await b.call('isBanned', '192.0.2.50')).toBe(true);
    expect(await b.call('isBanned', '192.0.2.51')).toBe(false);

    expect(await b.call('unban', '192.0.2.50')).toBe(true);
    const unbanOnB = b.events.find((e) => e.event === 'unban' && e.target === '192.0.2.50');
    const unbanOnA = await a.waitForEvent((e) => e.event === 'unban' && e.target === '192.0.2.50');
    expect(unbanOnA.reason).toBe('remote');
    expect(unbanOnA.at - (unbanOnB?.at as number)).toBeLessThan(50);
    expect(await a.call('isBanned', '192.0.2.50')).toBe(false);
    console.log(
      `ban A→B ${banLatency.toFixed(2)} ms, unban B→A ${(unbanOnA.at - (unbanOnB?.at as number)).toFixed(2)} ms`,
    );
  });

  it('a manual range ban on one instance reaches the other, and a late starter restores it', async () => {
    const config = configFor(uniquePrefix('range'));
    const first = await spawnGuard(config);
    const second = await spawnGuard(config);
    try {
      await first.call('ban', '198.51.100.0/24', { duration: '2h' });
      await second.waitForEvent((e) => e.event === 'ban' && e.target === '198.51.100.0/24');
      expect(await second.call('isBanned', '198.51.100.9')).toBe(true);
      const late = await spawnGuard(config);
      expect(await late.call('isBanned', '198.51.100.200')).toBe(true);
      await late.kill();
    } finally {
      await Promise.all([first.kill(), second.kill()]);
    }
  });
});

describe('Redis going away mid-run (on_store_error: local)', () => {
  it('keeps enforcing and banning, and writes every ban made during the outage when Redis returns', async () => {
    const prefix = uniquePrefix('outage');
    const guard = await createGuard(
      {
        store: { redis: { url: redis.url, prefix, command_timeout: '500ms' } },
        jails: configFor(prefix).jails,
      },
      { env: {} },
    );
    const events: string[] = [];
    guard.on('storeDown', () => events.push('down'));
    guard.on('storeUp', () => events.push('up'));
    try {
      await guard.ban('192.0.2.1', { duration: '1h' });
      await redis.stop();

      // Known bans still enforced; new failures counted locally and turned into bans.
      expect(guard.isBanned('192.0.2.1')).toBe(true);
      const banned: string[] = [];
      for (let i = 10; i < 20; i++) {
        const ip = `192.0.2.${i}`;
        let result = await guard.report(ip, { jail: 'sshd' });
        while (result.outcome === 'counted') result = await guard.report(ip, { jail: 'sshd' });
        expect(result.outcome).toBe('banned');
        expect(guard.isBanned(ip)).toBe(true);
        banned.push(ip);
      }
      await guard.ban('203.0.113.0/24', { duration: -1 });
      banned.push('203.0.113.0/24');
      expect(await guard.unban('192.0.2.1')).toBe(true);
      expect(events).toContain('down');
      expect(guard.stats.storeAvailable).toBe(false);
      expect(guard.stats.pendingWrites).toBe(banned.length + 1);

      await redis.start();
      await waitFor(() => events.includes('up'), { timeoutMs: 15_000, message: 'storeUp' });
      expect(events).toContain('up');
      expect(guard.stats.pendingWrites).toBe(0);

      // Every decision made during the outage is in Redis now, as seen by a fresh instance.
      const fresh = await createGuard(
        { store: { redis: { url: redis.url, prefix } }, jails: {} },
        { env: {} },
      );
      const stored = (await fresh.decisions()).map((d: Decision) => d.target).sort();
      await fresh.close();
      expect(stored).toEqual([...banned].sort());
      expect(stored).not.toContain('192.0.2.1');
      expect(guard.isBanned('192.0.2.15')).toBe(true);
    } finally {
      await guard.close();
    }
  });
});

describe('Redis restarted empty (no persistence) under two guards', () => {
  it('every ban is still enforced by both and written back to Redis', async () => {
    const prefix = uniquePrefix('empty');
    const config = {
      store: { redis: { url: redis.url, prefix, command_timeout: '500ms' } },
      jails: configFor(prefix).jails,
    };
    const a = await spawnGuard(config);
    const b = await spawnGuard(config);
    try {
      const targets: string[] = [];
      for (let i = 0; i < 60; i++) {
        const target = `192.0.2.${i}`;
        targets.push(target);
        await (i % 2 === 0 ? a : b).call('ban', target, { duration: '2h' });
      }
      await a.call('ban', '2001:db8:7::/64', { duration: -1 });
      targets.push('2001:db8:7::/64');
      await b.waitForEvent((e) => e.event === 'ban' && e.target === '2001:db8:7::/64');
      await a.waitForEvent((e) => e.event === 'ban' && e.target === '192.0.2.59');

      await redis.stop();
      await Promise.all([
        a.waitForEvent((e) => e.event === 'storeDown'),
        b.waitForEvent((e) => e.event === 'storeDown'),
      ]);
      await redis.start(); // empty: the test server runs with --save "" --appendonly no
      await Promise.all([
        a.waitForEvent((e) => e.event === 'storeUp'),
        b.waitForEvent((e) => e.event === 'storeUp'),
      ]);

      for (const guard of [a, b]) {
        const stats = await guard.call<{ activeBans: number; pendingWrites: number }>('stats');
        expect(stats.activeBans).toBe(targets.length);
        expect(stats.pendingWrites).toBe(0);
        expect(await guard.call('isBanned', '192.0.2.31')).toBe(true);
        expect(await guard.call('isBanned', '2001:db8:7::99')).toBe(true);
      }
      // No instance lifted a ban meanwhile.
      expect([...a.events, ...b.events].filter((e) => e.event === 'unban')).toEqual([]);

      const fresh = await createGuard(
        { store: { redis: { url: redis.url, prefix } }, jails: {} },
        { env: {} },
      );
      const stored = (await fresh.decisions()).map((d: Decision) => d.target).sort();
      await fresh.close();
      expect(stored).toEqual([...targets].sort());
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  });
});

describe('a guard killed during a Redis outage', () => {
  it('writes the decisions it made during the outage at its next start (durable outbox)', async () => {
    const prefix = uniquePrefix('outbox');
    const dir = mkdtempSync(join(tmpdir(), 'pc-outbox-'));
    const outbox = join(dir, 'outbox.db');
    const config = {
      store: { redis: { url: redis.url, prefix, command_timeout: '500ms', outbox } },
      jails: configFor(prefix).jails,
    };
    const guard = await spawnGuard(config);
    try {
      await guard.call('ban', '198.51.100.1', { duration: '2h' });
      await redis.stop();
      await guard.waitForEvent((e) => e.event === 'storeDown');
      const outage: string[] = [];
      for (let i = 10; i < 40; i++) {
        const target = `198.51.100.${i}`;
        outage.push(target);
        await guard.call('ban', target, { duration: '2h' });
      }
      // Failures counted locally during the outage turn into bans too.
      for (let n = 0; n < 3; n++) await guard.call('report', '203.0.113.77', { jail: 'sshd' });
      outage.push('203.0.113.77');
      expect(await guard.call('unban', '198.51.100.1')).toBe(true);
      const stats = await guard.call<{ pendingWrites: number }>('stats');
      expect(stats.pendingWrites).toBe(outage.length + 1);
      await guard.kill('SIGKILL');

      await redis.start();
      const restarted = await spawnGuard(config);
      try {
        expect(await restarted.call('isBanned', '198.51.100.25')).toBe(true);
        expect(await restarted.call('isBanned', '203.0.113.77')).toBe(true);
        const left = await restarted.call<{ pendingWrites: number }>('stats');
        expect(left.pendingWrites).toBe(0);
      } finally {
        await restarted.kill('SIGTERM');
      }
      const fresh = await createGuard(
        { store: { redis: { url: redis.url, prefix } }, jails: {} },
        { env: {} },
      );
      const stored = (await fresh.decisions()).map((d: Decision) => d.target).sort();
      await fresh.close();
      expect(stored).toEqual([...outage].sort());
      expect(stored).not.toContain('198.51.100.1');
    } finally {
      await guard.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
