import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/core/clock.js';
import type { Decision, UnbanEvent } from '../../../src/core/types.js';
import { DecisionBook } from '../../../src/decisions/decision-book.js';

function decision(target: string, nowMs: number, forMs: number): Decision {
  const at = { startedAt: nowMs, expiresAt: nowMs + forMs };
  return { target, jail: 'sshd', reason: 'test', banCount: 1, dryRun: false, origin: 'test', ...at };
}

describe('decision book', () => {
  it('announces the end of a ban whose time was up before the expiry timer ran, when it is removed or reloaded away', () => {
    const clock = createManualClock();
    const book = new DecisionBook({ clock, origin: 'test' });
    const ends: UnbanEvent[] = [];
    book.subscribe({ unban: (event) => ends.push(event) });
    book.apply(decision('192.0.2.1', clock.now(), 1_000), 'local');
    book.apply(decision('192.0.2.2', clock.now(), 1_000), 'local');
    clock.advance(2_000); // the timer has not run (a busy event loop, a manual clock)
    book.remove('192.0.2.1', 'unban');
    const reload = book.beginReload();
    reload.commit(); // the store no longer holds 192.0.2.2
    book.expireNow();
    expect(ends).toEqual([
      { target: '192.0.2.1', jail: 'sshd', reason: 'expired' },
      { target: '192.0.2.2', jail: 'sshd', reason: 'expired' },
    ]);
    book.close();
  });
});
