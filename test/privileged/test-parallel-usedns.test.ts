import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutTarget, PARALLEL_MIN_BYTES } from '../../src/surfaces/cli/test-parallel.js';
import { type CliResult, runCli } from '../helpers/cli.js';

// `portcullis test --usedns` with the system resolver, run inside a network namespace of its own
// (loopback only, down): `localhost` resolves from /etc/hosts, `nonexistent.invalid` fails at once
// (the configured name server is unreachable), and no query leaves the machine.

const run = promisify(execFile);
const ns = `pc-dns-${randomBytes(3).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-usedns-'));

beforeAll(async () => {
  await run('ip', ['netns', 'add', ns]);
});
afterAll(async () => {
  await run('ip', ['netns', 'delete', ns]).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, {}, ['ip', 'netns', 'exec', ns]);
}

const WIDTH = 128;
const LINES = Math.ceil((PARALLEL_MIN_BYTES + 512 * 1024) / WIDTH);
const SIZE = LINES * WIDTH;
const cutLine = (jobs: number, k: number) => Math.ceil(cutTarget(SIZE, jobs, k) / WIDTH);
const FILLER = 'Nov 25 12:00:00 gate CRON[7]: pam_unix(cron:session): session closed for user root';
const byName = (n: number, name: string) =>
  `Nov 25 12:00:00 gate sshd[${40000 + n}]: Failed password for root from ${name} port 22 ssh2`;

describe('portcullis test --usedns with --jobs', () => {
  const good = new Set<number>();
  const bad = new Set<number>();
  let file: string;
  beforeAll(() => {
    for (const cut of [cutLine(2, 1), cutLine(3, 1), cutLine(3, 2)]) {
      for (let d = -3; d <= 3; d++) (d % 2 === 0 ? good : bad).add(cut + d);
    }
    for (let i = 100; i < 120; i++) (i % 3 === 0 ? bad : good).add(i);
    const parts: string[] = [];
    for (let i = 0; i < LINES; i++) {
      const text = good.has(i)
        ? byName(i, 'localhost')
        : bad.has(i)
          ? byName(i, 'nonexistent.invalid')
          : FILLER;
      parts.push(`${text.padEnd(WIDTH - 1)}\n`);
    }
    file = join(dir, 'names.log');
    writeFileSync(file, parts.join(''));
  }, 120_000);

  it('counts a name that resolves as matched and one that does not as a bad host, the same in 1, 2 and 3 threads', async () => {
    const results = await Promise.all(
      [1, 2, 3].map((jobs) =>
        cli([
          'test',
          file,
          'sshd',
          '--usedns',
          'yes',
          '--jobs',
          String(jobs),
          '--json',
          '--print-matched',
          '--print-missed',
        ]),
      ),
    );
    const reports = results.map((r) => {
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return JSON.parse(r.stdout);
    });
    expect(reports.map((r) => r.jobs)).toEqual([1, 2, 3]);
    expect(reports[0].lines).toMatchObject({ matched: good.size, badHost: bad.size, info: 0 });
    const lineNumbers = (set: Set<number>) => [...set].sort((a, b) => a - b).map((i) => i + 1);
    expect(reports[0].matchedLines.map((m: { line: number }) => m.line)).toEqual(lineNumbers(good));
    expect(
      reports[0].missedLines
        .filter((m: { text: string }) => m.text.includes('nonexistent'))
        .map((m: { line: number }) => m.line),
    ).toEqual(lineNumbers(bad));
    const strip = ({
      elapsedMs: _e,
      linesPerSecond: _l,
      jobs: _j,
      reruns: _r,
      ...rest
    }: Record<string, unknown>) => rest;
    expect(strip(reports[1])).toEqual(strip(reports[0]));
    expect(strip(reports[2])).toEqual(strip(reports[0]));
  }, 120_000);

  it('--usedns warn names each resolved name once on stderr, whatever the threads; the text says what did not resolve', async () => {
    const result = await cli(['test', file, 'sshd', '--usedns', 'warn', '--jobs', '3']);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(
      'warning: --usedns warn: localhost resolved to 127.0.0.1; whoever controls its DNS chooses whom a ban of it hits\n',
    );
    expect(result.stdout).toContain(`${good.size} matched`);
    expect(result.stdout).toContain(
      `(${bad.size} missed lines named a host that is not an IP and did not resolve)`,
    );
    expect(result.stdout).toMatch(/lines\/s, 3 jobs\]/);
  }, 120_000);
});
