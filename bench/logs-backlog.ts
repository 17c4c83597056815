// npm run bench:logs-backlog — a live log jail draining a backlog, and where its time goes.
// A file already holding BACKLOG lines of a realistic auth.log mix (bench/logs-mixes.ts,
// failures-40: 40% failures) is read by a log jail from the beginning, through the bundled sshd
// filter, reporting to a guard on a memory store. Side by side in one run: the file follower
// alone, the follower + filter (reports dropped), and the whole jail. lines/s = lines / time until
// the last report settled. Environment: BACKLOG (default 500000), ROUNDS (default 3), MIX.
import fs from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../src/config/load.js';
import { createGuard } from '../src/guard.js';
import { FileFollower } from '../src/sources/log/file-follower.js';
import { startLogJails } from '../src/sources/log/log-jail.js';
import { MemoryStore } from '../src/stores/memory/memory-store.js';
import { generateMix, MIXES } from './logs-mixes.js';
import { fmt, machineLine, median } from './machine.js';

const BACKLOG = Number(process.env.BACKLOG ?? 500_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const MIX = process.env.MIX ?? 'failures-40';

const dir = fs.mkdtempSync(path.join(tmpdir(), 'portcullis-bench-backlog-'));
const file = path.join(dir, 'auth.log');
const mix = MIXES.find((m) => m.name === MIX);
if (mix === undefined) throw new Error(`unknown MIX ${MIX}`);
// The mix's dates are in 2026-10; the jail's findtime must cover them for reports to happen.
await generateMix(mix, BACKLOG, file);

async function waitFor(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

async function followerOnly(): Promise<number> {
  let lines = 0;
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
  await follower.close();
  return ms;
}

async function jail(withGuard: boolean): Promise<{ ms: number; reports: number }> {
  const config = resolveConfig(
    {
      jails: {
        sshd: {
          source: { log: file, start: 'beginning' },
          filter: 'sshd',
          maxretry: 1_000_000_000,
          findtime: '1000w',
          ignoreip: [],
          ignoreself: false,
        },
      },
    },
    { env: {} },
  );
  const guard = await createGuard(config, { store: new MemoryStore(), env: {} });
  let reports = 0;
  const started = performance.now();
  const jails = await startLogJails(
    {
      config: guard.config,
      positions: guard.positions,
      report: withGuard
        ? async (ip, options) => {
            const result = await guard.report(ip, options);
            reports++;
            return result;
          }
        : async () => {
            reports++;
            return { banned: false, failures: 0 } as never;
          },
    },
    { watch: false },
  );
  await waitFor(
    () =>
      (jails.stats().sshd?.lines ?? 0) >= BACKLOG &&
      reports >= (jails.stats().sshd?.reports ?? 0) &&
      (jails.stats().sshd?.matches ?? 0) <= reports,
  );
  const ms = performance.now() - started;
  await jails.close();
  await guard.close();
  return { ms, reports };
}

console.log(machineLine());
console.log(
  `nproc ${availableParallelism()}, node ${process.version}; backlog ${fmt(BACKLOG)} lines (${mix.name}: ${mix.description}), ${ROUNDS} rounds`,
);
const follower: number[] = [];
const filterOnly: number[] = [];
const whole: number[] = [];
let reportCount = 0;
for (let r = 0; r < ROUNDS; r++) {
  follower.push(await followerOnly());
  filterOnly.push((await jail(false)).ms);
  const w = await jail(true);
  whole.push(w.ms);
  reportCount = w.reports;
}
fs.rmSync(dir, { recursive: true, force: true });
console.log('| set-up | time (median) | lines/s |');
console.log('| --- | --- | --- |');
for (const [label, runs] of [
  ['file follower alone', follower],
  ['follower + sshd filter + report() that does nothing', filterOnly],
  [`log jail, memory store (${fmt(reportCount)} reports)`, whole],
] as const) {
  const ms = median([...runs]);
  console.log(`| ${label} | ${fmt(ms)} ms | ${fmt((BACKLOG * 1000) / ms)} |`);
}
