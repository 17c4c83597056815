import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/types.js';
import { mergeDecision } from '../../src/stores/merge-decision.js';
import type { Store, StoreMessage } from '../../src/stores/store.js';

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

/** What putting `decisions` one after the other on top of `existing` leaves, per the contract. */
function mergeInOrder(existing: Decision[], decisions: Decision[]): Decision[] {
  const table = new Map(existing.map((d) => [d.target, d]));
  return decisions.map((d) => {
    const stored = mergeDecision(table.get(d.target), d);
    table.set(d.target, stored);
    return stored;
  });
}

/** Resolves with the first `count` messages `store` emits, or rejects after `timeoutMs`. */
export function collectMessages(store: Store, count: number, timeoutMs = 5000): Promise<StoreMessage[]> {
  return new Promise((resolve, reject) => {
    const received: StoreMessage[] = [];
    const timer = setTimeout(() => {
      store.off('message', onMessage);
      reject(new Error(`received ${received.length} of ${count} messages within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: StoreMessage) => {
      received.push(message);
      if (received.length < count) return;
      clearTimeout(timer);
      store.off('message', onMessage);
      resolve(received);
    };
    store.on('message', onMessage);
  });
}

/** `count` distinct IPv4 targets, 10.x.y.z. */
function targets(count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, n) => {
    const i = n + offset;
    return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  });
}

export interface StoreContractOptions {
  /**
   * For shared stores: another unopened store on the same data (another instance), to check that
   * writes are announced to it.
   */
  peer?: (store: Store) => Promise<Store>;
}

/**
 * The behaviour every store must share. `make` returns a fresh, unopened store that sees no data
 * from earlier tests (its own file, or its own Redis key prefix).
 */
export function storeContract(
  name: string,
  make: () => Promise<Store>,
  options: StoreContractOptions = {},
): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    const peers: Store[] = [];
    beforeEach(async () => {
      store = await make();
      await store.open();
    });
    afterEach(async () => {
      await Promise.all(peers.splice(0).map((peer) => peer.close()));
      await store.close();
    });

    async function openPeer(): Promise<Store> {
      if (options.peer === undefined) throw new Error(`${name}: no peer factory`);
      const peer = await options.peer(store);
      peers.push(peer);
      await peer.open();
      return peer;
    }

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

    it('putDecisions merges like putDecision, one after the other in input order', async () => {
      const existing = [
        decision('192.0.2.20', { expiresAt: T0 + 3_600_000, banCount: 3 }),
        decision('192.0.2.21', { dryRun: true }),
        decision('192.0.2.22', { expiresAt: T0 + 1000 }),
      ];
      for (const d of existing) await store.putDecision(d);
      const batch = [
        decision('192.0.2.23', { reason: 'new "one" \\ ✓' }),
        // shorter: keeps the longer expiry and the higher count
        decision('192.0.2.20', { expiresAt: T0 + 60_000, banCount: 1, reason: 'again' }),
        // enforced replaces a dry-run one; then a dry-run one does not downgrade it
        decision('192.0.2.21', { banCount: 2 }),
        decision('192.0.2.21', { dryRun: true, expiresAt: null }),
        // the old one had expired when this started: replaced outright
        decision('192.0.2.22', { startedAt: T0 + 2000, expiresAt: T0 + 3000 }),
        // the same target twice in one batch: the permanent one is never shortened
        decision('192.0.2.24', { expiresAt: null, jail: 'manual' }),
        decision('192.0.2.24', { expiresAt: T0 + 10 }),
      ];
      const stored = await store.putDecisions(batch);
      expect(stored).toEqual(mergeInOrder(existing, batch));
      expect(stored[1]).toMatchObject({ expiresAt: T0 + 3_600_000, banCount: 3, reason: 'again' });
      expect(stored[3]).toMatchObject({ dryRun: false, banCount: 2 });
      expect(stored[6]).toMatchObject({ expiresAt: null });

      const active = await load(store, T0 + 2500);
      expect(active.map((d) => d.target)).toEqual([
        '192.0.2.20',
        '192.0.2.21',
        '192.0.2.22',
        '192.0.2.23',
        '192.0.2.24',
      ]);
      expect(active.find((d) => d.target === '192.0.2.24')).toEqual(stored[6]);
      // history: non-dry-run jail decisions only (not manual, not dry-run)
      expect(await store.countBans('192.0.2.20', null, 0)).toBe(2);
      expect(await store.countBans('192.0.2.21', 'sshd', 0)).toBe(1);
      expect(await store.countBans('192.0.2.24', null, 0)).toBe(1);
      expect(await store.putDecisions([])).toEqual([]);
    });

    it('putDecisions and deleteDecisions keep input order across a large batch', async () => {
      const many = targets(2500).map((target, i) => decision(target, { expiresAt: T0 + 10_000 + i }));
      // the first target again near the end (another chunk, for stores that chunk): merged in order
      many.push(decision(many[0]?.target as string, { expiresAt: T0 + 5000, banCount: 7 }));
      const stored = await store.putDecisions(many);
      expect(stored).toEqual(mergeInOrder([], many));
      expect(stored.at(-1)).toMatchObject({ expiresAt: T0 + 10_000, banCount: 7 });
      expect(await load(store, T0)).toHaveLength(2500);

      const gone = [...targets(1200), '192.0.2.99', ...targets(3, 1)];
      const removed = await store.deleteDecisions(gone);
      expect(removed).toHaveLength(gone.length);
      expect(removed.slice(0, 1200).map((d) => d?.target)).toEqual(targets(1200));
      expect(removed[0]).toEqual(stored.at(-1));
      // not there, or removed earlier in the same batch
      expect(removed.slice(1200)).toEqual([undefined, undefined, undefined, undefined]);
      expect((await load(store, T0)).map((d) => d.target)).toEqual(
        targets(1300, 1200).sort((a, b) => a.localeCompare(b)),
      );
      expect(await store.deleteDecisions([])).toEqual([]);
    });

    // Only shared stores (Redis) have other instances to tell: the others do not declare it.
    if (options.peer !== undefined) {
      it('announces batch writes to other instances, one message per target, in order', async () => {
        expect(store.shared).toBe(true);
        const peer = await openPeer();
        const echoed: StoreMessage[] = [];
        store.on('message', (m) => echoed.push(m));
        const batch = targets(1100).map((target) => decision(target));
        const arrived = collectMessages(peer, batch.length);
        const stored = await store.putDecisions(batch);
        expect(await arrived).toEqual(stored.map((d) => ({ type: 'ban', decision: d })));

        const gone = [...targets(600), '192.0.2.99'];
        const unbans = collectMessages(peer, gone.length);
        await store.deleteDecisions(gone);
        expect(await unbans).toEqual(gone.map((target) => ({ type: 'unban', target })));
        // the peer sees the writer's data; the writer never hears its own messages
        expect(await load(peer, T0)).toHaveLength(500);
        // Kept: a negative with no event to wait for; the peer has had every message, echoes would be in.
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(echoed).toEqual([]);
      });
    }

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
