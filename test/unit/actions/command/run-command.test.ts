import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { markedProcesses, RUN_MARKER, spawnCommand } from '../../../../src/actions/command/run-command.js';
import { waitFor } from '../../../helpers/wait-for.js';

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pc-run-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Running, as opposed to gone or a zombie waiting to be reaped. */
async function running(pid: number): Promise<boolean> {
  const state = await readFile(`/proc/${pid}/stat`, 'utf8').then(
    (text) => text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3),
    () => 'gone',
  );
  return state !== 'gone' && state !== 'Z';
}

/** Reads the pid a script wrote, and makes sure the test never leaves it behind. */
async function pidIn(file: string): Promise<number> {
  const pid = Number((await readFile(file, 'utf8')).trim());
  cleanups.push(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  });
  return pid;
}

describe('spawnCommand deadline', () => {
  it.each([
    ['holding the output pipes', 'sleep 31 & echo $! > "$0"; echo started'],
    ['with its output redirected', 'sleep 31 >/dev/null 2>&1 & echo $! > "$0"'],
    ['in a session of its own, holding the pipes', 'setsid sleep 31 & echo $! > "$0"'],
  ])(
    'a background process the program left (%s) is ended at the deadline, not left running',
    async (_what, script) => {
      const dir = await tempDir();
      const file = join(dir, 'pid');
      const started = Date.now();
      const result = await spawnCommand({ argv: ['sh', '-c', script, file], env, timeoutMs: 1500 });
      // The run itself is not held up by what it left behind.
      expect(Date.now() - started).toBeLessThan(1500);
      expect(result.timedOut).toBe(false);
      expect(result.code).toBe(0);
      const pid = await pidIn(file);
      expect(await running(pid)).toBe(true);
      await waitFor(async () => !(await running(pid)), {
        timeoutMs: 5000,
        intervalMs: 100,
        message: 'the left-over process to be ended after the deadline',
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    },
    15_000,
  );

  it('a left-over process that ignores SIGTERM gets SIGKILL after the grace', async () => {
    const dir = await tempDir();
    const file = join(dir, 'pid');
    await spawnCommand({
      argv: ['sh', '-c', `sh -c 'trap "" TERM; sleep 31 & wait' >/dev/null 2>&1 & echo $! > "$0"`, file],
      env,
      timeoutMs: 500,
    });
    const pid = await pidIn(file);
    await waitFor(async () => !(await running(pid)), {
      timeoutMs: 6000,
      intervalMs: 100,
      message: 'SIGKILL',
    });
  }, 15_000);

  it('after the program exited, only processes still carrying the run marker are signalled', async () => {
    // A process with another run's marker, and one without any: never found.
    const other = spawn('sleep', ['30'], { env: { ...env, [RUN_MARKER]: 'another-run' }, stdio: 'ignore' });
    const plain = spawn('sleep', ['30'], { env, stdio: 'ignore' });
    cleanups.push(() => {
      other.kill('SIGKILL');
      plain.kill('SIGKILL');
    });
    await waitFor(
      async () => (await readFile(`/proc/${other.pid}/environ`, 'utf8')).includes('another-run'),
      {
        timeoutMs: 3000,
      },
    );
    const found = markedProcesses('another-run');
    expect(found).toEqual([{ pid: other.pid, pgrp: expect.any(Number) }]);
    expect(markedProcesses('no-such-run')).toEqual([]);
    const dir = await tempDir();
    const file = join(dir, 'pid');
    await spawnCommand({
      argv: ['sh', '-c', 'sleep 31 >/dev/null 2>&1 & echo $! > "$0"', file],
      env,
      timeoutMs: 500,
    });
    const pid = await pidIn(file);
    await waitFor(async () => !(await running(pid)), {
      timeoutMs: 5000,
      intervalMs: 100,
      message: 'run ended',
    });
    expect(await running(other.pid as number)).toBe(true);
    expect(await running(plain.pid as number)).toBe(true);
  }, 15_000);
});
