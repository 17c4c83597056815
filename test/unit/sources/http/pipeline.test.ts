import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../../src/config/load.js';
import type { PortcullisOptions } from '../../../../src/config/schema.js';
import { createManualClock } from '../../../../src/core/clock.js';
import { createGuard, type Guard } from '../../../../src/guard.js';
import { createHttpPipeline } from '../../../../src/sources/http/pipeline.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';
import { event } from '../../../helpers/http-events.js';

const local = { ignoreip: [], ignoreself: false };
let guards: Guard[] = [];

afterEach(async () => {
  await Promise.all(guards.map((g) => g.close()));
  guards = [];
});

async function guardWith(options: PortcullisOptions, clock = createManualClock()): Promise<Guard> {
  const guard = await createGuard(options, { clock, store: new MemoryStore(), env: {} });
  guards.push(guard);
  return guard;
}

describe('the HTTP pipeline', () => {
  it('reports each matching jail once per exchange, with the event time', async () => {
    const clock = createManualClock();
    const guard = await guardWith(
      {
        jails: {
          auth: { source: 'http', filter: { status: 401 }, maxretry: 2, ...local },
          any4xx: { source: 'http', filter: { status: '4xx' }, maxretry: 3, ...local },
          other: { source: 'http', filter: { status: 500 }, maxretry: 1, ...local },
        },
      },
      clock,
    );
    const pipeline = createHttpPipeline(guard);
    expect(pipeline.observing).toBe(true);
    await pipeline.observe(event({ status: 401, timeMs: clock.now() }));
    await pipeline.observe(event({ status: 401, timeMs: clock.now() }));
    expect(guard.lookup('192.0.2.7')?.jail).toBe('auth');
    expect(pipeline.stats).toMatchObject({ observed: 2, failures: 4, errors: 0 });
  });

  it('distinct: counts a new value per client within findtime only', async () => {
    const clock = createManualClock();
    const guard = await guardWith(
      {
        jails: {
          probe: { source: 'http', filter: { status: 404, distinct: 'path' }, maxretry: 3, ...local },
        },
      },
      clock,
    );
    const pipeline = createHttpPipeline(guard);
    for (let i = 0; i < 10; i++)
      await pipeline.observe(event({ status: 404, url: '/same', timeMs: clock.now() }));
    await pipeline.observe(event({ status: 404, url: '/other', timeMs: clock.now() }));
    expect(guard.isBanned('192.0.2.7')).toBe(false);
    await pipeline.observe(event({ status: 404, url: '/third', timeMs: clock.now() }));
    expect(guard.isBanned('192.0.2.7')).toBe(true);
  });

  it('never rejects: unexpected errors go to onError, a closed guard is silence', async () => {
    const guard = await guardWith({ jails: { auth: { source: 'http', filter: { status: 401 }, ...local } } });
    const errors: Error[] = [];
    const pipeline = createHttpPipeline(guard, { onError: (error) => errors.push(error) });
    const broken = event({ status: 401 });
    Object.defineProperty(broken, 'status', {
      get() {
        throw new Error('boom');
      },
    });
    await expect(pipeline.observe(broken)).resolves.toBeUndefined();
    expect(errors.map((e) => e.message)).toEqual(['boom']);
    await guard.close();
    await expect(pipeline.observe(event({ status: 401 }))).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it('follows guard.reload(): new jails observe, removed ones stop', async () => {
    const guard = await guardWith({
      jails: { auth: { source: 'http', filter: { status: 401 }, maxretry: 1, ...local } },
    });
    const pipeline = createHttpPipeline(guard);
    guard.reload(
      resolveConfig(
        {
          store: { memory: true },
          jails: { errors: { source: 'http', filter: { status: 500 }, maxretry: 1, ...local } },
        },
        { env: {} },
      ),
    );
    await pipeline.observe(event({ status: 401 }));
    expect(guard.isBanned('192.0.2.7')).toBe(false);
    await pipeline.observe(event({ status: 500 }));
    expect(guard.lookup('192.0.2.7')?.jail).toBe('errors');
  });

  it('check() is synchronous and gives Retry-After from the guard clock', async () => {
    const clock = createManualClock();
    const guard = await guardWith({ jails: {} }, clock);
    const pipeline = createHttpPipeline(guard);
    expect(pipeline.check('192.0.2.7')).toBeUndefined();
    await guard.ban('192.0.2.0/24', { duration: '90s' });
    clock.advance(30_000);
    expect(pipeline.check('192.0.2.7')).toEqual({
      reason: 'banned',
      status: 403,
      retryAfterS: 60,
      jail: 'manual',
    });
    await guard.ban('198.51.100.1', { duration: -1 });
    expect(pipeline.check('198.51.100.1')?.retryAfterS).toBeUndefined();
  });

  it('fail() needs a jail when none or several could take the report', async () => {
    const none = await guardWith({ jails: { auth: { source: 'http', filter: { status: 401 } } } });
    await expect(createHttpPipeline(none).fail('192.0.2.7')).rejects.toThrow(
      /no jail takes application reports/,
    );
    const one = await guardWith({
      jails: { auth: { source: 'http', filter: { status: 401 } }, pw: { source: 'http', ...local } },
    });
    expect((await createHttpPipeline(one).fail('192.0.2.7')).outcome).toBe('counted');
    expect((await createHttpPipeline(one).fail(null)).outcome).toBe('invalid-ip');
    await expect(createHttpPipeline(one).fail('192.0.2.7', 'nope')).rejects.toMatchObject({
      code: 'PC_ERR_UNKNOWN_JAIL',
    });
  });
});
