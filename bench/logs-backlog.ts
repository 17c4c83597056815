// npm run bench:logs-backlog — a live log jail draining a backlog, and where its time goes.
// A file already holding BACKLOG lines of a realistic auth.log mix (bench/logs-mixes.ts,
// failures-40: 40% failures) is read by a log jail from the beginning, through the bundled sshd
// filter, reporting to a guard on a memory store. Side by side in one run: the file follower
// alone, the follower + filter (reports dropped), and the whole jail. lines/s = lines / time until
// the last report settled. Environment: BACKLOG (default 500000), ROUNDS (default 3), MIX,
// FILTER (both, stub or real), FROM (dist or src; default dist when built), STORE (memory or
// sqlite), MAXRETRY (default: never reached, so nothing is banned; 3: most offenders banned).
// CPU time is this process's (GC threads included): on a shared machine it moves less than wall
// time.
// The jail's own cost (everything but the regexes) is measured with a stub filter that hands back,
// line by line, what the real sshd filter found in the same file (precomputed once): same lines,
// same matches, same match rate, no regex work.
import fs from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LineFilter, LineMatch } from '../src/sources/log/log-jail.js';
import { generateMix, MIXES } from './logs-mixes.js';
import { fmt, machineLine, median } from './machine.js';

// The code measured: dist/ when built (what `portcullis run` runs), else the sources through tsx
// (whose compiled output wraps every function, ~5-10% slower); FROM=src forces the sources.
const distDir = fileURLToPath(new URL('../dist/', import.meta.url));
const FROM = process.env.FROM ?? (fs.existsSync(path.join(distDir, 'guard.js')) ? 'dist' : 'src');
const base = FROM === 'dist' ? '../dist' : '../src';
const ext = FROM === 'dist' ? 'js' : 'ts';
const { resolveConfig } = (await import(
  `${base}/config/load.${ext}`
)) as typeof import('../src/config/load.js');
const { loadLogFilter } = (await import(
  `${base}/detection/filters/regex/log-filter.${ext}`
)) as typeof import('../src/detection/filters/regex/log-filter.js');
const { createGuard } = (await import(`${base}/guard.${ext}`)) as typeof import('../src/guard.js');
const { FileFollower } = (await import(
  `${base}/sources/log/file-follower.${ext}`
)) as typeof import('../src/sources/log/file-follower.js');
const { startLogJails } = (await import(
  `${base}/sources/log/log-jail.${ext}`
)) as typeof import('../src/sources/log/log-jail.js');
const { MemoryStore } = (await import(
  `${base}/stores/memory/memory-store.${ext}`
)) as typeof import('../src/stores/memory/memory-store.js');
const { SqliteStore } = (await import(
  `${base}/stores/sqlite/sqlite-store.${ext}`
)) as typeof import('../src/stores/sqlite/sqlite-store.js');

const BACKLOG = Number(process.env.BACKLOG ?? 500_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const MIX = process.env.MIX ?? 'failures-40';
/** `stub`: only the stub-filter rows (the jail's own cost); `real`: only the real filter's. */
const FILTER = process.env.FILTER ?? 'both';
/** `memory` (default) or `sqlite` (a file in a temporary directory: the embedded default store). */
const STORE = process.env.STORE ?? 'memory';
/** The jail's maxretry: by default no address is ever banned (the counting path alone); 3 bans. */
const MAXRETRY = Number(process.env.MAXRETRY ?? 1_000_000_000);

const dir = fs.mkdtempSync(path.join(tmpdir(), 'portcullis-bench-backlog-'));
const file = path.join(dir, 'auth.log');
const mix = MIXES.find((m) => m.name === MIX);
if (mix === undefined) throw new Error(`unknown MIX ${MIX}`);
// The mix's dates are in 2026-10; the jail's findtime must cover them for reports to happen.
await generateMix(mix, BACKLOG, file);

// What the real filter finds in each line, in file order (for the stub filter). Only held while
// the stub's rows run: 500k results in the heap make every collection slower, and the real
// filter's rows measured them (whole jail, interleaved runs: 912-978 ms with them, 746-917 without).
const NO_MATCHES: readonly LineMatch[] = [];
const precomputed: { matches: readonly LineMatch[] }[] = [];
if (FILTER !== 'real') {
  const real = loadLogFilter('sshd', {});
  const none = { matches: NO_MATCHES };
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const matches = real.processLine(line).matches;
    precomputed.push(matches.length === 0 ? none : { matches: [...matches] });
  }
}

/** A filter that costs nothing: the real filter's results for the same lines, in order. */
function stubFilter(): LineFilter {
  let next = 0;
  return { processLine: () => precomputed[next++] as { matches: readonly LineMatch[] } };
}

