import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/core/clock.js';
import { createGuard, type Guard } from '../../../src/guard.js';
import { attachActivityLog } from '../../../src/operate/activity-log.js';
import { MemoryStore } from '../../../src/stores/memory/memory-store.js';

interface Line {
  fields: Record<string, unknown>;
  msg: string;
}

function recorder(level = 'info') {
  const lines: Line[] = [];
  const push = (fields: object, msg?: string) =>
    lines.push({ fields: fields as Record<string, unknown>, msg: msg ?? '' });
  return {
    lines,
    logger: {
      info: push,
      warn: push,
      error: push,
      debug: () => {},
      isLevelEnabled: (wanted: string) => wanted === 'info' && level === 'info',
    },
  };
}

let guards: Guard[] = [];
afterEach(async () => {
  await Promise.all(guards.map((g) => g.close()));
  guards = [];
});

async function guardLogging(lines: ReturnType<typeof recorder>) {
  const clock = createManualClock();
  const guard = await createGuard(
    {
      jails: {
        sshd: { maxretry: 3, findtime: '10m', bantime: '10m', ignoreip: [], ignoreself: false },
        perm: { maxretry: 1, bantime: -1, ignoreip: [], ignoreself: false },
        shadow: { maxretry: 1, dryrun: true, ignoreip: [], ignoreself: false },
      },
    },
    { clock, store: new MemoryStore(), env: {}, logger: lines.logger },
  );
  guards.push(guard);
  return { guard, clock };
}

describe('the daemon activity lines', () => {
  it('one line per counted failure, per ban (with its length and cause) and per unban, in that order', async () => {
    const log = recorder();
    const { guard, clock } = await guardLogging(log);
    const detach = attachActivityLog(guard, log.logger, { now: () => clock.now() });
    for (let i = 0; i < 3; i++) await guard.report('203.0.113.9', { jail: 'sshd' });
    await guard.unban('203.0.113.9');
    await guard.report('198.51.100.1', { jail: 'perm' });
    await guard.report('198.51.100.2', { jail: 'shadow' });
    const messages = log.lines.map((l) => l.msg).filter((m) => m.includes(': '));
    expect(messages).toEqual([
      'sshd: found 203.0.113.9 (1/3)',
      'sshd: found 203.0.113.9 (2/3)',
      'sshd: ban 203.0.113.9 for 10m (3 failures within 10m)',
      'sshd: unban 203.0.113.9 (unban)',
      'perm: ban 198.51.100.1 permanently (1 failure within 10m)',
      'shadow: would ban 198.51.100.2 for 10m (1 failure within 10m; dry run)',
    ]);
    expect(log.lines.find((l) => l.msg.endsWith('(2/3)'))?.fields).toEqual({
      event: 'found',
      jail: 'sshd',
      ip: '203.0.113.9',
      failures: 2,
      maxretry: 3,
    });
    // The ban line keeps the fields the recidive filter reads, in their order.
    const ban = log.lines.find((l) => l.fields.event === 'ban');
    expect(Object.keys(ban?.fields ?? {}).slice(0, 3)).toEqual(['event', 'target', 'jail']);
    detach();
    await guard.report('192.0.2.1', { jail: 'sshd' });
    expect(log.lines.some((l) => l.msg.includes('192.0.2.1'))).toBe(false);
  });

  it('is throttled per jail under a flood and says how many lines it left out', async () => {
    const log = recorder();
    const { guard, clock } = await guardLogging(log);
    attachActivityLog(guard, log.logger, { limit: 5, intervalMs: 1000, now: () => clock.now() });
    for (let i = 0; i < 200; i++) await guard.report(`10.0.${i >> 8}.${i & 255}`, { jail: 'sshd' });
    expect(log.lines.filter((l) => l.fields.event === 'found')).toHaveLength(5);
    clock.advance(1000);
    await guard.report('10.9.9.9', { jail: 'sshd' });
    const last = log.lines.at(-1);
    expect(last?.msg).toBe('sshd: found 10.9.9.9 (1/3) [195 more lines of this jail not logged]');
    expect(last?.fields.suppressed).toBe(195);
  });

  it('costs nothing when info is not logged', async () => {
    const log = recorder('warn');
    const { guard, clock } = await guardLogging(log);
    attachActivityLog(guard, log.logger, { now: () => clock.now() });
    await guard.report('192.0.2.3', { jail: 'sshd' });
    expect(log.lines.filter((l) => l.fields.event === 'found')).toEqual([]);
  });
});
