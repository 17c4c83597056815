import { afterEach, describe, expect, it } from 'vitest';
import { ActionRunner } from '../../../src/actions/runner.js';
import { createManualClock } from '../../../src/core/clock.js';
import type { Decision } from '../../../src/core/types.js';
import { DecisionBook } from '../../../src/decisions/decision-book.js';
import { createGuard, type Guard } from '../../../src/guard.js';
import { MemoryStore } from '../../../src/stores/memory/memory-store.js';
import { recordingAction } from '../../helpers/recording-action.js';

const HOUR = 3_600_000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function decision(target: string, nowMs: number, extra: Partial<Decision> = {}): Decision {
  return {
    target,
    jail: 'sshd',
    reason: 'test',
    startedAt: nowMs,
    expiresAt: nowMs + HOUR,
    banCount: 1,
    dryRun: false,
    origin: 'test',
    ...extra,
  };
}

async function guardOn(store: MemoryStore, clock = createManualClock()): Promise<Guard> {
  const guard = await createGuard(
    { jails: { sshd: { maxretry: 2, findtime: '10m', bantime: '1h', ignoreip: [], ignoreself: false } } },
    { clock, store, env: {} },
  );
  cleanups.push(() => guard.close());
  return guard;
}

function runnerOf(actions: ConstructorParameters<typeof ActionRunner>[0], clock = createManualClock()) {
  const runner = new ActionRunner(actions, { clock, backoffMs: 5, maxBackoffMs: 20, checkIntervalMs: 0 });
  cleanups.unshift(() => runner.close());
  return runner;
}

describe('action runner', () => {
  it('applies every ban restored at start in one batch, even when it subscribes after the restore', async () => {
    const clock = createManualClock();
    const store = new MemoryStore();
    await store.open();
    for (let i = 1; i <= 300; i++) await store.putDecision(decision(`192.0.2.${i % 250}`, clock.now()));
    await store.putDecision(decision('2001:db8::/64', clock.now()));
    const guard = await guardOn(store, clock);
    const action = recordingAction();
    const runner = runnerOf([action], clock);
    await runner.start(guard);
    await runner.idle();
    const applies = action.calls.filter((c) => c.op === 'apply');
    expect(applies).toHaveLength(1);
    expect(action.held.size).toBe(guard.stats.activeBans);
    expect(action.held.has('2001:db8::/64')).toBe(true);
  });

  it('applies a ban decided by a jail and reverts it on unban and on expiry', async () => {
    const clock = createManualClock();
    const guard = await guardOn(new MemoryStore(), clock);
    const action = recordingAction();
    const runner = runnerOf([action], clock);
    await runner.start(guard);
    await guard.report('198.51.100.1', { jail: 'sshd' });
    expect(action.held.has('198.51.100.1')).toBe(false);
    await guard.report('198.51.100.1', { jail: 'sshd' });
    await guard.ban('198.51.100.2');
    await runner.idle();
    expect([...action.held].sort()).toEqual(['198.51.100.1', '198.51.100.2']);
    await guard.unban('198.51.100.2');
    await runner.idle();
    expect([...action.held]).toEqual(['198.51.100.1']);
    clock.advance(HOUR + 1);
    guard.tick();
    await runner.idle();
    expect(action.held.size).toBe(0);
  });

  it('retries a failed batch with backoff and never drops it', async () => {
    const clock = createManualClock();
    const guard = await guardOn(new MemoryStore(), clock);
    const action = recordingAction();
    action.failNext(3);
    const runner = runnerOf([action], clock);
    await runner.start(guard);
    await guard.ban('203.0.113.9');
    await runner.idle();
    expect(action.held.has('203.0.113.9')).toBe(true);
    const stats = runner.stats().recorder;
    expect(stats).toMatchObject({ applied: 1, failures: 3, retries: 3, pending: 0, lastError: null });
  });

  it("reports what a firewall action refused or could not fit in the runner's stats", async () => {
    const clock = createManualClock();
    const guard = await guardOn(new MemoryStore(), clock);
    const action = Object.assign(recordingAction(), { refused: 2, overflow: 5 });
    const plain = Object.assign(recordingAction(), { name: 'plain' });
    const runner = runnerOf([action, plain], clock);
    await runner.start(guard);
    expect(runner.stats().recorder).toMatchObject({ refused: 2, overflow: 5 });
    expect(runner.stats().plain).not.toHaveProperty('refused');
  });

  it('a wave of 10,000 bans reaches the action in a bounded number of calls', async () => {
    const clock = createManualClock();
    const book = new DecisionBook({ clock, origin: 'test' });
    cleanups.push(async () => book.close());
    const action = recordingAction();
    const runner = runnerOf([action], clock);
    await runner.start(book);
    for (let i = 0; i < 10_000; i++) {
      book.apply(decision(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, clock.now()), 'local');
    }
    await runner.idle();
    expect(action.held.size).toBe(10_000);
    expect(action.calls.filter((c) => c.op === 'apply').length).toBeLessThanOrEqual(2);
  });

  it('a local-only action (a notification) hears bans decided here, not remote or restored ones', async () => {
    const clock = createManualClock();
    const book = new DecisionBook({ clock, origin: 'test' });
    cleanups.push(async () => book.close());
    book.apply(decision('192.0.2.1', clock.now()), 'restore');
    const firewall = recordingAction('firewall', 'all');
    const mail = recordingAction('mail', 'local');
    const runner = runnerOf([firewall, mail], clock);
    await runner.start(book);
    book.apply(decision('192.0.2.2', clock.now()), 'remote');
    book.apply(decision('192.0.2.3', clock.now()), 'local');
    book.remove('192.0.2.2', 'remote');
    book.remove('192.0.2.3', 'unban');
    await runner.idle();
    expect(firewall.calls.flatMap((c) => (c.op === 'apply' ? c.targets : []))).toEqual([
      '192.0.2.1',
      '192.0.2.2',
      '192.0.2.3',
    ]);
    expect(mail.calls.filter((c) => c.op === 'apply').flatMap((c) => c.targets)).toEqual(['192.0.2.3']);
    expect(mail.calls.filter((c) => c.op === 'revert').flatMap((c) => c.targets)).toEqual(['192.0.2.3']);
  });

  it('closes every action it started when one cannot start', async () => {
    const good = recordingAction('good');
    const bad = { ...recordingAction('bad'), start: () => Promise.reject(new Error('no nft binary')) };
    const runner = new ActionRunner([good, bad], { clock: createManualClock(), checkIntervalMs: 0 });
    const book = new DecisionBook({ clock: createManualClock(), origin: 'test' });
    await expect(runner.start(book)).rejects.toThrow('no nft binary');
    expect(good.calls.map((c) => c.op)).toEqual(['start', 'close']);
    book.close();
  });
});
