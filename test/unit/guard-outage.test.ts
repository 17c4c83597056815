import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createManualClock, type ManualClock } from '../../src/core/clock.js';
import { ErrorCodes, PortcullisError } from '../../src/core/errors.js';
import type { Decision } from '../../src/core/types.js';
import { createGuard, type Guard, type UnbanEvent } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';

const MIN = 60_000;

/** A memory store that can be made unreachable, and whose writes and loads can be held. */
class FlakyStore extends MemoryStore {
  down = false;
  /** While set, putDecision(s) wait for it before writing. */
  putGate: Promise<void> | undefined;
  /** While set, loadDecisions reads the decisions, then waits for it before handing them over. */
  loadGate: Promise<void> | undefined;

  #check(): void {
    if (this.down) throw new PortcullisError(ErrorCodes.STORE_UNAVAILABLE, 'store down (test)');
  }

  override async addFailure(...args: Parameters<MemoryStore['addFailure']>) {
    this.#check();
    return super.addFailure(...args);
  }

  override async putDecision(decision: Decision): Promise<Decision> {
    this.#check();
    if (this.putGate !== undefined) await this.putGate;
    return super.putDecision(decision);
  }

  override async deleteDecision(target: string): Promise<Decision | undefined> {
    this.#check();
    return super.deleteDecision(target);
  }

  override async putDecisions(decisions: readonly Decision[]): Promise<Decision[]> {
    this.#check();
    if (this.putGate !== undefined) await this.putGate;
    return super.putDecisions(decisions);
  }

  override async deleteDecisions(targets: readonly string[]): Promise<(Decision | undefined)[]> {
    this.#check();
    return super.deleteDecisions(targets);
  }

  override async loadDecisions(nowMs: number, onBatch: (batch: Decision[]) => void): Promise<number> {
    this.#check();
    const read: Decision[] = [];
    const count = await super.loadDecisions(nowMs, (batch) => read.push(...batch));
    if (this.loadGate !== undefined) await this.loadGate;
    if (read.length > 0) onBatch(read);
    return count;
  }

  async targets(now: number): Promise<string[]> {
    const out: string[] = [];
    await super.loadDecisions(now, (batch) => out.push(...batch.map((d) => d.target)));
    return out.sort();
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

let guards: Guard[] = [];
afterEach(async () => {
  await Promise.all(guards.map((g) => g.close()));
  guards = [];
});

const options: PortcullisOptions = {
  jails: { sshd: { maxretry: 3, findtime: '10m', bantime: '1h', ignoreip: [], ignoreself: false } },
};

async function guardOn(store: FlakyStore, clock: ManualClock): Promise<Guard> {
  const guard = await createGuard(options, { clock, store, env: {}, random: () => 0.5 });
  guards.push(guard);
  return guard;
}

async function takeDown(guard: Guard, store: FlakyStore): Promise<void> {
  store.down = true;
  const down = new Promise((resolve) => guard.once('storeDown', resolve));
  store.emit('down', new PortcullisError(ErrorCodes.STORE_UNAVAILABLE, 'store down (test)'));
  await down;
}

describe('store outage and recovery', () => {
  it('writes a ban decided while the outage queue is being written', async () => {
    const clock = createManualClock();
    const store = new FlakyStore();
    const guard = await guardOn(store, clock);
    await takeDown(guard, store);
    await guard.ban('192.0.2.1');
    store.down = false;
    const held = gate();
    store.putGate = held.promise;
    const up = new Promise<void>((resolve) => guard.once('storeUp', () => resolve()));
    store.emit('up');
    await new Promise((resolve) => setImmediate(resolve));
    await guard.ban('192.0.2.2'); // the guard still counts the store as down: queued
    store.putGate = undefined;
    held.open();
    await up;
    expect(await store.targets(clock.now())).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(guard.stats.pendingWrites).toBe(0);
  });

  it('an unban made while the outage queue is being written reaches the store', async () => {
    const clock = createManualClock();
    const store = new FlakyStore();
    const guard = await guardOn(store, clock);
    await takeDown(guard, store);
    await guard.ban('192.0.2.1');
    store.down = false;
    const held = gate();
    store.putGate = held.promise;
    const up = new Promise<void>((resolve) => guard.once('storeUp', () => resolve()));
    store.emit('up');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await guard.unban('192.0.2.1')).toBe(true);
    store.putGate = undefined;
    held.open();
    await up;
    expect(guard.isBanned('192.0.2.1')).toBe(false);
    expect(await store.targets(clock.now())).toEqual([]);
    // A later reload must not bring it back either.
    await takeDown(guard, store);
    store.down = false;
    const upAgain = new Promise<void>((resolve) => guard.once('storeUp', () => resolve()));
    store.emit('up');
    await upAgain;
    expect(guard.isBanned('192.0.2.1')).toBe(false);
  });

  it('a ban made while decisions are being reloaded stays enforced, with no unban event', async () => {
    const clock = createManualClock();
    const store = new FlakyStore();
    const guard = await guardOn(store, clock);
    const unbans: UnbanEvent[] = [];
    guard.on('unban', (event) => unbans.push(event));
    const held = gate();
    store.loadGate = held.promise;
    store.emit('up'); // a reconnect: the guard reloads every decision
    await new Promise((resolve) => setImmediate(resolve));
    await guard.ban('192.0.2.9');
    store.emit('message', { type: 'unban', target: '192.0.2.50' });
    store.loadGate = undefined;
    held.open();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(guard.isBanned('192.0.2.9')).toBe(true);
    expect(unbans).toEqual([]);
  });

  it('an unban made while decisions are being reloaded is not undone by the reload', async () => {
    const clock = createManualClock();
    const store = new FlakyStore();
    const guard = await guardOn(store, clock);
    await guard.ban('192.0.2.9');
    const held = gate();
    store.loadGate = held.promise;
    store.emit('up');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await guard.unban('192.0.2.9')).toBe(true);
    store.loadGate = undefined;
    held.open();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(guard.isBanned('192.0.2.9')).toBe(false);
  });

  it('a change announced while decisions are being reloaded is loaded too', async () => {
    const clock = createManualClock();
    const store = new FlakyStore();
    const guard = await guardOn(store, clock);
    await guard.ban('192.0.2.9');
    const held = gate();
    store.loadGate = held.promise;
    store.emit('up'); // e.g. the CLI wrote to the SQLite file
    await new Promise((resolve) => setImmediate(resolve));
    await store.deleteDecision('192.0.2.9'); // another process unbans, after the read
    store.emit('up');
    store.loadGate = undefined;
    held.open();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(guard.isBanned('192.0.2.9')).toBe(false);
  });

  it('a shorter ban during an outage does not shorten a longer one being enforced', async () => {
    const clock = createManualClock();
    const store = new FlakyStore();
    const guard = await guardOn(store, clock);
    const unbans: UnbanEvent[] = [];
    guard.on('unban', (event) => unbans.push(event));
    await guard.ban('192.0.2.7', { duration: '1d' });
    await takeDown(guard, store);
    await guard.ban('192.0.2.7', { duration: '1m' });
    clock.advance(2 * MIN);
    guard.tick();
    expect(guard.isBanned('192.0.2.7')).toBe(true);
    expect(unbans).toEqual([]);
  });
});

describe('dry-run expiry', () => {
  it('schedules the expiry of "would ban" decisions, so a dry-run-only guard does not keep them forever', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const clock = createManualClock();
      const guard = await createGuard(
        { jails: { web: { maxretry: 1, bantime: '1m', dryrun: true, ignoreip: [], ignoreself: false } } },
        { clock, store: new FlakyStore(), env: {} },
      );
      guards.push(guard);
      const before = vi.getTimerCount();
      expect((await guard.report('192.0.2.3', { jail: 'web' })).outcome).toBe('would-ban');
      expect(vi.getTimerCount()).toBe(before + 1);
    } finally {
      vi.useRealTimers();
    }
  });
});
