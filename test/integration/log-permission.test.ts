import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait-for.js';

// Permission bits do not stop root, and CI runs as root: the follower runs in a child process that
// drops to uid/gid 65534 (nobody) before opening anything, so EACCES is real. Run as another user,
// the child keeps its uid and the file mode alone makes it unreadable.

const childScript = fileURLToPath(new URL('../fixtures/processes/log-follow-file.ts', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
let child: ChildProcess | undefined;

beforeEach(() => {
  dir = makeTempDir('portcullis-perm-');
  fs.chmodSync(dir, 0o755);
});
afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  child = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

it('an unreadable file is a clear error, retried, and read once it becomes readable', async () => {
  const file = path.join(dir, 'secure.log');
  fs.writeFileSync(file, 'first line\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  child = spawn(process.execPath, ['--import', 'tsx', childScript, file, '200'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    events.push(JSON.parse(line) as Record<string, unknown>);
  });
  await waitFor(() => events.some((event) => event.ready === true) || child?.exitCode !== null, {
    timeoutMs: 30_000,
    message: () => `ready (${stderr})`,
  });
  const ready = events.find((event) => event.ready === true);
  expect(ready?.uid).not.toBe(0);

  await waitFor(() => events.some((event) => event.level === 'error'), {
    timeoutMs: 10_000,
    message: 'the error',
  });
  expect(events.find((event) => event.level === 'error')?.message).toBe(
    `cannot read ${file}: permission denied; retrying every 200ms`,
  );
  // Retried quietly: one message, not one per attempt.
  // Kept: time passing is the point, a few 200 ms retries (a slow machine makes fewer, never a false failure).
  await new Promise((resolve) => setTimeout(resolve, 700));
  expect(events.filter((event) => event.level === 'error')).toHaveLength(1);
  expect(events.some((event) => 'line' in event)).toBe(false);

  fs.chmodSync(file, 0o644);
  await waitFor(() => events.some((event) => 'line' in event), {
    timeoutMs: 10_000,
    message: 'the first line',
  });
  fs.appendFileSync(file, 'second line\n');
  await waitFor(() => events.filter((event) => 'line' in event).length >= 2, {
    timeoutMs: 10_000,
    message: 'the second line',
  });
  expect(events.filter((event) => 'line' in event).map((event) => event.line)).toEqual([
    'first line',
    'second line',
  ]);
  expect(events.some((event) => event.message === `${file} is readable again`)).toBe(true);
});
