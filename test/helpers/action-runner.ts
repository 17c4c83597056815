import type { Action } from '../../src/actions/action.js';
import { ActionRunner } from '../../src/actions/runner.js';
import { systemClock } from '../../src/core/clock.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';

/**
 * A real guard (an `sshd` jail banning at the 2nd failure, nothing ignored) and a runner feeding
 * `actions`, with short retry backoffs. `cleanups` gets their closing (runner first).
 */
export async function guardWithRunner(
  actions: readonly Action[],
  cleanups: (() => Promise<void>)[],
): Promise<{ guard: Guard; runner: ActionRunner }> {
  const guard = await createGuard(
    { jails: { sshd: { maxretry: 2, findtime: '10m', bantime: '1h', ignoreip: [], ignoreself: false } } },
    { clock: systemClock, store: new MemoryStore(), env: {} },
  );
  const runner = new ActionRunner(actions, {
    clock: systemClock,
    backoffMs: 30,
    maxBackoffMs: 200,
    checkIntervalMs: 0,
  });
  await runner.start(guard);
  cleanups.unshift(async () => {
    await runner.close();
    await guard.close();
  });
  return { guard, runner };
}
