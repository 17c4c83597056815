import { afterEach, describe, expect, it } from 'vitest';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createManualClock, type ManualClock } from '../../src/core/clock.js';
import type { Decision } from '../../src/core/types.js';
import { createGuard, type Guard, type UnbanEvent } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';

const MIN = 60_000;
let guards: Guard[] = [];

async function guardWith(
  options: PortcullisOptions,
  clock: ManualClock = createManualClock(),
): Promise<Guard> {
  const guard = await createGuard(options, { clock, store: new MemoryStore(), env: {}, random: () => 0.5 });
  guards.push(guard);
  return guard;
}

afterEach(async () => {
  await Promise.all(guards.map((g) => g.close()));
  guards = [];
});

const sshd = (extra: Record<string, unknown> = {}): PortcullisOptions => ({
  jails: { sshd: { maxretry: 3, findtime: '10m', bantime: '1h', ignoreip: [], ignoreself: false, ...extra } },
});

describe('jail thresholds', () => {
  it('bans on exactly the maxretry-th failure within findtime, and only that client', async () => {
    const clock = createManualClock();
    const guard = await guardWith(sshd(), clock);
    expect((await guard.report('192.0.2.7', { jail: 'sshd' })).outcome).toBe('counted');
    clock.advance(MIN);
    expect(await guard.report('192.0.2.7', { jail: 'sshd' })).toEqual({ outcome: 'counted', failures: 2 });
    expect(guard.isBanned('192.0.2.7')).toBe(false);
    clock.advance(MIN);
    const third = await guard.report('192.0.2.7', { jail: 'sshd' });
    expect(third.outcome).toBe('banned');
    expect(third.decision).toMatchObject({ target: '192.0.2.7', jail: 'sshd', banCount: 1, dryRun: false });
    expect(third.decision?.expiresAt).toBe(clock.now() + 60 * MIN);
    expect(guard.isBanned('192.0.2.7')).toBe(true);
    expect(guard.isBanned('::ffff:192.0.2.7')).toBe(true);
    expect(guard.isBanned('192.0.2.8')).toBe(false);
    expect((await guard.report('192.0.2.7', { jail: 'sshd' })).outcome).toBe('already-banned');
  });

  it('does not ban when the same failures are spread wider than findtime', async () => {
    const clock = createManualClock();
    const guard = await guardWith(sshd(), clock);
    for (let i = 0; i < 6; i++) {
      expect((await guard.report('192.0.2.7', { jail: 'sshd' })).outcome).toBe('counted');
      clock.advance(5 * MIN); // two per findtime at most
    }
    expect(guard.isBanned('192.0.2.7')).toBe(false);
  });

  it('a failure exactly findtime after the first no longer counts the first', async () => {
    const clock = createManualClock();
    const guard = await guardWith(sshd(), clock);
    await guard.report('192.0.2.7', { jail: 'sshd' });
    clock.advance(5 * MIN);
    await guard.report('192.0.2.7', { jail: 'sshd' });
    clock.advance(5 * MIN);
    expect(await guard.report('192.0.2.7', { jail: 'sshd' })).toEqual({ outcome: 'counted', failures: 2 });
    clock.advance(MIN);
    expect((await guard.report('192.0.2.7', { jail: 'sshd' })).outcome).toBe('banned');
  });

  it('uses the event time (a log line) rather than the clock', async () => {
    const clock = createManualClock();
    const guard = await guardWith(sshd(), clock);
    const old = clock.now() - 30 * MIN;
    await guard.report('192.0.2.9', { jail: 'sshd', timeMs: old });
    await guard.report('192.0.2.9', { jail: 'sshd', timeMs: old + 11 * MIN });
    expect((await guard.report('192.0.2.9', { jail: 'sshd', timeMs: old + 22 * MIN })).outcome).toBe(
      'counted',
    );
  });

  it('weights count as several failures', async () => {
    const guard = await guardWith(sshd());
    expect((await guard.report('192.0.2.7', { jail: 'sshd', weight: 2 })).failures).toBe(2);
    expect((await guard.report('192.0.2.7', { jail: 'sshd' })).outcome).toBe('banned');
  });

  it('lifts the ban after bantime and counts afresh', async () => {
    const clock = createManualClock();
    const guard = await guardWith(sshd(), clock);
    const unbans: UnbanEvent[] = [];
    guard.on('unban', (event) => unbans.push(event));
    for (let i = 0; i < 3; i++) await guard.report('192.0.2.7', { jail: 'sshd' });
    clock.advance(60 * MIN - 1);
    expect(guard.isBanned('192.0.2.7')).toBe(true);
    clock.advance(1);
    expect(guard.isBanned('192.0.2.7')).toBe(false);
    guard.tick();
    expect(unbans).toEqual([{ target: '192.0.2.7', jail: 'sshd', reason: 'expired' }]);
    expect((await guard.report('192.0.2.7', { jail: 'sshd' })).failures).toBe(1);
  });

  it('counts and bans IPv6 clients per /64 by default, per configured prefix otherwise', async () => {
    const guard = await guardWith({
      jails: {
        sshd: { maxretry: 2, ignoreip: [], ignoreself: false },
        exact: { maxretry: 2, ignoreip: [], ignoreself: false, ipv6_prefix: 128 },
      },
    });
    await guard.report('2001:db8:1:2::1', { jail: 'sshd' });
    const ban = await guard.report('2001:db8:1:2:ffff::99', { jail: 'sshd' });
    expect(ban.decision?.target).toBe('2001:db8:1:2::/64');
    expect(guard.isBanned('2001:db8:1:2::abcd')).toBe(true);
    expect(guard.isBanned('2001:db8:1:3::1')).toBe(false);

    await guard.report('2001:db8:9::1', { jail: 'exact' });
    expect((await guard.report('2001:db8:9::2', { jail: 'exact' })).outcome).toBe('counted');
    expect((await guard.report('2001:db8:9::1', { jail: 'exact' })).decision?.target).toBe('2001:db8:9::1');
    expect(guard.isBanned('2001:db8:9::2')).toBe(false);
  });
});

