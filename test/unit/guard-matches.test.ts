import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createManualClock, systemClock } from '../../src/core/clock.js';
import type { Decision, DecisionSource } from '../../src/core/types.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { type RedisServerHandle, startRedis, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

const MIN = 60_000;
let guards: Guard[] = [];

afterEach(async () => {
  await Promise.all(guards.map((g) => g.close()));
  guards = [];
});

const command = { command: { ban: ['/bin/true', '<ip>', '<matches>'] } };

const jailWith = (actions: unknown[], extra: Record<string, unknown> = {}): PortcullisOptions =>
  ({
    jails: {
      sshd: {
        maxretry: 3,
        findtime: '10m',
        bantime: '1h',
        ignoreip: [],
        ignoreself: false,
        actions,
        ...extra,
      },
    },
  }) as PortcullisOptions;

async function guardWith(options: PortcullisOptions, store = new MemoryStore()) {
  const clock = createManualClock();
  const guard = await createGuard(options, { clock, store, env: {}, random: () => 0.5 });
  guards.push(guard);
  const announced: [Decision, DecisionSource][] = [];
  guard.subscribe({ ban: (decision, source) => announced.push([decision, source]) });
  return { guard, clock, store, announced };
}

describe('the matches of a ban', () => {
  it('are announced with a ban decided here: the last lines seen, oldest first, within findtime', async () => {
    const { guard, clock, store, announced } = await guardWith(jailWith([command]));
    await guard.report('192.0.2.7', { jail: 'sshd', match: 'too old' });
    clock.advance(11 * MIN);
    await guard.report('192.0.2.7', { jail: 'sshd', match: 'line 1' });
    await guard.report('192.0.2.8', { jail: 'sshd', match: 'another client' });
    await guard.report('192.0.2.7', { jail: 'sshd', match: 'line 2\nforged line' });
    const result = await guard.report('192.0.2.7', { jail: 'sshd', match: 'line 3' });
    expect(result.outcome).toBe('banned');
    expect(announced).toHaveLength(1);
    const [decision, source] = announced[0] as [Decision, DecisionSource];
    expect(source).toBe('local');
    expect(decision.matches).toEqual(['line 1', 'line 2\\nforged line', 'line 3']);
    // What report() returns and what the store keeps is the decision without them.
    expect(result.decision).not.toHaveProperty('matches');
    const stored: Decision[] = [];
    await store.loadDecisions(clock.now(), (batch) => stored.push(...batch));
    expect(stored).toHaveLength(1);
    expect(stored[0]).not.toHaveProperty('matches');
    expect(JSON.stringify(await guard.decisions())).not.toContain('line 1');
  });

  it('start afresh after a ban: the next ban carries only what came after', async () => {
    const { guard, clock, announced } = await guardWith(jailWith([command], { bantime: '1m' }));
    for (let i = 1; i <= 3; i++) await guard.report('192.0.2.7', { jail: 'sshd', match: `first ${i}` });
    clock.advance(2 * MIN);
    guard.tick();
    for (let i = 1; i <= 3; i++) await guard.report('192.0.2.7', { jail: 'sshd', match: `second ${i}` });
    expect(announced.map(([d]) => d.matches)).toEqual([
      ['first 1', 'first 2', 'first 3'],
      ['second 1', 'second 2', 'second 3'],
    ]);
  });

  it('are announced with the final decision when bantime_increment works out the length', async () => {
    const { guard, announced } = await guardWith(
      jailWith([command], { bantime_increment: { enabled: true, factor: 2 } }),
    );
    for (let i = 1; i <= 3; i++) await guard.report('192.0.2.7', { jail: 'sshd', match: `line ${i}` });
    expect(announced).toHaveLength(1);
    expect(announced[0]?.[0].matches).toEqual(['line 1', 'line 2', 'line 3']);
  });

  it('are not kept for a jail whose actions do not show them', async () => {
    const { guard, announced } = await guardWith(
      jailWith([{ nftables: { ports: [22] } }, { sms: smsOptions }]),
    );
    for (let i = 1; i <= 3; i++) await guard.report('192.0.2.7', { jail: 'sshd', match: `line ${i}` });
    expect(announced).toHaveLength(1);
    expect(announced[0]?.[0]).not.toHaveProperty('matches');
  });

  it('are not kept for ignored or already banned clients', async () => {
    const { guard, announced } = await guardWith(jailWith([command], { ignoreip: ['192.0.2.0/24'] }));
    for (let i = 1; i <= 5; i++) await guard.report('192.0.2.7', { jail: 'sshd', match: `ignored ${i}` });
    expect(announced).toHaveLength(0);
    await guard.ban('198.51.100.1', { jail: 'sshd' });
    await guard.report('198.51.100.1', { jail: 'sshd', match: 'while banned' });
    await guard.unban('198.51.100.1');
    for (let i = 1; i <= 3; i++) await guard.report('198.51.100.1', { jail: 'sshd', match: `after ${i}` });
    expect(announced.at(-1)?.[0].matches).toEqual(['after 1', 'after 2', 'after 3']);
  });
});

const smsOptions = {
  to: ['+15550100'],
  from: '+15550199',
  account: 'AC123',
  token_env: 'SMS_TOKEN',
};

describe('the matches of a ban on a shared store (Redis)', () => {
  let redis: RedisServerHandle;
  const prefixes: string[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    const client = new Redis(redis.url);
    for (const prefix of prefixes) {
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
    }
    client.disconnect();
    await redis.stop();
  });

  it('the instance that decides announces what it saw; Redis and the other instance never get them', async () => {
    const prefix = uniquePrefix('matches');
    prefixes.push(prefix);
    const options = {
      ...jailWith([command]),
      store: { redis: { url: redis.url, prefix } },
    } as PortcullisOptions;
    const start = async () => {
      const guard = await createGuard(options, { clock: systemClock, env: {}, outboxPath: null });
      guards.push(guard);
      const heard: [Decision, DecisionSource][] = [];
      guard.subscribe({ ban: (decision, source) => heard.push([decision, source]) });
      return { guard, heard };
    };
    const a = await start();
    const b = await start();
    await a.guard.report('192.0.2.60', { jail: 'sshd', match: 'seen on A' });
    await b.guard.report('192.0.2.60', { jail: 'sshd', match: 'seen on B 1' });
    // B's third failure of all reaches maxretry in the shared count: B decides.
    const result = await b.guard.report('192.0.2.60', { jail: 'sshd', match: 'seen on B 2' });
    expect(result.outcome).toBe('banned');
    expect(b.heard.map(([d, s]) => [s, d.matches])).toEqual([['local', ['seen on B 1', 'seen on B 2']]]);
    await waitFor(() => a.heard.length === 1);
    expect(a.heard[0]?.[1]).toBe('remote');
    expect(a.heard[0]?.[0]).not.toHaveProperty('matches');
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys(`${prefix}*`);
      const dump = await Promise.all(
        keys.map(async (key) => {
          const type = await client.type(key);
          if (type === 'hash') return JSON.stringify(await client.hgetall(key));
          if (type === 'string') return (await client.get(key)) ?? '';
          if (type === 'zset') return JSON.stringify(await client.zrange(key, 0, -1));
          return '';
        }),
      );
      expect(dump.join('\n')).toContain('192.0.2.60');
      expect(dump.join('\n')).not.toContain('seen on');
    } finally {
      client.disconnect();
    }
  });
});
