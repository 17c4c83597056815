// npm run bench:logs — log filtering speed against fail2ban, side by side in one run.
// Generates a realistic auth.log (bench/logs-generate.ts) into bench/out/, then runs
//   fail2ban-regex FILE /etc/fail2ban/filter.d/sshd.conf
//   portcullis test FILE sshd            (from dist/ when built, else from the sources via tsx)
// ROUNDS times each, and prints wall time, processing time, lines/s, matched lines and the ratio.
// Environment: LINES (default 1000000), ROUNDS (default 3), F2B_FILTER (default the sshd.conf above).
// fail2ban is only needed here: `apt-get install -y fail2ban` (its service need not run).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateAuthLog } from './logs-generate.js';
import { fmt, machineLine, median } from './machine.js';

const LINES = Number(process.env.LINES ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const F2B_FILTER = process.env.F2B_FILTER ?? '/etc/fail2ban/filter.d/sshd.conf';
const root = fileURLToPath(new URL('..', import.meta.url));
const file = resolve(root, 'bench/out/auth.log');

interface Run {
  wallMs: number;
  /** The tool's own processing time, without start-up. */
  processMs: number;
  lines: number;
  matched: number;
}

function fail2banRegex(): Run {
  const started = performance.now();
  const result = spawnSync('fail2ban-regex', [file, F2B_FILTER], { encoding: 'utf8', maxBuffer: 64 << 20 });
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

function portcullisTest(command: readonly string[]): Run {
  const started = performance.now();
  const result = spawnSync(process.execPath, [...command, 'test', file, 'sshd', '--json', '--no-progress'], {
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
if (f2bVersion.error !== undefined || !existsSync(F2B_FILTER)) {
  console.error(`fail2ban-regex or ${F2B_FILTER} is missing: apt-get install -y fail2ban`);
  process.exit(1);
}
console.log(`fail2ban: ${f2bVersion.stdout.trim().split('\n')[0]}, filter ${F2B_FILTER}`);

const dist = resolve(root, 'dist/surfaces/cli/main.js');
const command = existsSync(dist) ? [dist] : ['--import', 'tsx', resolve(root, 'src/surfaces/cli/main.ts')];
console.log(
  `portcullis: ${existsSync(dist) ? 'dist/ (npm run build)' : 'sources through tsx (run npm run build for dist/)'}`,
);

const generated = await generateAuthLog({ lines: LINES, file });
console.log(
  `log: ${file}, ${fmt(generated)} lines, ${fmt(statSync(file).size / 2 ** 20, 1)} MiB, ${ROUNDS} rounds each`,
);
console.log(`python: ${execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim()}`);

const f2bRuns: Run[] = [];
const pcRuns: Run[] = [];
for (let round = 0; round < ROUNDS; round++) {
  // Alternate, so machine noise hits both alike.
  pcRuns.push(portcullisTest(command));
  f2bRuns.push(fail2banRegex());
}
const rows = [summarise('fail2ban-regex', f2bRuns), summarise('portcullis test', pcRuns)];
console.log('');
console.log(
  '| tool | wall (median) | processing (median) | lines/s (processing) | lines/s (wall) | matched lines |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
for (const row of rows) {
  console.log(
    `| ${row.name} | ${fmt(row.wallMs / 1000, 2)} s | ${fmt(row.processMs / 1000, 2)} s | ${fmt((row.lines * 1000) / row.processMs)} | ${fmt(
      (row.lines * 1000) / row.wallMs,
    )} | ${fmt(row.matched)} |`,
  );
}
const [f2b, pc] = rows as [ReturnType<typeof summarise>, ReturnType<typeof summarise>];
console.log('');
console.log(
  `portcullis is ${fmt(f2b.processMs / pc.processMs, 1)}× fail2ban-regex on processing time, ${fmt(f2b.wallMs / pc.wallMs, 1)}× on wall time (goal: 20×).`,
);
if (f2b.matched !== pc.matched) {
  console.log(
    `note: matched lines differ (${fmt(f2b.matched)} vs ${fmt(pc.matched)}): the two sshd filters are different regex sets.`,
  );
}
