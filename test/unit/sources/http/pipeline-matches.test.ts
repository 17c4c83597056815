import { afterEach, describe, expect, it } from 'vitest';
import type { PortcullisOptions } from '../../../../src/config/schema.js';
import { createManualClock } from '../../../../src/core/clock.js';
import type { Decision } from '../../../../src/core/types.js';
import { createGuard, type Guard } from '../../../../src/guard.js';
import { createHttpPipeline } from '../../../../src/sources/http/pipeline.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';
import { event } from '../../../helpers/http-events.js';

let guards: Guard[] = [];
afterEach(async () => {
  await Promise.all(guards.map((g) => g.close()));
  guards = [];
});

async function probeJail(actions: unknown[]) {
  const clock = createManualClock();
  const options = {
    jails: {
      probe: {
        source: 'http',
        filter: { status: 404 },
        maxretry: 2,
        ignoreip: [],
        ignoreself: false,
        actions,
      },
    },
  } as PortcullisOptions;
  const guard = await createGuard(options, { clock, store: new MemoryStore(), env: {} });
  guards.push(guard);
  const bans: Decision[] = [];
  guard.subscribe({ ban: (decision) => bans.push(decision) });
  return { guard, clock, bans, pipeline: createHttpPipeline(guard) };
}

describe('the HTTP pipeline: the requests of a ban', () => {
  it('announces each request as `METHOD URL STATUS "UA"`, the raw target as sent', async () => {
    const { clock, bans, pipeline } = await probeJail([{ webhook: { url: 'https://hooks.example/x' } }]);
    await pipeline.observe(event({ status: 404, url: '/wp-login.php', timeMs: clock.now() }));
    await pipeline.observe(
      event({
        status: 404,
        method: 'POST',
        url: '/x?q=%3Cscript%3E<!channel>',
        userAgent: 'evil "agent" @everyone',
        timeMs: clock.now(),
      }),
    );
    expect(bans).toHaveLength(1);
    expect(bans[0]?.matches).toEqual([
      'GET /wp-login.php 404 "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"',
      'POST /x?q=%3Cscript%3E<!channel> 404 "evil "agent" @everyone"',
    ]);
  });

  it('builds nothing for a jail whose actions do not show it', async () => {
    const { clock, bans, pipeline } = await probeJail([{ nftables: {} }]);
    for (let i = 0; i < 2; i++) await pipeline.observe(event({ status: 404, timeMs: clock.now() }));
    expect(bans).toHaveLength(1);
    expect(bans[0]).not.toHaveProperty('matches');
  });
});