describe('ignoreip and ignoreself', () => {
  it('never counts nor bans ignored v4, v6 and mapped-v4 clients', async () => {
    const guard = await guardWith(
      sshd({ maxretry: 1, ignoreip: ['10.0.0.0/8', '2001:db8:abcd::/48', '192.0.2.1'] }),
    );
    for (const ip of ['10.1.2.3', '::ffff:10.9.9.9', '2001:db8:abcd:1::5', '192.0.2.1', '::ffff:c000:201']) {
      expect((await guard.report(ip, { jail: 'sshd' })).outcome, ip).toBe('ignored');
      expect(guard.isBanned(ip)).toBe(false);
    }
    expect((await guard.report('11.0.0.1', { jail: 'sshd' })).outcome).toBe('banned');
  });

  it('loopback is ignored by default and ignoreself covers the host addresses', async () => {
    const guard = await guardWith({ jails: { sshd: { maxretry: 1 } } });
    expect((await guard.report('127.0.0.1', { jail: 'sshd' })).outcome).toBe('ignored');
    expect((await guard.report('::1', { jail: 'sshd' })).outcome).toBe('ignored');
  });

  it('an ignored client stays unbanned even when it would reach maxretry in another jail form', async () => {
    const guard = await guardWith({
      defaults: { ignoreip: ['198.51.100.0/24'], ignoreself: false, maxretry: 1 },
      jails: { a: {}, b: { ignoreip: [] } },
    });
    expect((await guard.report('198.51.100.5', { jail: 'a' })).outcome).toBe('ignored');
    expect((await guard.report('198.51.100.5', { jail: 'b' })).outcome).toBe('banned');
  });
});

