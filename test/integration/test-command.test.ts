import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli, runCliWithInput, runNode } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-test-cmd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LOG = [
  'Nov 25 12:00:01 gate sshd[101]: Failed password for root from 192.0.2.7 port 40001 ssh2',
  'Nov 25 12:00:02 gate sshd[102]: Invalid user admin from 192.0.2.8 port 40002',
  'Nov 25 12:00:03 gate sshd[102]: Failed password for invalid user admin from 192.0.2.8 port 40002 ssh2',
  'Nov 25 12:00:04 gate CRON[103]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)',
  'Nov 25 12:00:05 gate sshd[104]: Accepted publickey for bob from 192.0.2.9 port 40004 ssh2',
  'a continuation line without a date',
  'Nov 25 12:00:06 gate sshd[105]: Invalid user x from host.example.com port 40005',
  'Nov 25 12:00:07 gate sshd[106]: error: kex_exchange_identification: Connection closed by remote host',
  'Nov 25 12:00:08 gate sshd[106]: Connection closed by 192.0.2.10 port 40006 [preauth]',
].join('\n');

const logFile = join(dir, 'auth.log');
writeFileSync(logFile, `${LOG}\n`);

describe('portcullis test LOG FILTER', () => {
  it('prints hit counts per regex, date formats and line counts', async () => {
    const result = await runCli(['test', logFile, 'sshd', '--logtimezone', 'UTC']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Filter: sshd (mode normal)');
    expect(result.stdout).toMatch(/\|\s+0\) \[2\] \^Failed /);
    expect(result.stdout).toMatch(/\|\s+2\) \[1\] \^Invalid user /);
    expect(result.stdout).toContain('|  [8] syslog (MMM dd HH:MM:SS)');
    // The closing line names the client of its connection (normal mode keeps sessions for
    // "Disconnecting: Too many authentication failures"), so it is not a missed line.
    expect(result.stdout).toContain('Lines: 9 lines, 0 ignored, 3 matched, 5 missed');
    expect(result.stdout).toContain('(1 line fed multi-line sessions without a failure yet)');
    expect(result.stdout).toContain('(1 missed line had no date)');
    expect(result.stdout).toContain(
      '(1 missed line named a host that is not an IP (DNS names are not resolved))',
    );
    expect(result.stdout).toMatch(/\[processed in \d+\.\d{3} s, [\d,]+ lines\/s\]/);
  });

  it('--json gives the same counts to machines, --print-matched the lines and their failures', async () => {
    const result = await runCli([
      'test',
      logFile,
      'sshd',
      '--mode',
      'aggressive',
      '--json',
      '--print-matched',
      '--logtimezone',
      'UTC',
    ]);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.filter).toMatchObject({ name: 'sshd', mode: 'aggressive' });
    expect(report.lines).toEqual({
      total: 9,
      matched: 4,
      ignored: 0,
      missed: 4,
      info: 1,
      noDate: 1,
      badHost: 1,
      truncated: 0,
    });
    expect(report.failures).toBe(4);
    expect(report.dateFormats).toEqual({ 'syslog (MMM dd HH:MM:SS)': 8 });
    expect(report.matchedLines.map((m: { line: number }) => m.line)).toEqual([1, 2, 3, 9]);
    expect(report.matchedLines[3].failures).toEqual([
      { ip: '192.0.2.10', timeMs: expect.any(Number), fields: {}, regexIndex: 29 },
    ]);
    expect(new Date(report.matchedLines[3].failures[0].timeMs).toISOString()).toMatch(
      /-11-25T12:00:07\.000Z$/,
    );
    expect(report.linesPerSecond).toBeGreaterThan(0);
  });

  it('reads standard input with -, lists missed lines, and takes a bare failregex as the filter', async () => {
    const { status, stdout } = await runCliWithInput(
      [
        'test',
        '-',
        'Accepted \\S+ for <F-USER>\\S+</F-USER> from <HOST> port',
        '--print-missed',
        '--print-matched',
      ],
      [Buffer.from(LOG)],
    );
    expect(status).toBe(0);
    expect(stdout).toContain('Lines: 9 lines, 0 ignored, 1 matched, 8 missed');
    expect(stdout).toContain('Matched lines: 1');
    expect(stdout).toMatch(/\|\s+5: Nov 25 12:00:05 .* → 192\.0\.2\.9 user="bob"/);
    expect(stdout).toContain('Missed lines: 8');
    expect(stdout).toContain('|       6: a continuation line without a date');
  });

  it('reads a named pipe (what `<(zcat auth.log.gz)` hands over) in one pass, in order', async () => {
    const fifo = join(dir, 'auth.fifo');
    execFileSync('mkfifo', [fifo]);
    const run = runCli(['test', fifo, 'sshd', '--logtimezone', 'UTC', '--json']);
    // Twice the log, in two writes: the reader gets it in pieces, as from a decompressor.
    const writer = await open(fifo, 'w');
    await writer.write(`${LOG}\n`);
    await writer.write(`${LOG}\n`);
    await writer.close();
    const result = await run;
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as { lines: { total: number; matched: number }; jobs: number };
    expect(report.lines).toMatchObject({ total: 18, matched: 6 });
    expect(report.jobs).toBe(1);
  });

  it('exits 2 naming the problem for a bad filter, mode or option', async () => {
    const re2 = await runCli(['test', logFile, '^x (?=y) <HOST>']);
    expect(re2.status).toBe(2);
    expect(re2.stderr).toBe(
      'filter.failregex.0: RE2 cannot compile "^x (?=y) <HOST>": invalid perl operator: (?=\n',
    );
    const mode = await runCli(['test', logFile, 'sshd', '--mode', 'agressive']);
    expect(mode.status).toBe(2);
    expect(mode.stderr).toBe(
      '--mode: the filter "sshd" has no mode "agressive" (modes: normal, aggressive)\n',
    );
    const long = await runCli(['test', logFile, 'sshd', '--max-line-length', '1073741824']);
    expect(long.status).toBe(2);
    expect(long.stderr).toBe(
      '--max-line-length: expected a whole number of bytes from 1 to 1048576, got "1073741824"\n',
    );
    const zone = await runCli(['test', logFile, 'sshd', '--logtimezone', 'Nowhere/Special']);
    expect(zone.status).toBe(2);
    expect(zone.stderr).toContain('--logtimezone: expected "UTC"');
    const missing = await runCli(['test', join(dir, 'absent.log'), 'sshd']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('absent.log: cannot read the log');
    // A directory: said so, no stack trace (the read used to fail with EISDIR and a stack).
    const directory = await runCli(['test', dir, 'sshd']);
    expect(directory.status).toBe(2);
    expect(directory.stderr).toBe(`${dir}: cannot read the log: it is a directory\n`);
  });

  it('reads a gzip-compressed log (auth.log.2.gz) as its text, refuses other compressions with the command that reads them', async () => {
    const plain = await runCli(['test', logFile, 'sshd', '--logtimezone', 'UTC', '--json']);
    const gz = join(dir, 'auth.log.2.gz');
    // Two gzip members, as `cat a.gz b.gz` or an appended rotation makes: both are read.
    writeFileSync(gz, Buffer.concat([gzipSync(`${LOG}\n`), gzipSync(`${LOG}\n`)]));
    const result = await runCli(['test', gz, 'sshd', '--logtimezone', 'UTC', '--json', '--jobs', '2']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    type Report = { lines: Record<string, number>; dateFormats: Record<string, number>; jobs: number };
    const once = JSON.parse(plain.stdout) as Report;
    const twice = JSON.parse(result.stdout) as Report;
    expect(twice.lines.total).toBe(2 * (once.lines.total as number));
    expect(twice.lines.matched).toBe(2 * (once.lines.matched as number));
    expect(twice.dateFormats).toEqual({ 'syslog (MMM dd HH:MM:SS)': 16 });
    expect(twice.jobs).toBe(1);

    const xz = join(dir, 'auth.log.3.xz');
    writeFileSync(xz, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04]));
    const refused = await runCli(['test', xz, 'sshd']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toBe(
      `${xz}: cannot read the log: it is xz-compressed; decompress it first: portcullis test <(xzcat ${xz}) FILTER\n`,
    );

    // Cut short (logrotate still compressing it): said so, exit 2, no stack trace.
    const damaged = join(dir, 'auth.log.4.gz');
    writeFileSync(damaged, gzipSync(`${LOG}\n`.repeat(50)).subarray(0, 40));
    const broken = await runCli(['test', damaged, 'sshd']);
    expect(broken.status).toBe(2);
    expect(broken.stderr).toBe(`${damaged}: cannot read the log: unexpected end of file\n`);
  });

  it('tells a compressed stream by its first bytes: gzip on standard input or through a FIFO is read as text, xz is refused', async () => {
    const plain = await runCli(['test', logFile, 'sshd', '--logtimezone', 'UTC', '--json']);
    const once = JSON.parse(plain.stdout) as { lines: Record<string, number> };
    type Report = { lines: Record<string, number>; dateFormats: Record<string, number> };
    // `zcat -f`-less habits: `portcullis test - sshd < auth.log.2.gz` and `<(cat auth.log.2.gz)`.
    const gz = Buffer.concat([gzipSync(`${LOG}\n`), gzipSync(`${LOG}\n`)]);
    const stdin = await runCliWithInput(['test', '-', 'sshd', '--logtimezone', 'UTC', '--json'], [gz]);
    expect(stdin.stderr).toBe('');
    expect(stdin.status).toBe(0);
    const fromStdin = JSON.parse(stdin.stdout) as Report;
    expect(fromStdin.lines.total).toBe(2 * (once.lines.total as number));
    expect(fromStdin.lines.matched).toBe(2 * (once.lines.matched as number));
    expect(fromStdin.dateFormats).toEqual({ 'syslog (MMM dd HH:MM:SS)': 16 });

    // Through a FIFO, its magic bytes split over two writes, ~1.4 MiB of gzip read in pipe-sized
    // pieces into reused buffers: the same counts as the text read from a file.
    const noise = Array.from(
      { length: 50_000 },
      () => `Nov 25 12:00:09 gate cron[9]: ${randomBytes(24).toString('hex')}`,
    );
    const big = `${LOG}\n${noise.join('\n')}\n${LOG}\n`;
    const bigFile = join(dir, 'big.log');
    writeFileSync(bigFile, big);
    const bigGz = gzipSync(big);
    expect(bigGz.length).toBeGreaterThan(1 << 20);
    const fromFile = await runCli(['test', bigFile, 'sshd', '--logtimezone', 'UTC', '--json']);
    const fifo = join(dir, 'gz.fifo');
    execFileSync('mkfifo', [fifo]);
    const run = runCli(['test', fifo, 'sshd', '--logtimezone', 'UTC', '--json']);
    const writer = await open(fifo, 'w');
    await writer.write(bigGz.subarray(0, 1));
    await new Promise((r) => setTimeout(r, 50));
    await writer.write(bigGz.subarray(1));
    await writer.close();
    const throughFifo = await run;
    expect(throughFifo.stderr).toBe('');
    expect((JSON.parse(throughFifo.stdout) as Report).lines).toEqual(
      (JSON.parse(fromFile.stdout) as Report).lines,
    );

    // Plain text on standard input that happens to be short is text, as before.
    const short = await runCliWithInput(['test', '-', 'sshd', '--json'], [Buffer.from('ab')]);
    expect(short.status).toBe(0);
    expect((JSON.parse(short.stdout) as Report).lines.total).toBe(1);

    const xz = await runCliWithInput(
      ['test', '-', 'sshd'],
      [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04])],
    );
    expect(xz.status).toBe(2);
    expect(xz.stderr).toBe(
      '(standard input): cannot read the log: it is xz-compressed; decompress it on the way in: xzcat FILE | portcullis test - FILTER\n',
    );
    const cut = await runCliWithInput(['test', '-', 'sshd'], [gz.subarray(0, 40)]);
    expect(cut.status).toBe(2);
    expect(cut.stderr).toBe('(standard input): cannot read the log: unexpected end of file\n');
  });

  it('reads a gzip bomb line by line: 640 MiB without a newline from ~600 KiB, cut, never held whole', async () => {
    // Held whole, the one "line" would be longer than V8's longest string (~512 Mi characters):
    // the process would fail. Cut at --max-line-length, it is one truncated line.
    const gzip = createGzip({ level: 9 });
    const parts: Buffer[] = [];
    gzip.on('data', (part: Buffer) => parts.push(part));
    const done = new Promise((resolve) => gzip.on('end', resolve));
    const block = Buffer.alloc(1024 * 1024, 'a');
    for (let i = 0; i < 640; i++) if (!gzip.write(block)) await new Promise((r) => gzip.once('drain', r));
    gzip.end();
    await done;
    const bomb = Buffer.concat(parts);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const file = join(dir, 'bomb.log.gz');
    writeFileSync(file, bomb);
    for (const input of [{ args: [file] }, { args: ['-'], stdin: [bomb] }]) {
      const result = await runNode(
        ['--import', 'tsx', CLI, 'test', ...input.args, 'sshd', '--json'],
        {},
        [],
        input.stdin,
      );
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const report = JSON.parse(result.stdout) as { lines: Record<string, number> };
      expect(report.lines).toMatchObject({ total: 1, truncated: 1, matched: 0 });
    }
  }, 60_000);

  it('exits 2 naming the log a user may not read (it used to crash on an unhandled stream error)', async () => {
    // Run as nobody (the tests run as root, who may read anything): a file of mode 000 in a
    // directory nobody may enter.
    const parent = mkdtempSync(join(tmpdir(), 'portcullis-test-cmd-perm-'));
    try {
      chmodSync(parent, 0o755);
      const secret = join(parent, 'auth.log');
      writeFileSync(secret, `${LOG}\n`, { mode: 0o000 });
      const result = await runCli(['test', secret, 'sshd'], {}, [
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
      ]);
      expect(result.stderr).toBe(
        `${secret}: cannot read the log: EACCES: permission denied, open '${secret}'\n`,
      );
      expect(result.status).toBe(2);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
