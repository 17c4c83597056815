import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FileFollower } from '../../src/sources/log/file-follower.js';
import { exactlyOnce, makeTempDir, numbersIn } from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait-for.js';

// A real writer process appends numbered lines at a steady rate, holding the file open like a
// daemon; the test rotates the file under it. Every line must reach the follower exactly once.

const writerScript = fileURLToPath(new URL('../fixtures/processes/log-writer.mjs', import.meta.url));
const RATE = 2000;

let dir: string;
let file: string;
let writer: Writer | undefined;
let follower: FileFollower | undefined;
let numbers: number[];

interface Writer {
  child: ChildProcess;
  /** Sends a command; resolves with the number in the writer's answer (if it answers). */
  send(command: string): Promise<number>;
}

async function startWriter(): Promise<Writer> {
  const child = spawn(process.execPath, [writerScript, file, String(RATE)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const answers: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const next = waiting.shift();
    if (next === undefined) answers.push(line);
    else next(line);
  });
  const nextAnswer = () =>
    new Promise<string>((resolve) => {
      const ready = answers.shift();
      if (ready === undefined) waiting.push(resolve);
      else resolve(ready);
    });
  expect(await nextAnswer()).toBe('started');
  return {
    child,
    async send(command) {
      child.stdin?.write(`${command}\n`);
      return Number((await nextAnswer()).split(' ')[1]);
    },
  };
}

async function startFollower(): Promise<void> {
  follower = new FileFollower({
    path: file,
    start: 'beginning',
    pollIntervalMs: 50,
    drainGraceMs: 1000,
    onLines: (batch) => {
      numbers.push(...numbersIn(batch.lines));
    },
  });
  await follower.start();
}

/** Time passing under write load (the subject of these tests); never a wait for a result. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeEach(() => {
  dir = makeTempDir('portcullis-rotate-');
  file = path.join(dir, 'app.log');
  numbers = [];
});
afterEach(async () => {
  if (writer !== undefined && writer.child.exitCode === null) {
    writer.child.kill('SIGKILL');
    await once(writer.child, 'exit');
  }
  writer = undefined;
  await follower?.close();
  follower = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

async function finish(): Promise<void> {
  const last = await (writer as Writer).send('stop');
  await waitFor(() => numbers.length >= last, {
    timeoutMs: 20_000,
    message: () => `${last} lines (have ${numbers.length})`,
  });
  // Kept: a negative, nothing marks "no duplicate is coming"; would-be duplicates have time to show up.
  await pause(300);
  expect(last).toBeGreaterThan(1000);
  expect(exactlyOnce(numbers, last)).toBeUndefined();
}

it('rename + create under write load: every line exactly once', async () => {
  fs.writeFileSync(file, '');
  await startFollower();
  writer = await startWriter();
  for (let round = 1; round <= 3; round++) {
    await waitFor(() => numbers.length >= round * 600, {
      timeoutMs: 20_000,
      message: 'lines before rotating',
    });
    fs.renameSync(file, `${file}.${round}`);
    fs.closeSync(fs.openSync(file, 'a'));
    // Kept: the subject, the daemon keeps writing into the renamed file until told to reopen.
    await pause(150);
    await writer.send('reopen');
  }
  await waitFor(() => numbers.length >= 2400, {
    timeoutMs: 20_000,
    message: 'lines after the last rotation',
  });
  await finish();
  expect(follower?.stats.rotations).toBe(3);
});

it('delete + recreate under write load: lines written to the deleted file are still read, once', async () => {
  fs.writeFileSync(file, '');
  await startFollower();
  writer = await startWriter();
  for (let round = 1; round <= 2; round++) {
    await waitFor(() => numbers.length >= round * 600, {
      timeoutMs: 20_000,
      message: 'lines before deleting',
    });
    fs.unlinkSync(file);
    // Kept: the subject, the daemon keeps writing into the deleted file until told to reopen.
    await pause(150);
    await writer.send('reopen'); // creates the file again
  }
  await waitFor(() => numbers.length >= 1800, { timeoutMs: 20_000, message: 'lines after recreating' });
  await finish();
});

it('copytruncate under write load: the truncated file is read from 0, every line once', async () => {
  fs.writeFileSync(file, '');
  await startFollower();
  writer = await startWriter();
  for (let round = 1; round <= 3; round++) {
    await waitFor(() => numbers.length >= round * 600, {
      timeoutMs: 20_000,
      message: 'lines before truncating',
    });
    // copytruncate loses whatever was written after the copy and before the truncation, and whatever
    // the follower had not read yet at that moment: logrotate's documented window. The writer pauses
    // only for that instant, as logrotate's copy would make it wait for its own I/O.
    const last = await writer.send('pause');
    await waitFor(() => numbers.length >= last, { timeoutMs: 20_000, message: 'the follower to catch up' });
    await writer.send('copytruncate');
  }
  await waitFor(() => numbers.length >= 2400, {
    timeoutMs: 20_000,
    message: 'lines after the last truncation',
  });
  await finish();
});
