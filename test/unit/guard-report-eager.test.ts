import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/core/clock.js';
import { ErrorCodes, isPortcullisError } from '../../src/core/errors.js';
import { createGuard, type Guard, type ReportResult } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';

let guards: Guard[] = [];

async function guardWith(jail: Record<string, unknown> = {}): Promise<Guard> {
  const guard = await createGuard(
    {
      jails: {
        sshd: {
          maxretry: 3,
          findtime: '10m',
          bantime: '1h',
          ignoreip: ['203.0.113.0/24'],
          ignoreself: false,
          ...jail,
        },
      },
    },
    { clock: createManualClock(), store: new MemoryStore(), env: {}, random: () => 0.5 },
  );
  guards.push(guard);
  return guard;
}

afterEach(async () => {
  await Promise.all(guards.map((guard) => guard.close()));
  guards = [];
});

describe('guard.reportEager (the synchronous report path of log jails)', () => {
  it('answers at once what only counts, is ignored or is not an address; a ban comes as a promise', async () => {
    const guard = await guardWith();
    const told: [string, ReportResult][] = [];
    guard.onReport((ip, _options, result) => told.push([ip, result]));

    expect(guard.reportEager('192.0.2.7', { jail: 'sshd' })).toEqual({ outcome: 'counted', failures: 1 });
    expect(guard.reportEager('192.0.2.7', { jail: 'sshd' })).toEqual({ outcome: 'counted', failures: 2 });
    expect(guard.reportEager('203.0.113.9', { jail: 'sshd' })).toEqual({ outcome: 'ignored' });
    expect(guard.reportEager('not an ip', { jail: 'sshd' })).toEqual({ outcome: 'invalid-ip' });
    // Synchronous answers are told synchronously, in order.
    expect(told.map(([ip, result]) => [ip, result.outcome])).toEqual([
      ['192.0.2.7', 'counted'],
      ['192.0.2.7', 'counted'],
      ['203.0.113.9', 'ignored'],
      ['not an ip', 'invalid-ip'],
    ]);

    const ban = guard.reportEager('192.0.2.7', { jail: 'sshd' });
    expect(ban).toBeInstanceOf(Promise);
    // Enforced before the promise settles: the next request is refused at once.
    expect(guard.isBanned('192.0.2.7')).toBe(true);
    expect(guard.reportEager('192.0.2.7', { jail: 'sshd' })).toEqual({ outcome: 'already-banned' });
    expect((await ban).outcome).toBe('banned');
    await guard.idle();
    expect(told.map(([, result]) => result.outcome).slice(4)).toEqual(['already-banned', 'banned']);
    expect(guard.stats).toMatchObject({ reports: 6, bans: 1, invalidIps: 1 });
  });

  it('counts exactly what report() counts', async () => {
    const eager = await guardWith({ maxretry: 4 });
    const plain = await guardWith({ maxretry: 4 });
    const ips = [
      '192.0.2.1',
      '192.0.2.2',
      '192.0.2.1',
      '2001:db8::1',
      '2001:db8::2',
      '192.0.2.1',
      '192.0.2.1',
    ];
    const a: string[] = [];
    const b: string[] = [];
    for (const ip of ips) {
      a.push((await eager.reportEager(ip, { jail: 'sshd' })).outcome);
      b.push((await plain.report(ip, { jail: 'sshd' })).outcome);
    }
    expect(a).toEqual(b);
    expect(a).toEqual(['counted', 'counted', 'counted', 'counted', 'counted', 'counted', 'banned']);
  });

  it('throws (where report() rejects) for an unknown jail and after close', async () => {
    const guard = await guardWith();
    expect(() => guard.reportEager('192.0.2.7', { jail: 'nope' })).toThrow(/no jail named "nope"/);
    await expect(guard.report('192.0.2.7', { jail: 'nope' })).rejects.toThrow(/no jail named "nope"/);
    await guard.close();
    let thrown: unknown;
    try {
      guard.reportEager('192.0.2.7', { jail: 'sshd' });
    } catch (error) {
      thrown = error;
    }
    expect(isPortcullisError(thrown, ErrorCodes.CLOSED)).toBe(true);
  });
});
