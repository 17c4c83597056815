import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/types.js';
import { createGuard } from '../../src/index.js';
import { spawnGuard } from '../helpers/guard-process.js';
import { waitFor } from '../helpers/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SQLite store across kill -9', () => {
  it('a ban earned before kill -9 is still enforced after restart, with the same expiry', async () => {
    const config = {
      store: { sqlite: join(dir, 'bans.db') },
      jails: { sshd: { maxretry: 3, bantime: '2h', ignoreip: [], ignoreself: false } },
    };
    const first = await spawnGuard(config);
    for (let i = 0; i < 2; i++) await first.call('report', '198.51.100.7', { jail: 'sshd' });
    const banned = await first.call<{ outcome: string; decision: Decision }>('report', '198.51.100.7', {
      jail: 'sshd',
    });
    expect(banned.outcome).toBe('banned');
    const range = await first.call<Decision>('ban', '203.0.113.0/24', { duration: -1 });
    await first.kill('SIGKILL');
    expect(first.child.signalCode).toBe('SIGKILL');

    const second = await spawnGuard(config);
    try {
      expect(await second.call('isBanned', '198.51.100.7')).toBe(true);
      expect(await second.call('isBanned', '203.0.113.200')).toBe(true);
      expect(await second.call('isBanned', '198.51.100.8')).toBe(false);
      const entry = await second.call<{ expiresAt: number }>('lookup', '198.51.100.7');
      expect(entry.expiresAt).toBe(banned.decision.expiresAt);
      const decisions = await second.call<Decision[]>('decisions');
      expect(decisions.find((d) => d.target === '203.0.113.0/24')?.expiresAt).toBe(range.expiresAt);
    } finally {
      await second.kill();
    }
  });

  it('a ban made by another process on the same file (the CLI) reaches a running guard', async () => {
    const path = join(dir, 'shared.db');
    const daemon = await createGuard({ store: { sqlite: path }, jails: {} }, { env: {} });
    try {
      const cli = await createGuard({ store: { sqlite: path }, jails: {} }, { env: {} });
      await cli.ban('192.0.2.99', { duration: '1h' });
      await cli.close();
      await waitFor(() => daemon.isBanned('192.0.2.99'), {
        timeoutMs: 5000,
        message: 'the ban to reach the running guard',
      });
      expect(daemon.isBanned('192.0.2.99')).toBe(true);
    } finally {
      await daemon.close();
    }
  });
});
