import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-busy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('portcullis ban / unban when the store cannot take the write', () => {
  it('fail with status 1 instead of claiming success', async () => {
    const db = join(dir, 'busy.db');
    const file = join(dir, 'busy.yaml');
    writeFileSync(file, `log: { level: silent }\nstore: { sqlite: ${db} }\njails:\n  sshd: {}\n`);
    expect((await runCli(['ban', '192.0.2.1', '-c', file])).status).toBe(0);
    const holder = new Database(db);
    holder.exec('BEGIN IMMEDIATE'); // another writer holds the lock past the busy timeout
    try {
      const ban = await runCli(['ban', '192.0.2.2', '-c', file]);
      expect(ban.status).toBe(1);
      expect(ban.stdout).not.toContain('banned 192.0.2.2');
      const unban = await runCli(['unban', '192.0.2.1', '-c', file]);
      expect(unban.status).toBe(1);
      expect(unban.stdout).not.toContain('unbanned');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    const listed = await runCli(['decisions', '-c', file]);
    expect(listed.stdout).toContain('192.0.2.1');
  }, 30_000);
});
