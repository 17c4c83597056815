import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/core/types.js';
import { JailCounters } from '../../../src/operate/jail-counters.js';

const decision = (target: string, jail: string, dryRun = false): Decision => ({
  target,
  jail,
  reason: 'r',
  startedAt: 0,
  expiresAt: null,
  banCount: 1,
  dryRun,
  origin: 'test',
});

describe('JailCounters', () => {
  it('counts failures only for the outcomes that counted one', () => {
    const c = new JailCounters();
    c.report('sshd', { outcome: 'counted', failures: 1 });
    c.report('sshd', { outcome: 'counted', failures: 2 });
    c.report('sshd', { outcome: 'banned', failures: 3 });
    c.report('dry', { outcome: 'would-ban', failures: 1 });
    for (const outcome of ['ignored', 'already-banned', 'invalid-ip', 'not-counted'] as const)
      c.report('sshd', { outcome });
    expect(c.counts('sshd', 4)).toEqual({
      currentlyFailed: 4,
      totalFailed: 3,
      currentlyBanned: 0,
      totalBanned: 0,
    });
    expect(c.counts('dry', 0).totalFailed).toBe(1);
    expect(c.counts('other', 0)).toEqual({
      currentlyFailed: 0,
      totalFailed: 0,
      currentlyBanned: 0,
      totalBanned: 0,
    });
  });

  it('counts a ban once; restored bans count as current, not as new; dry runs not at all', () => {
    const c = new JailCounters();
    c.ban(decision('192.0.2.1', 'sshd'), 'local');
    c.ban(decision('192.0.2.1', 'sshd'), 'local'); // the final decision of an escalated ban
    c.ban(decision('192.0.2.9', 'sshd'), 'restore');
    c.ban(decision('192.0.2.8', 'sshd'), 'remote');
    c.ban(decision('192.0.2.7', 'sshd', true), 'local');
    expect(c.counts('sshd', 0)).toEqual({
      currentlyFailed: 0,
      totalFailed: 0,
      currentlyBanned: 3,
      totalBanned: 2,
    });
    c.unban({ target: '192.0.2.9', jail: 'sshd', reason: 'expired' });
    c.unban({ target: '192.0.2.9', jail: 'sshd', reason: 'expired' });
    c.unban({ target: '203.0.113.1', jail: 'sshd', reason: 'remote' });
    expect(c.counts('sshd', 0).currentlyBanned).toBe(2);
  });

  it('a target banned again by another jail moves over', () => {
    const c = new JailCounters();
    c.ban(decision('10.0.0.0/8', 'web'), 'local');
    c.ban(decision('10.0.0.0/8', 'sshd'), 'local');
    expect(c.counts('web', 0)).toMatchObject({ currentlyBanned: 0, totalBanned: 1 });
    expect(c.counts('sshd', 0)).toMatchObject({ currentlyBanned: 1, totalBanned: 0 });
    c.unban({ target: '10.0.0.0/8', jail: 'sshd', reason: 'unban' });
    expect(c.counts('sshd', 0).currentlyBanned).toBe(0);
  });
});