describe('bad input', () => {
  it('garbage addresses are counted as invalid and never throw', async () => {
    const guard = await guardWith(sshd());
    for (const ip of [
      '',
      'not-an-ip',
      '999.1.1.1',
      '127.1',
      '1.2.3.4.5',
      '::ffff:1.2.3',
      '\u0000',
      'x'.repeat(10_000),
    ]) {
      expect((await guard.report(ip, { jail: 'sshd' })).outcome).toBe('invalid-ip');
      expect(guard.isBanned(ip)).toBe(false);
    }
    expect(guard.stats.invalidIps).toBe(8);
  });

  it('rejects an unknown jail with a coded error', async () => {
    const guard = await guardWith(sshd());
    await expect(guard.report('192.0.2.1', { jail: 'nope' })).rejects.toMatchObject({
      code: 'PC_ERR_UNKNOWN_JAIL',
    });
  });
});

describe('bantime_increment', () => {
  it('doubles the ban of a repeat offender with factor and caps it at maxtime', async () => {
    const clock = createManualClock();
    const guard = await guardWith(
      sshd({ maxretry: 1, bantime: '10m', bantime_increment: { enabled: true, factor: 1, maxtime: '1h' } }),
      clock,
    );
    const lengths: number[] = [];
    for (let i = 0; i < 5; i++) {
      const result = await guard.report('192.0.2.7', { jail: 'sshd' });
      const decision = result.decision as Decision;
      lengths.push(((decision.expiresAt as number) - decision.startedAt) / MIN);
      expect(decision.banCount).toBe(i + 1);
      clock.set(decision.expiresAt as number);
      guard.tick();
    }
    expect(lengths).toEqual([10, 20, 40, 60, 60]);
  });

  it('uses the multipliers list and only counts history within dbpurgeage', async () => {
    const clock = createManualClock();
    const guard = await guardWith(
      {
        store: { memory: true, dbpurgeage: '1d' },
        jails: {
          sshd: {
            maxretry: 1,
            bantime: '1m',
            ignoreip: [],
            ignoreself: false,
            bantime_increment: { enabled: true, multipliers: [1, 5, 30] },
          },
        },
      },
      clock,
    );
    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      const decision = (await guard.report('192.0.2.7', { jail: 'sshd' })).decision as Decision;
      lengths.push(((decision.expiresAt as number) - decision.startedAt) / MIN);
      clock.set(decision.expiresAt as number);
      guard.tick();
    }
    expect(lengths).toEqual([1, 5, 30, 30]);
    clock.advance(25 * 60 * MIN);
    const fresh = (await guard.report('192.0.2.7', { jail: 'sshd' })).decision as Decision;
    expect(fresh.banCount).toBe(1);
    expect((fresh.expiresAt as number) - fresh.startedAt).toBe(MIN);
  });

  it('overalljails counts bans from every jail', async () => {
    const clock = createManualClock();
    const guard = await guardWith(
      {
        defaults: { maxretry: 1, bantime: '10m', ignoreip: [], ignoreself: false },
        jails: {
          web: {},
          sshd: { bantime_increment: { enabled: true, overalljails: true } },
          solo: { bantime_increment: { enabled: true } },
        },
      },
      clock,
    );
    const first = (await guard.report('192.0.2.7', { jail: 'web' })).decision as Decision;
    clock.set(first.expiresAt as number);
    guard.tick();
    const second = (await guard.report('192.0.2.7', { jail: 'sshd' })).decision as Decision;
    expect(second.banCount).toBe(2);
    expect((second.expiresAt as number) - second.startedAt).toBe(20 * MIN);
    clock.set(second.expiresAt as number);
    guard.tick();
    const third = (await guard.report('192.0.2.7', { jail: 'solo' })).decision as Decision;
    expect(third.banCount).toBe(1);
  });

  it('adds at most rndtime of random time', async () => {
    const guard = await guardWith(
      sshd({ maxretry: 1, bantime: '10m', bantime_increment: { enabled: true, rndtime: '4m' } }),
    );
    const decision = (await guard.report('192.0.2.7', { jail: 'sshd' })).decision as Decision;
    expect((decision.expiresAt as number) - decision.startedAt).toBe(12 * MIN); // random() = 0.5
  });

  it('draws rndtime once: the ban enforced at once and the one announced end together', async () => {
    const draws = [0.9, 0.1, 0.1, 0.1];
    const guard = await createGuard(
      sshd({ maxretry: 1, bantime: '10m', bantime_increment: { enabled: true, rndtime: '10m' } }),
      { clock: createManualClock(), store: new MemoryStore(), env: {}, random: () => draws.shift() ?? 0 },
    );
    guards.push(guard);
    const decision = (await guard.report('192.0.2.7', { jail: 'sshd' })).decision as Decision;
    expect((decision.expiresAt as number) - decision.startedAt).toBe(19 * MIN);
    expect(guard.lookup('192.0.2.7')?.expiresAt).toBe(decision.expiresAt);
  });

  it('a ban lifted while its earlier bans are being counted stays lifted', async () => {
    const store = new MemoryStore();
    let release: () => void = () => {};
    const counting = new Promise<void>((resolve) => {
      release = resolve;
    });
    const countBans = store.countBans.bind(store);
    store.countBans = async (...args) => {
      await counting;
      return countBans(...args);
    };
    const guard = await createGuard(
      sshd({ maxretry: 1, bantime: '10m', bantime_increment: { enabled: true } }),
      { clock: createManualClock(), store, env: {}, random: () => 0.5 },
    );
    guards.push(guard);
    const bans: Decision[] = [];
    guard.on('ban', (decision) => bans.push(decision));
    const report = guard.report('192.0.2.7', { jail: 'sshd' });
    // Enforced at once, before its length is known.
    expect(guard.isBanned('192.0.2.7')).toBe(true);
    await guard.unban('192.0.2.7');
    release();
    expect((await report).outcome).toBe('counted');
    expect(guard.isBanned('192.0.2.7')).toBe(false);
    expect(bans).toEqual([]);
    expect(await guard.decisions()).toEqual([]);
  });
});

