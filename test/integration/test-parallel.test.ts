import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { cutTarget, PARALLEL_MIN_BYTES, WARMUP_BYTES } from '../../src/surfaces/cli/test-parallel.js';
import { CLI, runCli, runNode } from '../helpers/cli.js';

// `portcullis test --jobs N`: the report of N threads is the report of one pass. Every file here
// has lines of one fixed width, so the test knows which line each cut (the exported rule) lands on.

const dir = mkdtempSync(join(tmpdir(), 'portcullis-test-parallel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Lines of `width` bytes with their line end (`eol`), padded with spaces. */
function fixed(text: string, width: number, eol = '\n'): string {
  const room = width - eol.length;
  if (text.length > room) throw new Error(`line longer than ${room}: ${text}`);
  return `${text}${' '.repeat(room - text.length)}${eol}`;
}

const FILLER = 'Nov 25 12:00:00 gate CRON[7]: pam_unix(cron:session): session closed for user root';
const failed = (n: number) =>
  `Nov 25 12:00:00 gate sshd[${20000 + (n % 500)}]: Failed password for root from 198.51.100.${n % 250} port ${1000 + (n % 9000)} ssh2`;
const connection = (pid: number, ip: string) =>
  `Nov 25 12:00:00 gate sshd[${pid}]: Connection from ${ip} port 4711 on 10.0.0.1 port 22`;
const tooMany = (pid: number) =>
  `Nov 25 12:00:00 gate sshd[${pid}]: Disconnecting: Too many authentication failures for root [preauth]`;
const closed = (pid: number, ip: string) =>
  `Nov 25 12:00:00 gate sshd[${pid}]: Connection closed by ${ip} port 4711 [preauth]`;

const WIDTH = 128;
const LINES = Math.ceil((PARALLEL_MIN_BYTES + 512 * 1024) / WIDTH);
const SIZE = LINES * WIDTH;

/** The line (0-based) that starts range k of `jobs`: the first line start at or after the target. */
const cutLine = (jobs: number, k: number) => Math.ceil(cutTarget(SIZE, jobs, k) / WIDTH);

/** Filler with a failure every 97 lines; `place` puts other lines at given indexes. */
function buildLog(name: string, place: Map<number, string>, eol = '\n'): string {
  const parts: string[] = [];
  for (let i = 0; i < LINES; i++)
    parts.push(fixed(place.get(i) ?? (i % 97 === 0 ? failed(i) : FILLER), WIDTH, eol));
  const file = join(dir, name);
  writeFileSync(file, parts.join(''));
  return file;
}

interface Report {
  jobs: number;
  reruns: number;
  elapsedMs?: number;
  linesPerSecond?: number;
  lines: Record<string, number>;
  failures: number;
  matchedLines: { line: number; text: string; failures: { ip: string }[] }[];
  [key: string]: unknown;
}

async function testReport(args: string[]): Promise<Report> {
  const result = await runCli(['test', ...args, '--json', '--no-progress', '--logtimezone', 'UTC']);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout) as Report;
}

/** The report without what may differ between runs (timings, threads). */
function comparable(report: Report): Report {
  const { elapsedMs: _e, linesPerSecond: _l, jobs: _j, reruns: _r, ...rest } = report;
  return rest as Report;
}

/** Runs with --jobs 1, 2 and 3; checks the three reports are one; returns them. */
async function sameForAllJobs(args: string[]): Promise<Report[]> {
  const reports = await Promise.all([1, 2, 3].map((jobs) => testReport([...args, '--jobs', String(jobs)])));
  expect(reports.map((r) => r.jobs)).toEqual([1, 2, 3]);
  const [one, two, three] = reports.map(comparable);
  expect(two).toEqual(one);
  expect(three).toEqual(one);
  return reports;
}

/**
 * A copy of the built CLI (dist/) whose worker takes a piece of the file and dies without a
 * report (exit status 3): the failure is real, from outside, and the code under test is unchanged.
 * Inside the repository, so the copy finds node_modules as the original does; removed when the test
 * that asked for it ends.
 */
function cliWithDyingWorker(): string {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  if (!existsSync(join(root, 'dist/surfaces/cli/main.js')))
    throw new Error('dist/ is missing: run `npm run build` before this test (.ci/run does)');
  mkdirSync(join(root, '.tmp'), { recursive: true });
  const copy = mkdtempSync(join(root, '.tmp', 'dying-worker-'));
  onTestFinished(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
  cpSync(join(root, 'rules'), join(copy, 'rules'), { recursive: true });
  copyFileSync(join(root, 'package.json'), join(copy, 'package.json'));
  writeFileSync(
    join(copy, 'dist/surfaces/cli/test-worker.js'),
    [
      "import { workerData } from 'node:worker_threads';",
      '// Takes the next free piece (a filter with sessions reads its own range anyway) and dies.',
      'Atomics.add(new Int32Array(workerData.next), 0, 1);',
      'process.exit(3);',
      '',
    ].join('\n'),
  );
  return join(copy, 'dist/surfaces/cli/main.js');
}

describe('portcullis test --jobs', () => {
  it('a worker that dies mid-run: its piece is read again in the main thread, the report is the one-pass report', async () => {
    const main = cliWithDyingWorker();
    const place = new Map<number, string>();
    const cut = cutLine(2, 1);
    place.set(cut - 1, connection(33000, '203.0.113.90'));
    place.set(cut, tooMany(33000));
    const file = buildLog('dying-worker.log', place);
    const common = ['--json', '--no-progress', '--logtimezone', 'UTC', '--print-matched'];
    // With sessions (sshd: the worker's own range) and without (a piece taken from the shared counter).
    for (const filter of ['sshd', 'Failed password for \\S+ from <HOST> port']) {
      const one = await testReport([file, filter, '--print-matched', '--jobs', '1']);
      const run = await runNode([main, 'test', file, filter, ...common, '--jobs', '2']);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toMatch(
        /^note: the worker reading bytes \d+-\d+ failed \(exited with code 3\); reading them again in the main thread\n$/,
      );
      const report = JSON.parse(run.stdout) as Report;
      expect(report.reruns).toBe(1);
      expect(comparable(report)).toEqual(comparable(one));
    }
  }, 120_000);

  it('gives the one-pass report when sessions cross the cuts (the warm-up carries them over)', async () => {
    // A "Connection from" as the last line before each cut of 2 and 3 jobs, the address-less
    // failure of the same connection as the first line after it, its closing line after that.
    const place = new Map<number, string>();
    const cuts = [cutLine(2, 1), cutLine(3, 1), cutLine(3, 2)];
    cuts.forEach((cut, i) => {
      place.set(cut - 1, connection(31000 + i, `203.0.113.${10 + i}`));
      place.set(cut, tooMany(31000 + i));
      place.set(cut + 2, closed(31000 + i, `203.0.113.${10 + i}`));
    });
    const file = buildLog('cross.log', place);
    const reports = await sameForAllJobs([file, 'sshd', '--print-matched']);
    // Exact without reading anything twice: the warm-up rebuilt the sessions at each cut.
    expect(reports.map((r) => r.reruns)).toEqual([0, 0, 0]);
    const byLine = new Map(reports[1]?.matchedLines.map((m) => [m.line, m.failures.map((f) => f.ip)]));
    expect(cuts.map((cut) => byLine.get(cut + 1))).toEqual(cuts.map((_, i) => [`203.0.113.${10 + i}`]));
    expect(reports[0]?.lines.total).toBe(LINES);
  }, 120_000);

  it('reads a range again when a session is older than the warm-up, with the same result', async () => {
    const cut = cutLine(2, 1);
    const linesBack = Math.ceil((WARMUP_BYTES + 1024 * 1024) / WIDTH);
    const place = new Map<number, string>([
      [cut - linesBack, connection(32000, '203.0.113.77')],
      [cut + 5, tooMany(32000)],
    ]);
    const file = buildLog('long-session.log', place);
    const reports = await sameForAllJobs([file, 'sshd', '--print-matched']);
    expect(reports[0]?.reruns).toBe(0);
    expect(reports[1]?.reruns).toBeGreaterThan(0);
    const late = reports[1]?.matchedLines.find((m) => m.line === cut + 6);
    expect(late?.failures.map((f) => f.ip)).toEqual(['203.0.113.77']);
  }, 120_000);

  it('cuts anywhere for a filter without sessions', async () => {
    const file = buildLog('plain.log', new Map());
    const reports = await sameForAllJobs([
      file,
      'Failed password for \\S+ from <HOST> port',
      '--print-matched',
    ]);
    expect(reports.map((r) => r.reruns)).toEqual([0, 0, 0]);
    expect(reports[0]?.failures).toBe(Math.ceil(LINES / 97));
    // Absolute line numbers: the failures are on lines 1, 98, 195, ...
    expect(reports[2]?.matchedLines.slice(-2).map((m) => m.line)).toEqual([
      (Math.ceil(LINES / 97) - 2) * 97 + 1,
      (Math.ceil(LINES / 97) - 1) * 97 + 1,
    ]);
  }, 120_000);

  it('keeps CRLF lines, a last line without a newline and a cut long line as one pass does', async () => {
    const place = new Map<number, string>();
    const cut = cutLine(2, 1);
    const file = join(dir, 'crlf.log');
    const parts: string[] = [];
    for (let i = 0; i < LINES; i++) {
      if (i === cut - 3) {
        // 3000 bytes from three lines before the cut to after it: cut to 1000, and the cut moves.
        parts.push(`${failed(i)} ${'x'.repeat(3000)}\r\n`);
        continue;
      }
      parts.push(fixed(place.get(i) ?? (i % 97 === 0 ? failed(i) : FILLER), WIDTH, '\r\n'));
    }
    parts.push(failed(LINES + 1)); // no line end
    writeFileSync(file, parts.join(''));
    const reports = await sameForAllJobs([file, 'sshd', '--print-matched', '--max-line-length', '1000']);
    expect(reports[0]?.lines.truncated).toBe(1);
    expect(reports[0]?.lines.total).toBe(LINES + 1);
    const last = reports[1]?.matchedLines.at(-1);
    expect(last?.line).toBe(LINES + 1);
    expect(last?.text.endsWith('ssh2')).toBe(true);
    // No CR left on any listed line.
    expect(reports[2]?.matchedLines.some((m) => m.text.includes('\r'))).toBe(false);
  }, 120_000);

  it('reads a small file and standard input in one pass whatever --jobs says', async () => {
    const small = join(dir, 'small.log');
    writeFileSync(small, [failed(1), FILLER, failed(2)].join('\n'));
    const report = await testReport([small, 'sshd', '--jobs', '4']);
    expect(report.jobs).toBe(1);
    expect(report.lines.total).toBe(3);
    expect(report.failures).toBe(2);

    const big = buildLog('stdin.log', new Map());
    const child = spawn(process.execPath, [
      '--import',
      'tsx',
      CLI,
      'test',
      '-',
      'sshd',
      '--jobs',
      '3',
      '--json',
      '--no-progress',
    ]);
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    const { createReadStream } = await import('node:fs');
    createReadStream(big).pipe(child.stdin);
    const status = await new Promise((resolve) => child.on('close', resolve));
    expect(status).toBe(0);
    const piped = JSON.parse(stdout) as Report;
    expect(piped.jobs).toBe(1);
    expect(piped.lines.total).toBe(LINES);
  }, 120_000);

  it('refuses a bad --jobs or --usedns with exit status 2', async () => {
    const small = join(dir, 'small2.log');
    writeFileSync(small, `${failed(1)}\n`);
    const jobs = await runCli(['test', small, 'sshd', '--jobs', '0']);
    expect(jobs.status).toBe(2);
    expect(jobs.stderr).toBe('--jobs: expected a whole number from 1 to 64, got "0"\n');
    const dns = await runCli(['test', small, 'sshd', '--usedns', 'maybe']);
    expect(dns.status).toBe(2);
    expect(dns.stderr).toBe('--usedns: expected no, warn or yes, got "maybe"\n');
    // A filter RE2 refuses, on a file big enough for workers: they are stopped, the status is 2.
    const big = buildLog('bad-filter.log', new Map());
    const bad = await runCli(['test', big, '^x (?=y) <HOST>', '--jobs', '3']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(
      'filter.failregex.0: RE2 cannot compile "^x (?=y) <HOST>": invalid perl operator: (?=\n',
    );
  }, 120_000);

  it('--usedns yes: a name that resolves (localhost, from /etc/hosts) counts in every thread', async () => {
    const place = new Map<number, string>();
    const byName = (n: number) =>
      `Nov 25 12:00:00 gate sshd[${40000 + n}]: Failed password for root from localhost port 22 ssh2`;
    // Names on both sides of each cut, and many of them while the first lookup is in flight.
    for (const cut of [cutLine(2, 1), cutLine(3, 1), cutLine(3, 2)])
      for (let d = -3; d <= 3; d++) place.set(cut + d, byName(cut + d));
    for (let i = 10; i < 40; i++) place.set(i, byName(i));
    const file = buildLog('dns.log', place);
    const off = await testReport([file, 'sshd', '--jobs', '1']);
    expect(off.lines.badHost).toBe(place.size);
    const reports = await sameForAllJobs([file, 'sshd', '--usedns', 'yes', '--print-matched']);
    let base = 0;
    for (let i = 0; i < LINES; i += 97) if (!place.has(i)) base++;
    expect(reports[0]?.lines.badHost).toBe(0);
    expect(reports[0]?.lines.info).toBe(0);
    expect(reports[0]?.lines.matched).toBe(base + place.size);
    expect(reports[0]?.usedns).toBe('yes');
    const named = reports[2]?.matchedLines.filter((m) => m.text.includes('localhost')) ?? [];
    expect(named.map((m) => m.line)).toEqual([...place.keys()].sort((a, b) => a - b).map((i) => i + 1));
    expect(named.every((m) => m.failures.some((f) => f.ip === '127.0.0.1'))).toBe(true);
  }, 120_000);
});
