import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Decision } from '../../src/core/types.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';

const script = fileURLToPath(new URL('../fixtures/processes/sqlite-ban.ts', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
let child: ChildProcess | undefined;
let store: SqliteStore | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-kill9-'));
});
afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  child = undefined;
  await store?.close();
  store = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the first `READY ...` line; rejects with the child's stderr if it exits first. */
function waitForReady(proc: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(
      () => reject(new Error(`no READY within ${timeoutMs} ms; stderr: ${stderr}`)),
      timeoutMs,
    );
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const line = stdout.split('\n').find((l) => l.startsWith('READY '));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code ?? signal}) before READY; stderr: ${stderr}`));
    });
  });
}

it('keeps a ban stored just before the process is killed with SIGKILL', async () => {
  const dbPath = path.join(dir, 'portcullis.db');
  child = spawn(process.execPath, ['--import', 'tsx', script, dbPath], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = await waitForReady(child, 20_000);
  const expiresAt = Number(ready.slice('READY '.length));
  expect(Number.isSafeInteger(expiresAt)).toBe(true);

  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  const [code, signal] = await exited;
  expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
  // Nothing was checkpointed or cleaned up: the bans are only in the write-ahead log.
  expect(fs.statSync(`${dbPath}-wal`).size).toBeGreaterThan(0);

  store = new SqliteStore({ path: dbPath });
  await store.open();
  const loaded: Decision[] = [];
  await store.loadDecisions(Date.now(), (batch) => loaded.push(...batch));
  const byTarget = new Map(loaded.map((d) => [d.target, d]));
  expect(byTarget.get('192.0.2.77')).toMatchObject({ jail: 'sshd', expiresAt, banCount: 1, dryRun: false });
  expect(byTarget.get('198.51.100.0/24')?.expiresAt).toBeNull();
  expect(await store.countBans('192.0.2.77', 'sshd', 0)).toBe(1);
  expect(await store.getPosition('/var/log/auth.log')).toEqual({ offset: 4096, inode: 12, headHash: 'cafe' });
});