describe('manual bans of ranges', () => {
  it('refuses a range wider than /8 or /32, and one with bits past its prefix, unless forced', async () => {
    const guard = await guardWith(sshd());
    await expect(guard.ban('192.0.2.7/0')).rejects.toThrow(/bits set past its prefix.*0\.0\.0\.0\/0/);
    await expect(guard.ban('0.0.0.0/0')).rejects.toThrow(/wider than \/8/);
    await expect(guard.ban('2001::/16')).rejects.toThrow(/wider than \/32/);
    await expect(guard.ban('192.0.2.7/24')).rejects.toThrow(/write 192\.0\.2\.0\/24/);
    expect(guard.isBanned('198.51.100.1')).toBe(false);
    expect(await guard.decisions()).toEqual([]);
    // Ranges of sensible width, and a forced wide one (which an unban lifts without force).
    await guard.ban('10.0.0.0/8');
    await guard.ban('2001:db8::/32');
    expect(guard.isBanned('10.200.0.1')).toBe(true);
    await guard.ban('192.0.2.7/0', { force: true });
    expect(guard.isBanned('198.51.100.1')).toBe(true);
    expect(await guard.unban('0.0.0.0/0')).toBe(true);
    expect(guard.isBanned('198.51.100.1')).toBe(false);
  });
});

describe('permanent bans and dry runs', () => {
  it('bantime -1 bans forever', async () => {
    const clock = createManualClock();
    const guard = await guardWith(sshd({ maxretry: 1, bantime: -1 }), clock);
    const decision = (await guard.report('192.0.2.7', { jail: 'sshd' })).decision as Decision;
    expect(decision.expiresAt).toBeNull();
    clock.advance(10 * 365 * 24 * 60 * MIN);
    guard.tick();
    expect(guard.isBanned('192.0.2.7')).toBe(true);
  });

  it('a dry-run jail records "would ban" without enforcing it', async () => {
    const guard = await guardWith(sshd({ maxretry: 2, dryrun: true }));
    const would: Decision[] = [];
    const bans: Decision[] = [];
    guard.on('wouldBan', (d) => would.push(d));
    guard.on('ban', (d) => bans.push(d));
    await guard.report('192.0.2.7', { jail: 'sshd' });
    const result = await guard.report('192.0.2.7', { jail: 'sshd' });
    expect(result.outcome).toBe('would-ban');
    expect(guard.isBanned('192.0.2.7')).toBe(false);
    expect(would.map((d) => d.target)).toEqual(['192.0.2.7']);
    expect(bans).toEqual([]);
    expect((await guard.report('192.0.2.7', { jail: 'sshd' })).outcome).toBe('already-banned');
    expect((await guard.decisions()).map((d) => [d.target, d.dryRun])).toEqual([['192.0.2.7', true]]);
  });
});

