import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createManualClock, type ManualClock } from '../../src/core/clock.js';
import { ErrorCodes, PortcullisError } from '../../src/core/errors.js';
import { type Logger, silentLogger } from '../../src/core/logger.js';
import type { Decision } from '../../src/core/types.js';
import { createGuard, type Guard, type UnbanEvent } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { waitFor } from '../helpers/wait-for.js';

const MIN = 60_000;

/** A memory store that can be made unreachable, and whose writes and loads can be held. */
class FlakyStore extends MemoryStore {
  down = false;
  /** While set, putDecision(s) wait for it before writing. */
  putGate: Promise<void> | undefined;
  /** While set, loadDecisions reads the decisions, then waits for it before handing them over. */
  loadGate: Promise<void> | undefined;
  /** Writes and loads waiting at a gate now: the settle point "the guard is at the gate". */
  atGate = 0;
  /** Reloads of every decision the guard has committed (its `restore` log line). */
  restores = 0;

  async #pass(gate: Promise<void> | undefined): Promise<void> {
    if (gate === undefined) return;
    this.atGate++;
    try {
      await gate;
    } finally {
      this.atGate--;
    }
  }

  #check(): void {
    if (this.down) throw new PortcullisError(ErrorCodes.STORE_UNAVAILABLE, 'store down (test)');
  }

  override async addFailure(...args: Parameters<MemoryStore['addFailure']>) {
    this.#check();
    return super.addFailure(...args);
  }

  override async putDecision(decision: Decision): Promise<Decision> {
    this.#check();
    await this.#pass(this.putGate);
    return super.putDecision(decision);
  }

  override async deleteDecision(target: string): Promise<Decision | undefined> {
    this.#check();
    return super.deleteDecision(target);
  }

  override async putDecisions(decisions: readonly Decision[]): Promise<Decision[]> {
    this.#check();
    await this.#pass(this.putGate);
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
    await this.#pass(this.loadGate);
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

/** Counts the guard's `restore` log lines (written once a reload is committed) on the store. */
function countingRestores(store: FlakyStore): Logger {
  return {
    ...silentLogger,
    info: (fields) => {
      if ((fields as { event?: string }).event === 'restore') store.restores++;
    },
  };
}

/** The settle point of a reload: the guard has committed its `count`th reload of every decision. */
function restored(store: FlakyStore, count: number): Promise<void> {
  return waitFor(() => store.restores >= count, {
    timeoutMs: 5_000,
    message: () => `reload ${count} (have ${store.restores})`,
  });
}

/** The settle point of a held write or load: the guard is waiting at the store's gate. */
function atGate(store: FlakyStore): Promise<void> {
  return waitFor(() => store.atGate > 0, { timeoutMs: 5_000, message: 'the guard at the gate' });
}

async function guardOn(store: FlakyStore, clock: ManualClock): Promise<Guard> {
  const guard = await createGuard(options, {
    clock,
    store,
    env: {},
    random: () => 0.5,
    logger: countingRestores(store),
  });
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
    await atGate(store);
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
    await atGate(store);
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
    await atGate(store);
    await guard.ban('192.0.2.9');
    store.emit('message', { type: 'unban', target: '192.0.2.50' });
    store.loadGate = undefined;
    held.open();
    await restored(store, 2); // at start, then after the reconnect
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
    await atGate(store);
    expect(await guard.unban('192.0.2.9')).toBe(true);
    store.loadGate = undefined;
    held.open();
    await restored(store, 2); // at start, then after the reconnect
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
    await atGate(store);
    await store.deleteDecision('192.0.2.9'); // another process unbans, after the read
    store.emit('up');
    store.loadGate = undefined;
    held.open();
    await restored(store, 3); // at start, the held one, and the one read again after it
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
