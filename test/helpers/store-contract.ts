import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/types.js';
import type { Store } from '../../src/stores/store.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

export function decision(target: string, overrides: Partial<Decision> = {}): Decision {
  return {
    target,
    jail: 'sshd',
    reason: 'test',
    startedAt: T0,
    expiresAt: T0 + 3_600_000,
    banCount: 1,
    dryRun: false,
    origin: 'test:1',
    ...overrides,
  };
}

async function load(store: Store, nowMs: number): Promise<Decision[]> {
  const all: Decision[] = [];
  await store.loadDecisions(nowMs, (batch) => all.push(...batch));
  return all.sort((a, b) => a.target.localeCompare(b.target));
}

/**
 * The behaviour every store must share. `make` returns a fresh, unopened store that sees no data
 * from earlier tests (its own file, or its own Redis key prefix).
 */
export function storeContract(name: string, make: () => Promise<Store>): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await make();
      await store.open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('reaches maxretry on exactly the maxretry-th failure inside findtime and resets', async () => {
      const base = { jail: 'sshd', key: '192.0.2.7', weight: 1, findTimeMs: 600_000, maxRetry: 3 };
      expect(await store.addFailure({ ...base, timeMs: T0 })).toEqual({ count: 1, reached: false });
      expect(await store.addFailure({ ...base, timeMs: T0 + 1000 })).toEqual({ count: 2, reached: false });
      expect(await store.addFailure({ ...base, timeMs: T0 + 2000 })).toEqual({ count: 3, reached: true });
      // cleared by reaching
      expect(await store.addFailure({ ...base, timeMs: T0 + 3000 })).toEqual({ count: 1, reached: false });
    });

    it('drops failures older than findtime', async () => {
      const base = { jail: 'sshd', key: '192.0.2.8', weight: 1, findTimeMs: 600_000, maxRetry: 3 };
      await store.addFailure({ ...base, timeMs: T0 });
      await store.addFailure({ ...base, timeMs: T0 + 300_000 });
      // exactly findtime after the first: the first no longer counts
      expect(await store.addFailure({ ...base, timeMs: T0 + 600_000 })).toEqual({ count: 2, reached: false });
    });

    it('counts weights and keeps jails and keys apart', async () => {
      const base = { key: '192.0.2.9', findTimeMs: 600_000, maxRetry: 5, timeMs: T0 };
      expect(await store.addFailure({ ...base, jail: 'a', weight: 3 })).toEqual({ count: 3, reached: false });
      expect(await store.addFailure({ ...base, jail: 'b', weight: 1 })).toEqual({ count: 1, reached: false });
      expect(await store.addFailure({ ...base, jail: 'a', key: '192.0.2.10', weight: 1 })).toEqual({
        count: 1,
        reached: false,
      });
      expect(await store.addFailure({ ...base, jail: 'a', weight: 2 })).toEqual({ count: 5, reached: true });
    });

    it('clearFailures forgets a client', async () => {
      const base = {
        jail: 'sshd',
        key: '192.0.2.11',
        weight: 1,
        findTimeMs: 600_000,
        maxRetry: 3,
        timeMs: T0,
      };
      await store.addFailure(base);
      await store.clearFailures('sshd', '192.0.2.11');
      expect(await store.addFailure(base)).toEqual({ count: 1, reached: false });
    });

    it('stores, merges, lists and deletes decisions', async () => {
      await store.putDecision(decision('192.0.2.1'));
      await store.putDecision(decision('10.0.0.0/8', { jail: 'manual', expiresAt: null }));
      await store.putDecision(decision('2001:db8::/64', { expiresAt: T0 + 1000 }));
      // a shorter ban does not shorten a longer one
      const merged = await store.putDecision(decision('192.0.2.1', { expiresAt: T0 + 60_000, banCount: 2 }));
      expect(merged.expiresAt).toBe(T0 + 3_600_000);
      expect(merged.banCount).toBe(2);

      const active = await load(store, T0 + 5000);
      expect(active.map((d) => d.target)).toEqual(['10.0.0.0/8', '192.0.2.1']);
      expect(active[0]?.expiresAt).toBeNull();
      expect(active[1]).toMatchObject({ jail: 'sshd', banCount: 2, dryRun: false, origin: 'test:1' });

      expect((await store.deleteDecision('192.0.2.1'))?.target).toBe('192.0.2.1');
      expect(await store.deleteDecision('192.0.2.1')).toBeUndefined();
      expect((await load(store, T0)).map((d) => d.target)).toEqual(['10.0.0.0/8', '2001:db8::/64']);
    });

    it('replaces a decision that had expired when the new one started', async () => {
      await store.putDecision(decision('192.0.2.6', { expiresAt: T0 + 1000, banCount: 4 }));
      const fresh = await store.putDecision(
        decision('192.0.2.6', { startedAt: T0 + 5000, expiresAt: T0 + 6000, banCount: 1 }),
      );
      expect(fresh).toMatchObject({ expiresAt: T0 + 6000, banCount: 1 });
    });

    it('keeps dry-run decisions apart from enforced ones', async () => {
      await store.putDecision(decision('192.0.2.2', { dryRun: true }));
      expect((await load(store, T0))[0]?.dryRun).toBe(true);
      await store.putDecision(decision('192.0.2.2'));
      const after = await store.putDecision(decision('192.0.2.2', { dryRun: true }));
      expect(after.dryRun).toBe(false);
    });

    it('counts ban history per jail and overall, and purges it', async () => {
      await store.putDecision(decision('192.0.2.3', { startedAt: T0 }));
      await store.putDecision(decision('192.0.2.3', { startedAt: T0 + 1000, jail: 'web' }));
      await store.putDecision(decision('192.0.2.3', { startedAt: T0 + 2000, jail: 'manual' }));
      await store.putDecision(decision('192.0.2.3', { startedAt: T0 + 3000, dryRun: true }));
      expect(await store.countBans('192.0.2.3', 'sshd', T0 - 1)).toBe(1);
      expect(await store.countBans('192.0.2.3', null, T0 - 1)).toBe(2);
      expect(await store.countBans('192.0.2.3', null, T0 + 500)).toBe(1);
      await store.purge(T0 + 10_000, T0 + 500);
      expect(await store.countBans('192.0.2.3', null, 0)).toBe(1);
    });

    it('purge removes expired decisions', async () => {
      await store.putDecision(decision('192.0.2.4', { expiresAt: T0 + 1000 }));
      await store.putDecision(decision('192.0.2.5', { expiresAt: null }));
      await store.purge(T0 + 2000, 0);
      expect((await load(store, 0)).map((d) => d.target)).toEqual(['192.0.2.5']);
    });

    it('saves log positions', async () => {
      expect(await store.getPosition('auth')).toBeUndefined();
      await store.setPosition('auth', { offset: 1234, inode: 99, headHash: 'abc' });
      expect(await store.getPosition('auth')).toEqual({ offset: 1234, inode: 99, headHash: 'abc' });
    });

    it('close is idempotent', async () => {
      await store.close();
      await store.close();
      store = await make();
      await store.open();
    });
  });
}