describe('manual decisions', () => {
  it('bans and unbans addresses and CIDR ranges', async () => {
    const clock = createManualClock();
    const guard = await guardWith(sshd(), clock);
    const range = await guard.ban('203.0.113.0/24', { duration: '2h', reason: 'abuse report' });
    expect(range).toMatchObject({ target: '203.0.113.0/24', jail: 'manual', reason: 'abuse report' });
    expect(range.expiresAt).toBe(clock.now() + 120 * MIN);
    expect(guard.isBanned('203.0.113.77')).toBe(true);
    await guard.ban('2001:db8::/32', { duration: -1 });
    expect(guard.isBanned('2001:db8:ffff::1')).toBe(true);
    expect(await guard.unban('203.0.113.0/24')).toBe(true);
    expect(guard.isBanned('203.0.113.77')).toBe(false);
    expect(await guard.unban('203.0.113.0/24')).toBe(false);
    await expect(guard.ban('nonsense')).rejects.toMatchObject({ code: 'PC_ERR_INVALID_IP' });
    for (const duration of [Number.NaN, -5, 0, Number.POSITIVE_INFINITY, 'soon']) {
      await expect(guard.ban('192.0.2.200', { duration })).rejects.toMatchObject({
        code: 'PC_ERR_INVALID_DURATION',
      });
    }
    expect(guard.isBanned('192.0.2.200')).toBe(false);
    expect((await guard.decisions()).map((d) => d.target)).toEqual(['2001:db8::/32']);
  });

  it('a manual ban never shortens a longer one', async () => {
    const guard = await guardWith(sshd({ maxretry: 1, bantime: '1d' }));
    const jailBan = (await guard.report('192.0.2.7', { jail: 'sshd' })).decision as Decision;
    const manual = await guard.ban('192.0.2.7', { duration: '1m' });
    expect(manual.expiresAt).toBe(jailBan.expiresAt);
    expect(guard.lookup('192.0.2.7')?.expiresAt).toBe(jailBan.expiresAt);
  });

  it('is unusable after close, and close is idempotent', async () => {
    const guard = await guardWith(sshd());
    await guard.close();
    await guard.close();
    await expect(guard.report('192.0.2.7', { jail: 'sshd' })).rejects.toMatchObject({
      code: 'PC_ERR_CLOSED',
    });
  });
});

describe('unban by an address inside a banned client network', () => {
  it('lifts the /64 ban of an IPv6 client by any of its addresses; a wider range needs its own text', async () => {
    const guard = await guardWith(sshd({ maxretry: 2 }));
    await guard.report('2001:db8::1', { jail: 'sshd' });
    const banned = await guard.report('2001:db8::2', { jail: 'sshd' });
    expect(banned.decision?.target).toBe('2001:db8::/64');
    expect(guard.lookup('2001:db8::5')?.target).toBe('2001:db8::/64');
    expect(await guard.unban('2001:db8::5')).toBe(true);
    expect(guard.isBanned('2001:db8::1')).toBe(false);
    expect(await guard.decisions()).toEqual([]);

    // A manual range is not a client key: an address inside it does not lift it.
    await guard.ban('10.0.0.0/8');
    await guard.ban('2001:db8:1::/48');
    expect(await guard.unban('10.1.2.3')).toBe(false);
    expect(await guard.unban('2001:db8:1::5')).toBe(false);
    expect(guard.isBanned('10.1.2.3')).toBe(true);
    expect(guard.isBanned('2001:db8:1::5')).toBe(true);
    expect(await guard.unban('10.0.0.0/8')).toBe(true);
  });
});
