import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { type LogJails, startLogJails } from '../../src/sources/log/log-jail.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import type { Store } from '../../src/stores/store.js';
import {
  exactlyOnce,
  logJailSettled,
  makeTempDir,
  numberedLine,
  numberedLines,
  recordingGuard,
  reportedNumbers,
  standInFilter,
} from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait-for.js';

const childScript = fileURLToPath(new URL('../fixtures/processes/log-follow-jail.ts', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
let logFile: string;
let child: ChildProcess | undefined;
const closers: (() => Promise<void>)[] = [];

beforeEach(() => {
  dir = makeTempDir('portcullis-restart-');
  logFile = path.join(dir, 'auth.log');
});
afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  child = undefined;
  for (const close of closers.splice(0).reverse()) await close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function guardWith(store: Store): Promise<Guard> {
  const config = resolveConfig(
    {
      jails: {
        test: {
          source: { log: logFile, start: 'beginning' },
          filter: 'sshd', // must name a real filter; makeFilter replaces it with the stand-in
          maxretry: 1_000_000,
          findtime: '1d',
          ignoreip: [],
          ignoreself: false,
        },
      },
    },
    { env: {} },
  );
  const guard = await createGuard(config, { store, env: {} });
  closers.push(() => guard.close());
  return guard;
}

async function jailsFor(guard: ReturnType<typeof recordingGuard>): Promise<LogJails> {
  const jails = await startLogJails(guard, {
    makeFilter: () => standInFilter(),
    pollIntervalMs: 50,
    saveIntervalMs: 100,
    maxInFlight: 2,
  });
  closers.push(() => jails.close());
  return jails;
}

it('a graceful restart half way resumes exactly: no line counted twice, none skipped', async () => {
  fs.writeFileSync(logFile, numberedLines(1, 20_000));
  const store = new MemoryStore();
  // One guard and store for both runs of the log jails, as a SQLite file or Redis would outlive them.
  const guard = recordingGuard(await guardWith(store));

  const first = await jailsFor(guard);
  await waitFor(() => guard.reports.length >= 3000, { timeoutMs: 20_000, message: 'first reports' });
  await first.close();
  const firstCount = guard.reports.length;
  expect(firstCount).toBeLessThan(20_000);
  const saved = await store.getPosition(`test:${logFile}`);
  expect(saved?.offset).toBe(Buffer.byteLength(numberedLines(1, firstCount)));

  fs.appendFileSync(logFile, numberedLines(20_001, 21_000));
  const second = await jailsFor(guard);
  await waitFor(() => guard.reports.length >= 21_000, { timeoutMs: 20_000, message: 'all reports' });
  await second.close();
  expect(exactlyOnce(reportedNumbers(guard.reports), 21_000)).toBeUndefined();
});

it('after kill -9 (SQLite store), a restart loses nothing; only lines after the last saved position repeat', async () => {
  const lineLength = Buffer.byteLength(numberedLine(1));
  const total = 31_000;
  fs.writeFileSync(logFile, '');
  const dbPath = path.join(dir, 'portcullis.db');

  child = spawn(process.execPath, ['--import', 'tsx', childScript, dbPath, logFile], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const beforeKill: number[] = [];
  let ready = false;
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (line === 'READY') ready = true;
    else if (line.startsWith('R ')) beforeKill.push(Number(line.slice(2)));
  });
  await waitFor(() => ready || child?.exitCode !== null, {
    timeoutMs: 30_000,
    message: () => `child READY (stderr: ${stderr})`,
  });
  expect(ready).toBe(true);

  // A live log: 500 lines every 50 ms. The child saves its position every 200 ms.
  let written = 0;
  const writer = setInterval(() => {
    const to = Math.min(written + 500, total);
    fs.appendFileSync(logFile, numberedLines(written + 1, to));
    written = to;
  }, 50);
  try {
    await waitFor(() => beforeKill.length >= 8000, { timeoutMs: 30_000, message: 'reports from the child' });
  } finally {
    clearInterval(writer);
  }
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  const [, signal] = await exited;
  expect(signal).toBe('SIGKILL');
  const killedAfter = beforeKill.length;
  fs.appendFileSync(logFile, numberedLines(written + 1, total));

  const sqlite = new SqliteStore({ path: dbPath });
  const guard = recordingGuard(await guardWith(sqlite));
  const saved = await sqlite.getPosition(`test:${logFile}`);
  expect(saved).toBeDefined();
  const savedOffset = saved?.offset ?? 0;
  expect(savedOffset % lineLength).toBe(0);
  const savedLines = savedOffset / lineLength;
  expect(savedLines).toBeGreaterThan(0);
  expect(savedLines).toBeLessThanOrEqual(killedAfter);
  // Everything before the saved position had really been reported by the killed process.
  expect(
    exactlyOnce(
      beforeKill.filter((n) => n <= savedLines),
      savedLines,
    ),
  ).toBeUndefined();

  const jails = await jailsFor(guard);
  await waitFor(() => guard.reports.length >= total - savedLines, {
    timeoutMs: 30_000,
    message: 'reports after the restart',
  });
  await logJailSettled(jails, 'test', total - savedLines);
  const afterRestart = reportedNumbers(guard.reports);
  // The restart starts exactly at the saved position: nothing before it again, everything after once.
  expect(afterRestart.every((n) => n > savedLines)).toBe(true);
  expect(
    exactlyOnce(
      afterRestart.map((n) => n - savedLines),
      total - savedLines,
    ),
  ).toBeUndefined();
  // So across the crash nothing is lost, and repeats are limited to lines after the saved position.
  expect(new Set([...beforeKill, ...afterRestart]).size).toBe(total);
  expect(beforeKill.filter((n) => n <= savedLines)).toHaveLength(savedLines);
});
