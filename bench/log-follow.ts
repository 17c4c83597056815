// npm run bench:follow — a log jail following a file written at 50k lines/s for 10 s.
// A worker thread appends OpenSSH "Failed password" lines (the write time in µs is the user name),
// the jail reads them through the real sshd filter and reports every one to the guard; the lag of
// a line is the time from its write to its report() settling. Three set-ups side by side:
// the file follower alone, the jail on a memory store, the jail on a SQLite store. Then the
// throughput ceiling: the same jails catching up with a 500k-line backlog (start: beginning).
// Environment: RATE (lines/s, default 50000), BENCH_SECONDS (default 10), BACKLOG (default 500000).
import fs from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { resolveConfig } from '../src/config/load.js';
import { createGuard } from '../src/guard.js';
import { FileFollower } from '../src/sources/log/file-follower.js';
import { startLogJails } from '../src/sources/log/log-jail.js';
import { MemoryStore } from '../src/stores/memory/memory-store.js';
import { SqliteStore } from '../src/stores/sqlite/sqlite-store.js';
import type { Store } from '../src/stores/store.js';
import { fmt, machineLine } from './machine.js';

const RATE = Number(process.env.RATE ?? 50_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const BACKLOG = Number(process.env.BACKLOG ?? 500_000);

const WRITER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { file, rate, seconds } = workerData;
const fd = fs.openSync(file, 'a');
const months = ['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec'];
const pad = (n) => String(n).padStart(2, '0');
const start = performance.now();
const total = rate * seconds;
let n = 0;
function tick() {
  const elapsed = performance.now() - start;
  const due = Math.min(total, Math.floor((elapsed / 1000) * rate));
  if (due > n) {
    const nowMs = performance.timeOrigin + performance.now();
    const d = new Date(nowMs);
    const stamp = months[d.getMonth()] + ' ' + String(d.getDate()).padStart(2, ' ') + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    const user = 'u' + Math.round(nowMs * 1000);
    let text = '';
    for (; n < due; n++) {
      text += stamp + ' bench sshd[4242]: Failed password for ' + user + ' from 198.18.' + ((n >> 8) & 255) + '.' + (n & 255) + ' port 22 ssh2\\n';
    }
    fs.writeSync(fd, text);
  }
  if (n >= total) {
    fs.closeSync(fd);
    parentPort.postMessage({ written: n, seconds: (performance.now() - start) / 1000 });
    return;
  }
  setTimeout(tick, 1);
}
tick();
`;

interface Result {
  label: string;
  lines: number;
  linesPerSecond: number;
  lagMs: { median: number; p99: number; max: number };
}

const nowMs = () => performance.timeOrigin + performance.now();
const userTime = (user: string | number | undefined) => Number(String(user).slice(1)) / 1000;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] ?? Number.NaN;
}

/** Runs the writer against `file` while `follow` is set up; `done()` says how many lines arrived. */
async function measure(
  label: string,
  setUp: (file: string, record: (writtenAtMs: number) => void) => Promise<() => Promise<void>>,
): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'portcullis-bench-follow-'));
  const file = path.join(dir, 'auth.log');
  fs.writeFileSync(file, '');
  const total = RATE * SECONDS;
  const lags = new Float64Array(total);
  let count = 0;
  let lastAt = 0;
  const record = (writtenAtMs: number) => {
    const now = nowMs();
    if (count < total) lags[count] = now - writtenAtMs;
    count++;
    lastAt = now;
  };
  const close = await setUp(file, record);
  const startedAt = nowMs();
  const worker = new Worker(WRITER, { eval: true, workerData: { file, rate: RATE, seconds: SECONDS } });
  const written = await new Promise<number>((resolve, reject) => {
    worker.once('message', (message: { written: number }) => resolve(message.written));
    worker.once('error', reject);
  });
  const deadline = Date.now() + 60_000;
  while (count < written && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await close();
  await worker.terminate();
  fs.rmSync(dir, { recursive: true, force: true });
  if (count < written) console.log(`  ${label}: only ${count} of ${written} lines arrived within 60 s`);
  const sorted = lags.slice(0, Math.min(count, total)).sort();
  return {
    label,
    lines: count,
    linesPerSecond: count / ((lastAt - startedAt) / 1000),
    lagMs: {
      median: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? 0,
    },
  };
}

/** Time to read a file that already holds `BACKLOG` lines: the most a set-up can do. */
async function measureBacklog(
  label: string,
  setUp: (file: string, record: (writtenAtMs: number) => void) => Promise<() => Promise<void>>,
): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'portcullis-bench-backlog-'));
  const file = path.join(dir, 'auth.log');
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const month = d.toLocaleString('en-US', { month: 'short' });
  const stamp = `${month} ${String(d.getDate()).padStart(2, ' ')} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const fd = fs.openSync(file, 'w');
  for (let from = 0; from < BACKLOG; from += 10_000) {
    let text = '';
    for (let n = from; n < Math.min(from + 10_000, BACKLOG); n++) {
      text += `${stamp} bench sshd[4242]: Failed password for u0 from 198.18.${(n >> 8) & 255}.${n & 255} port 22 ssh2\n`;
    }
    fs.writeSync(fd, text);
  }
  fs.closeSync(fd);
  let count = 0;
  const startedAt = nowMs();
  const close = await setUp(file, () => {
    count++;
  });
  const deadline = Date.now() + 120_000;
  while (count < BACKLOG && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const elapsed = (nowMs() - startedAt) / 1000;
  await close();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    label,
    lines: count,
    linesPerSecond: count / elapsed,
    lagMs: { median: Number.NaN, p99: Number.NaN, max: Number.NaN },
  };
}

