import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGuard, type Guard } from '../../src/guard.js';
import { send } from '../helpers/http-client.js';
import { cleanups, runCleanups, startProxy, startUpstream } from '../helpers/proxy.js';
import { type RedisServerHandle, startRedis, uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';

// Three reverse proxies on one Redis with a `rate: 100/10s` jail: one rate for the client across
// all three, not three; with Redis gone, each limits on its own.

const RATE = 100;
const INSTANCES = 3;

let redis: RedisServerHandle;
let admin: Redis;
const prefixes: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
});

afterEach(runCleanups);

afterAll(async () => {
  if (admin.status === 'ready') {
    for (const prefix of prefixes) {
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length > 0) await admin.del(...keys);
    }
  }
  admin.disconnect();
  await redis?.stop();
});

interface Cluster {
  prefix: string;
  guards: Guard[];
  ports: number[];
}

async function startCluster(): Promise<Cluster> {
  const prefix = uniquePrefix('rate');
  prefixes.push(prefix);
  const upstream = await startUpstream();
  const guards: Guard[] = [];
  const ports: number[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const guard = await createGuard(
      {
        store: { redis: { url: redis.url, prefix } },
        defaults: { ignoreip: [], ignoreself: false },
        // maxretry high: what is measured is the rate itself, not a ban that follows it.
        jails: { flood: { source: 'http', rate: `${RATE}/10s`, maxretry: 50, bantime: '1h' } },
      },
      { env: {}, outboxPath: null, storeRetryIntervalMs: 100 },
    );
    cleanups.push(() => guard.close());
    guards.push(guard);
    const proxy = await startProxy(guard, { target: upstream.url });
    ports.push((proxy.addresses[0] as { port: number }).port);
  }
  return { prefix, guards, ports };
}

/** `count` requests from `from`, round robin over `ports`, `concurrency` at a time; the statuses by port. */
async function spread(
  ports: number[],
  from: string,
  count: number,
  concurrency = 1,
): Promise<Map<number, number[]>> {
  const byPort = new Map<number, number[]>(ports.map((p) => [p, []]));
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const port = ports[next++ % ports.length] as number;
      const { status } = await send(port, { path: `/page/${next}`, from });
      byPort.get(port)?.push(status);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return byPort;
}

function passed(statuses: number[]): number {
  return statuses.filter((s) => s === 200).length;
}

async function evalCalls(): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

describe('rate jails shared over Redis', () => {
  it('150 requests spread over three proxies within the window: ~100 get through, not 150', async () => {
    const { prefix, guards, ports } = await startCluster();
    const client = '127.0.0.2';
    const byPort = await spread(ports, client, 150);
    const all = [...byPort.values()].flat();
    const through = passed(all);
    console.log(`sequential, 3 instances: ${through} of 150 through`);
    // Bound: the rate, plus per instance the request it admits before it hears the shared count
    // is over (measured: 103), plus any admitted while a Redis reply was late (a loaded machine).
    expect(through).toBeGreaterThanOrEqual(RATE);
    expect(through).toBeLessThanOrEqual(RATE + 2 * INSTANCES);
    expect(all.filter((s) => s === 429).length).toBe(150 - through);
    for (const statuses of byPort.values()) expect(statuses.at(-1)).toBe(429);

    // One failure for the window, across the three (the request Redis put at 101), not one each.
    await Promise.all(guards.map((g) => g.idle()));
    expect(await admin.zcard(`${prefix}fail:flood:${client}`)).toBe(1);

    // The shared window lives under the store's prefix and expires with the window.
    const rateKey = `${prefix}rate:flood:${client}`;
    expect(Number(await admin.get(rateKey))).toBeGreaterThan(RATE);
    const ttl = await admin.pttl(rateKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
    expect((await admin.keys('*rate:flood*')).every((k) => k.startsWith(prefix))).toBe(true);

    // Once over, the flood costs Redis nothing: every instance refuses from memory.
    const before = await evalCalls();
    const more = [...(await spread(ports, client, 60)).values()].flat();
    expect(more.every((s) => s === 429)).toBe(true);
    expect(await evalCalls()).toBe(before);

    // Another client has its own window.
    expect((await send(ports[0] as number, { from: '127.0.0.3' })).status).toBe(200);
  });

  it('concurrent requests over the three are limited too, within the in-flight bound', async () => {
    const { ports } = await startCluster();
    const concurrency = 6;
    const all = [...(await spread(ports, '127.0.0.4', 150, concurrency)).values()].flat();
    const through = passed(all);
    console.log(`concurrency ${concurrency}, 3 instances: ${through} of 150 through`);
    // Per instance: one plus what it had in flight when the shared count went over (at most all).
    expect(through).toBeGreaterThanOrEqual(RATE);
    expect(through).toBeLessThanOrEqual(RATE + INSTANCES * (1 + concurrency));
  });

  it('with Redis stopped, each instance limits on its own: 100 each, not 0 and not unbounded', async () => {
    const { guards, ports } = await startCluster();
    await redis.stop();
    try {
      await waitFor(() => guards.every((g) => !g.stats.storeAvailable), {
        timeoutMs: 10_000,
        message: 'every guard to see the store down',
      });
      const reportsBefore = guards.map((g) => g.stats.reports);
      const client = '127.0.0.5';
      const byPort = await spread(ports, client, 150 * INSTANCES);
      for (const [port, statuses] of byPort) {
        expect(passed(statuses), `requests through port ${port}`).toBe(RATE);
        expect(statuses.slice(RATE).every((s) => s === 429)).toBe(true);
      }
      // Each instance reports its own excess (one failure each), counted locally meanwhile.
      await Promise.all(guards.map((g) => g.idle()));
      expect(guards.map((g, i) => g.stats.reports - (reportsBefore[i] as number))).toEqual([1, 1, 1]);
    } finally {
      await redis.start();
    }
    // Redis is back: the instances count together again (a new client, a fresh window).
    await waitFor(() => guards.every((g) => g.stats.storeAvailable), {
      timeoutMs: 10_000,
      message: 'every guard to see the store up',
    });
    const through = passed([...(await spread(ports, '127.0.0.6', 150)).values()].flat());
    console.log(`after Redis came back: ${through} of 150 through`);
    // The first scripts after a restart are loaded again (NOSCRIPT, then EVAL): replies come later.
    expect(through).toBeLessThanOrEqual(RATE + 2 * INSTANCES);
  });
});