async function waitFor(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/** Wall time and this process's CPU time (user + system, GC threads included), ms. */
interface Run {
  ms: number;
  cpuMs: number;
  reports?: number;
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

async function followerOnly(): Promise<Run> {
  let lines = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const follower = new FileFollower({
    path: file,
    start: 'beginning',
    watch: false,
    onLines: (batch) => {
      lines += batch.lines.length;
    },
  });
  await follower.start();
  await waitFor(() => lines >= BACKLOG);
  const ms = performance.now() - started;
  const cpuMs = cpuSince(cpu);
  await follower.close();
  return { ms, cpuMs };
}

async function jail(withGuard: boolean, stub = false): Promise<Run> {
  const config = resolveConfig(
    {
      jails: {
        sshd: {
          source: { log: file, start: 'beginning' },
          filter: 'sshd',
          maxretry: MAXRETRY,
          findtime: '1000w',
          ignoreip: [],
          ignoreself: false,
        },
      },
    },
    { env: {} },
  );
  const store =
    STORE === 'sqlite'
      ? new SqliteStore({
          path: path.join(dir, `bans-${Date.now()}-${Math.random()}.db`),
          watchIntervalMs: 0,
        })
      : new MemoryStore();
  const guard = await createGuard(config, { store, env: {} });
  const nothing = Promise.resolve({ outcome: 'counted', failures: 0 } as const);
  const cpu = process.cpuUsage();
  const started = performance.now();
  // The whole jail gets the guard itself, as `portcullis run` hands it over.
  const jails = await startLogJails(
    withGuard ? guard : { config: guard.config, positions: guard.positions, report: () => nothing },
    stub ? { watch: false, makeFilter: stubFilter } : { watch: false },
  );
  const settled = () => {
    const stats = jails.stats().sshd;
    return (
      stats !== undefined &&
      stats.lines >= BACKLOG &&
      stats.reports + stats.errors >= stats.matches - stats.tooOld
    );
  };
  await waitFor(settled);
  const ms = performance.now() - started;
  const cpuMs = cpuSince(cpu);
  const reports = jails.stats().sshd?.reports ?? 0;
  await guard.idle();
  bans = (await guard.decisions()).length;
  await jails.close();
  await guard.close();
  return { ms, cpuMs, reports };
}

console.log(machineLine());
console.log(`code: ${FROM === 'dist' ? 'dist/ (npm run build)' : 'src/ through tsx'}`);
console.log(
  `nproc ${availableParallelism()}, node ${process.version}; backlog ${fmt(BACKLOG)} lines (${mix.name}: ${mix.description}), ${ROUNDS} rounds`,
);
let bans = 0;
const bansNote = () => (bans > 0 ? `, ${fmt(bans)} bans` : '');
const follower: Run[] = [];
const filterOnly: Run[] = [];
const whole: Run[] = [];
const stubOnly: Run[] = [];
const stubWhole: Run[] = [];
let reportCount = 0;
// The stub's rounds first: the real filter's run once its precomputed results are gone.
if (FILTER !== 'real') {
  for (let r = 0; r < ROUNDS; r++) {
    follower.push(await followerOnly());
    stubOnly.push(await jail(false, true));
    const w = await jail(true, true);
    stubWhole.push(w);
    reportCount = w.reports ?? 0;
  }
  precomputed.length = 0;
}
if (FILTER !== 'stub') {
  for (let r = 0; r < ROUNDS; r++) {
    follower.push(await followerOnly());
    filterOnly.push(await jail(false));
    const w = await jail(true);
    whole.push(w);
    reportCount = w.reports ?? 0;
  }
}
fs.rmSync(dir, { recursive: true, force: true });
console.log('| set-up | time (median) | lines/s | CPU time (median) |');
console.log('| --- | --- | --- | --- |');
for (const [label, runs] of [
  ['file follower alone', follower],
  ['follower + stub filter + report() that does nothing', stubOnly],
  [`log jail, stub filter, ${STORE} store (${fmt(reportCount)} reports)`, stubWhole],
  ['follower + sshd filter + report() that does nothing', filterOnly],
  [`log jail, ${STORE} store (${fmt(reportCount)} reports${bansNote()})`, whole],
] as const) {
  if (runs.length === 0) continue;
  const ms = median(runs.map((run) => run.ms));
  const cpuMs = median(runs.map((run) => run.cpuMs));
  console.log(`| ${label} | ${fmt(ms)} ms | ${fmt((BACKLOG * 1000) / ms)} | ${fmt(cpuMs)} ms |`);
}