function followerOnly(): Parameters<typeof measure>[1] {
  return async (file, record) => {
    const follower = new FileFollower({
      path: file,
      start: 'beginning',
      onLines: (batch) => {
        for (const line of batch.lines) {
          const at = line.indexOf('for u');
          record(userTime(line.slice(at + 4, line.indexOf(' ', at + 5))));
        }
      },
    });
    await follower.start();
    return () => follower.close();
  };
}

function jail(makeStore: (dir: string) => Store): Parameters<typeof measure>[1] {
  return async (file, record) => {
    const config = resolveConfig(
      {
        jails: {
          sshd: {
            source: { log: file, start: 'beginning' },
            filter: 'sshd',
            maxretry: 1_000_000,
            findtime: '1h',
            ignoreip: [],
            ignoreself: false,
          },
        },
      },
      { env: {} },
    );
    const guard = await createGuard(config, { store: makeStore(path.dirname(file)), env: {} });
    // The guard itself, as `portcullis run` hands it over: a report is timed once it settled.
    guard.onReport((_ip, options) => record(userTime(options.fields?.user)));
    const logJails = await startLogJails(guard);
    return async () => {
      await logJails.close();
      await guard.close();
    };
  };
}

console.log(machineLine());
console.log(`nproc ${availableParallelism()}, node ${process.version}`);
console.log(
  `writer: ${fmt(RATE)} lines/s for ${SECONDS} s (${fmt(RATE * SECONDS)} lines, ~100 bytes each)\n`,
);
const results: Result[] = [];
results.push(await measure('file follower only', followerOnly()));
results.push(
  await measure(
    'log jail, sshd filter, memory store',
    jail(() => new MemoryStore()),
  ),
);
results.push(
  await measure(
    'log jail, sshd filter, SQLite store',
    jail((dir) => new SqliteStore({ path: path.join(dir, 'bench.db') })),
  ),
);
results.push(await measureBacklog('backlog: file follower only', followerOnly()));
results.push(
  await measureBacklog(
    'backlog: log jail, memory store',
    jail(() => new MemoryStore()),
  ),
);
results.push(
  await measureBacklog(
    'backlog: log jail, SQLite store',
    jail((dir) => new SqliteStore({ path: path.join(dir, 'bench.db') })),
  ),
);
const ms = (value: number) => (Number.isNaN(value) ? '-' : `${fmt(value, 1)} ms`);
console.log(
  `${'set-up'.padEnd(40)} ${'lines'.padStart(9)} ${'lines/s'.padStart(9)} ${'lag p50'.padStart(9)} ${'lag p99'.padStart(9)} ${'lag max'.padStart(9)}`,
);
for (const r of results) {
  console.log(
    `${r.label.padEnd(40)} ${fmt(r.lines).padStart(9)} ${fmt(r.linesPerSecond).padStart(9)} ${ms(r.lagMs.median).padStart(9)} ${ms(r.lagMs.p99).padStart(9)} ${ms(r.lagMs.max).padStart(9)}`,
  );
}
