// npm run bench:logs — log filtering speed against fail2ban, side by side in one run, on several
// line mixes: the original auth.log (bench/logs-generate.ts) and the mixes of bench/logs-mixes.ts
// (another generator: 40% failures, 80% near-misses, long lines, a web access log). For each:
//   fail2ban-regex FILE /etc/fail2ban/filter.d/<filter>.conf
//   portcullis test FILE <filter>        (from dist/ when built, else from the sources via tsx)
// ROUNDS times each, alternating, and prints wall time (start-up included), processing time,
// lines/s, matched lines and the ratios.
// Environment: LINES (default 1000000), ROUNDS (default 3), MIXES (comma list, default all),
// PORTCULLIS_CLI (a main.js to run instead of dist/ or the sources), JOBS (default "1,2": each
// `--jobs` value gets its own column; 1 is one thread, 2 the main thread and a worker).
// fail2ban is only needed here: `apt-get install -y fail2ban` (its service need not run).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateAuthLog } from './logs-generate.js';
import { generateMix, MIXES } from './logs-mixes.js';
import { fmt, machineLine, median } from './machine.js';

const LINES = Number(process.env.LINES ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const root = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  wallMs: number;
  /** The tool's own processing time, without start-up. */
  processMs: number;
  lines: number;
  matched: number;
}

interface Case {
  name: string;
  description: string;
  file: string;
  filter: string;
  fail2ban: string;
  generate(): Promise<number>;
}

const CASES: Case[] = [
  {
    name: 'original',
    description: 'bench/logs-generate.ts auth.log (the mix the first figure was taken on)',
    file: resolve(root, 'bench/out/auth.log'),
    filter: 'sshd',
    fail2ban: '/etc/fail2ban/filter.d/sshd.conf',
    generate: () => generateAuthLog({ lines: LINES, file: resolve(root, 'bench/out/auth.log') }),
  },
  ...MIXES.map((mix) => ({
    name: mix.name,
    description: mix.description,
    file: resolve(root, `bench/out/${mix.name}.log`),
    filter: mix.filter,
    fail2ban: mix.fail2ban,
    generate: () => generateMix(mix, LINES, resolve(root, `bench/out/${mix.name}.log`)),
  })),
];

function fail2banRegex(file: string, filter: string): Run {
  const started = performance.now();
  const result = spawnSync('fail2ban-regex', [file, filter], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallMs = performance.now() - started;
  if (result.status !== 0) throw new Error(`fail2ban-regex failed (${result.status}): ${result.stderr}`);
  const counts = /Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed/.exec(result.stdout);
  const processed = /\[processed in ([\d.]+) sec\]/.exec(result.stdout);
  if (counts === null || processed === null)
    throw new Error(`unexpected fail2ban-regex output:\n${result.stdout}`);
  return {
    wallMs,
    processMs: Number(processed[1]) * 1000,
    lines: Number(counts[1]),
    matched: Number(counts[3]),
  };
}

const JOBS = (process.env.JOBS ?? '1,2').split(',').map(Number);

function portcullisTest(command: readonly string[], file: string, filter: string, jobs: number): Run {
  const started = performance.now();
  const args = [...command, 'test', file, filter, '--json', '--no-progress', '--jobs', String(jobs)];
  const result = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const wallMs = performance.now() - started;
  if (result.status !== 0) throw new Error(`portcullis test failed (${result.status}): ${result.stderr}`);
  const report = JSON.parse(result.stdout) as {
    lines: { total: number; matched: number };
    elapsedMs: number;
  };
  return { wallMs, processMs: report.elapsedMs, lines: report.lines.total, matched: report.lines.matched };
}

function summarise(name: string, runs: Run[]) {
  const wallMs = median(runs.map((r) => r.wallMs));
  const processMs = median(runs.map((r) => r.processMs));
  const first = runs[0] as Run;
  return { name, wallMs, processMs, lines: first.lines, matched: first.matched };
}

console.log(machineLine());
const f2bVersion = spawnSync('fail2ban-regex', ['--version'], { encoding: 'utf8' });
if (f2bVersion.error !== undefined) {
  console.error('fail2ban-regex is missing: apt-get install -y fail2ban');
  process.exit(1);
}
console.log(`fail2ban: ${f2bVersion.stdout.trim().split('\n')[0]}`);
console.log(`python: ${execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim()}`);

const dist = resolve(root, 'dist/surfaces/cli/main.js');
const cli = process.env.PORTCULLIS_CLI;
const command =
  cli !== undefined
    ? [resolve(cli)]
    : existsSync(dist)
      ? [dist]
      : ['--import', 'tsx', resolve(root, 'src/surfaces/cli/main.ts')];
console.log(
  `portcullis: ${cli !== undefined ? cli : existsSync(dist) ? 'dist/ (npm run build)' : 'sources through tsx (run npm run build for dist/)'}`,
);
const wanted = process.env.MIXES?.split(',');
const table: string[] = [];
for (const c of CASES) {
  if (wanted !== undefined && !wanted.includes(c.name)) continue;
  if (!existsSync(c.fail2ban)) {
    console.error(`${c.fail2ban} is missing: apt-get install -y fail2ban`);
    process.exit(1);
  }
  const lines = await c.generate();
  console.log(
    `\n${c.name}: ${c.description}; ${fmt(lines)} lines, ${fmt(statSync(c.file).size / 2 ** 20, 1)} MiB; portcullis ${c.filter} vs ${c.fail2ban}, ${ROUNDS} rounds`,
  );
  const f2bRuns: Run[] = [];
  const pcRuns = new Map<number, Run[]>(JOBS.map((jobs) => [jobs, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate, so machine noise hits both alike.
    for (const jobs of JOBS) pcRuns.get(jobs)?.push(portcullisTest(command, c.file, c.filter, jobs));
    f2bRuns.push(fail2banRegex(c.file, c.fail2ban));
  }
  const f2b = summarise('fail2ban-regex', f2bRuns);
  const rows = [f2b, ...JOBS.map((jobs) => summarise(`portcullis -j${jobs}`, pcRuns.get(jobs) as Run[]))];
  for (const row of rows) {
    console.log(
      `  ${row.name.padEnd(16)} wall ${fmt(row.wallMs / 1000, 2)} s, processing ${fmt(row.processMs / 1000, 2)} s, ${fmt((row.lines * 1000) / row.processMs)} lines/s, ${fmt(row.matched)} matched`,
    );
  }
  const cells: string[] = [];
  for (const pc of rows.slice(1)) {
    const wall = f2b.wallMs / pc.wallMs;
    console.log(
      `  ${pc.name} is ${fmt(wall, 1)}x on wall time, ${fmt(f2b.processMs / pc.processMs, 1)}x on processing time (goal: 20x on wall)`,
    );
    cells.push(`${fmt(pc.wallMs / 1000, 2)} s`, `**${fmt(wall, 1)}x**`);
  }
  table.push(
    `| ${c.name} | ${fmt(lines)} | ${fmt(f2b.wallMs / 1000, 2)} s | ${cells.join(' | ')} | ${fmt(f2b.matched)} / ${fmt((rows[1] as Run).matched)} |`,
  );
}
console.log(
  `\n| mix | lines | fail2ban-regex wall | ${JOBS.map((jobs) => `portcullis -j${jobs} wall | ratio`).join(' | ')} | matched (f2b / pc) |`,
);
console.log(`| --- | --- | --- | ${JOBS.map(() => '--- | ---').join(' | ')} | --- |`);
for (const row of table) console.log(row);
