import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import type { JailOptions } from '../../src/config/schema.js';
import type { Logger } from '../../src/core/logger.js';
import { createGuard } from '../../src/guard.js';
import { type LogJails, type LogJailsOptions, startLogJails } from '../../src/sources/log/log-jail.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import {
  logJailSettled,
  makeTempDir,
  numberedLines,
  type RecordedReport,
  recordingGuard,
  reportedNumbers,
  standInFilter,
} from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait-for.js';

const journalScript = fileURLToPath(new URL('../fixtures/processes/log-journal.mjs', import.meta.url));

let dir: string;
let logged: { level: string; message: string }[];
const closers: (() => Promise<void>)[] = [];
const logger: Logger = {
  debug: (_fields, message = '') => logged.push({ level: 'debug', message }),
  info: (_fields, message = '') => logged.push({ level: 'info', message }),
  warn: (_fields, message = '') => logged.push({ level: 'warn', message }),
  error: (_fields, message = '') => logged.push({ level: 'error', message }),
};

beforeEach(() => {
  dir = makeTempDir('portcullis-jail-');
  logged = [];
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A guard with these jails (nothing ignored) and its log jails started, with the stand-in filter
 * unless `options.makeFilter` is `undefined` (the config names a real filter: it must validate).
 */
async function start(
  jails: Record<string, JailOptions>,
  options: LogJailsOptions = {},
): Promise<{ guard: ReturnType<typeof recordingGuard>; logJails: LogJails }> {
  const withDefaults = Object.fromEntries(
    Object.entries(jails).map(([name, jail]) => [
      name,
      { filter: 'sshd', maxretry: 1_000_000, findtime: '1d', ignoreip: [], ignoreself: false, ...jail },
    ]),
  );
  const real = await createGuard(resolveConfig({ jails: withDefaults }, { env: {} }), {
    store: new MemoryStore(),
    env: {},
  });
  closers.push(() => real.close());
  const guard = recordingGuard(real);
  const logJails = await startLogJails(guard, {
    makeFilter: (_jail, context) => standInFilter(context.journald ? context.lineTimeMs : Date.now),
    pollIntervalMs: 50,
    globIntervalMs: 100,
    commandBackoffMs: 100,
    logger,
    ...options,
  });
  closers.push(() => logJails.close());
  return { guard, logJails };
}

const ofJail = (reports: readonly RecordedReport[], jail: string) =>
  reports.filter((report) => report.options.jail === jail);

describe('log jails: files', () => {
  it('start: end (the default) counts only new lines; start: beginning counts the whole file', async () => {
    const file = path.join(dir, 'auth.log');
    fs.writeFileSync(file, numberedLines(1, 3));
    const { guard, logJails } = await start({
      tail: { source: { log: file } },
      whole: { source: { log: file, start: 'beginning' } },
    });
    fs.appendFileSync(file, numberedLines(4, 5));
    await waitFor(
      () => ofJail(guard.reports, 'whole').length >= 5 && ofJail(guard.reports, 'tail').length >= 2,
    );
    await logJailSettled(logJails, 'tail', 2);
    await logJailSettled(logJails, 'whole', 5);
    expect(reportedNumbers(ofJail(guard.reports, 'tail')).sort()).toEqual([4, 5]);
    expect(reportedNumbers(ofJail(guard.reports, 'whole')).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(guard.reports[0]?.options.fields).toMatchObject({ n: expect.any(String) });
  });

  it('does not count lines older than now − findtime (no ban storm when a file is read again)', async () => {
    const file = path.join(dir, 'auth.log');
    fs.writeFileSync(file, numberedLines(1, 3, Date.now() - 3_600_000) + numberedLines(4, 5));
    const { guard, logJails } = await start({
      sshd: { source: { log: file, start: 'beginning' }, findtime: '10m' },
    });
    await waitFor(() => guard.reports.length >= 2);
    await logJailSettled(logJails, 'sshd', 5);
    expect(reportedNumbers(guard.reports).sort()).toEqual([4, 5]);
    expect(logJails.stats().sshd).toMatchObject({ lines: 5, matches: 5, tooOld: 3, reports: 2 });
  });

  it('reports one address in line order, one at a time: 12 failures and maxretry 5 make exactly one ban', async () => {
    const file = path.join(dir, 'auth.log');
    const line = `${new Date().toISOString()} FAIL from 198.51.100.7\n`;
    fs.writeFileSync(file, line.repeat(12));
    const { guard } = await start({ sshd: { source: { log: file, start: 'beginning' }, maxretry: 5 } });
    await waitFor(() => guard.reports.length >= 12);
    expect(guard.reports.map((report) => report.result.outcome)).toEqual([
      ...Array(4).fill('counted'),
      'banned',
      ...Array(7).fill('already-banned'),
    ]);
  });

  it('warns about a literal path named like a compressed file, and reads it as it is', async () => {
    const file = path.join(dir, 'auth.log.2.gz');
    fs.writeFileSync(file, numberedLines(1, 2));
    const { guard } = await start({ sshd: { source: { log: file, start: 'beginning' } } });
    await waitFor(() => guard.reports.length >= 2);
    const warnings = logged.filter((entry) => entry.message.includes('is named like a compressed file'));
    expect(warnings.map((entry) => entry.message)).toEqual([
      `jail sshd: ${file} is named like a compressed file; its bytes are read as lines as they are (no decompression)`,
    ]);
  });

  it('follows every file a glob matches, including files that appear later', async () => {
    const glob = path.join(dir, 'logs', '*.log');
    const { guard, logJails } = await start({
      web: { source: { log: [glob, path.join(dir, 'plain.log')] } },
    });
    await waitFor(() => logged.some((entry) => entry.message.includes(`nothing matches ${glob} yet`)));
    fs.mkdirSync(path.join(dir, 'logs'));
    fs.writeFileSync(path.join(dir, 'logs', 'a.log'), numberedLines(1, 2));
    fs.writeFileSync(path.join(dir, 'logs', 'ignored.txt'), numberedLines(100, 101));
    await waitFor(() => guard.reports.length >= 2);
    fs.writeFileSync(path.join(dir, 'logs', 'b.log'), numberedLines(3, 4));
    fs.writeFileSync(path.join(dir, 'plain.log'), numberedLines(5, 5));
    await waitFor(() => guard.reports.length >= 5);
    await logJailSettled(logJails, 'web', 5);
    // Kept: a negative, ignored.txt stays unread; a few glob (100 ms) and poll (50 ms) turns to show it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reportedNumbers(guard.reports).sort()).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('log jails: commands', () => {
  it('reports what a command prints, and restarts it with a growing backoff after it exits', async () => {
    const { guard } = await start({
      cmd: { source: { command: ['sh', '-c', "printf 'FAIL from 192.0.2.1\\n'"] } },
    });
    await waitFor(() => guard.reports.length >= 4, { timeoutMs: 20_000, message: '4 runs' });
    // Times taken when each report settled, not when the poll noticed it (polls lag under load).
    const times = guard.reports.map((report) => report.at);
    expect(guard.reports.every((report) => report.ip === '192.0.2.1')).toBe(true);
    // Backoff 100 ms, 200 ms, 400 ms (the first run was at once). Report times carry some jitter
    // on a loaded machine, so each gap is checked against half its backoff: still growing.
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(50);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(100);
    expect((times[3] as number) - (times[2] as number)).toBeGreaterThanOrEqual(200);
    expect(
      logged.some(
        (entry) => entry.level === 'warn' && entry.message.includes('exited (status 0); restarting in'),
      ),
    ).toBe(true);
  });

  it('never runs the command through a shell', async () => {
    const { guard } = await start({
      cmd: { source: { command: ['printf', 'FAIL from %s\\n', '$(echo 192.0.2.66)'] } },
    });
    await waitFor(() => guard.reports.length >= 1);
    expect(guard.reports[0]?.ip).toBe('$(echo');
    expect(guard.reports[0]?.result.outcome).toBe('invalid-ip');
  });

  it('kills the command and what it started on close', async () => {
    const pidFile = path.join(dir, 'pids');
    const { logJails } = await start({
      cmd: { source: { command: ['sh', '-c', `sleep 1000 & echo $$ $! > ${pidFile}; wait`] } },
    });
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').includes('\n'));
    const pids = fs.readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
    expect(pids).toHaveLength(2);
    await logJails.close();
    // A zombie (reparented, not yet reaped by PID 1 of a container) counts as gone.
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    await waitFor(() => !pids.some(alive), {
      timeoutMs: 5000,
      message: 'the command and its child to be gone',
    });
  });

  it('logs stderr lines at warn, a few per 10 s', async () => {
    await start({
      cmd: {
        source: {
          command: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "oops $i" >&2; done; sleep 1000'],
        },
      },
    });
    await waitFor(() => logged.some((entry) => entry.message.endsWith('oops 5')));
    // Kept: a negative, oops 6-10 are throttled; nothing marks the end of stderr, so give it time.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(logged.filter((entry) => entry.level === 'warn' && entry.message.includes('oops'))).toHaveLength(
      5,
    );
  });

  it('reads journalctl -o json entries: fail2ban’s line format, the entry’s own time, old entries dropped', async () => {
    const lines: string[] = [];
    const { guard, logJails } = await start(
      { journal: { source: { command: [process.execPath, journalScript, '-o', 'json'] }, findtime: '10m' } },
      {
        makeFilter: (_jail, context) => {
          expect(context.journald).toBe(true);
          const filter = standInFilter(context.lineTimeMs);
          return {
            processLine(line) {
              lines.push(line);
              return filter.processLine(line);
            },
          };
        },
      },
    );
    await waitFor(() => guard.reports.length >= 2 && lines.length >= 4);
    await logJailSettled(logJails, 'journal', 4);
    expect(lines[1]).toBe('web1 sshd[11]: FAIL from 192.0.2.9');
    expect(guard.reports.map((report) => report.ip)).toEqual(['192.0.2.9', '192.0.2.9']);
    const [first, second] = guard.reports.map((report) => report.options.timeMs as number);
    expect(Date.now() - (first as number)).toBeGreaterThanOrEqual(1900);
    expect((second as number) - (first as number)).toBe(1000);
    expect(logJails.stats().journal).toMatchObject({ lines: 4, matches: 3, tooOld: 1, reports: 2 });
  });
});

describe('log jails: the bundled regex filter engine (default makeFilter)', () => {
  /** `Nov 25 13:01:02`, syslog's local-time format. */
  function syslogTime(ms: number): string {
    const d = new Date(ms);
    const month = d.toLocaleString('en-US', { month: 'short' });
    const pad = (n: number) => String(n).padStart(2, '0');
    return `${month} ${String(d.getDate()).padStart(2, ' ')} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  it('counts sshd failures from a syslog file with their own time, and drops old ones', async () => {
    const file = path.join(dir, 'auth.log');
    const line = (ms: number, ip: string, user: string) =>
      `${syslogTime(ms)} web1 sshd[4242]: Failed password for ${user} from ${ip} port 22 ssh2\n`;
    const now = Date.now();
    fs.writeFileSync(
      file,
      line(now - 3_600_000, '192.0.2.1', 'old') +
        line(now - 5000, '192.0.2.2', 'root') +
        `${syslogTime(now)} web1 sshd[4242]: Accepted publickey for deploy from 192.0.2.3 port 22 ssh2\n`,
    );
    const { guard, logJails } = await start(
      { sshd: { source: { log: file, start: 'beginning' }, filter: 'sshd', findtime: '10m' } },
      { makeFilter: undefined },
    );
    await waitFor(() => guard.reports.length >= 1);
    await logJailSettled(logJails, 'sshd', 3);
    expect(guard.reports.map((report) => [report.ip, report.options.fields?.user])).toEqual([
      ['192.0.2.2', 'root'],
    ]);
    expect(Math.abs((guard.reports[0]?.options.timeMs as number) - (now - 5000))).toBeLessThan(1000);
    expect(logJails.stats().sshd).toMatchObject({ lines: 3, matches: 2, tooOld: 1, reports: 1 });
  });

  it('reads journalctl -o json through the sshd filter with the entries’ times', async () => {
    const { guard, logJails } = await start(
      {
        journal: {
          source: { command: [process.execPath, journalScript, '-o', 'json', '--sshd'] },
          filter: 'sshd',
          findtime: '10m',
        },
      },
      { makeFilter: undefined },
    );
    await waitFor(() => guard.reports.length >= 2);
    await logJailSettled(logJails, 'journal', 4);
    expect(guard.reports.map((report) => report.ip)).toEqual(['192.0.2.9', '192.0.2.9']);
    const [first, second] = guard.reports.map((report) => report.options.timeMs as number);
    expect((second as number) - (first as number)).toBe(1000);
    expect(logJails.stats().journal).toMatchObject({ lines: 4, matches: 3, tooOld: 1, reports: 2 });
  });

  it('usedns: warn resolves a DNS name in the background and reports each of its addresses once resolved', async () => {
    // "localhost" is answered by /etc/hosts through getaddrinfo: no DNS server is involved.
    const file = path.join(dir, 'auth.log');
    const now = Date.now();
    fs.writeFileSync(
      file,
      `${syslogTime(now - 2000)} web1 sshd[4243]: Failed password for root from localhost port 22 ssh2\n` +
        `${syslogTime(now - 1000)} web1 sshd[4244]: Invalid user admin from localhost port 23\n`,
    );
    const { guard, logJails } = await start(
      {
        sshd: { source: { log: file, start: 'beginning' }, filter: 'sshd', findtime: '10m', usedns: 'warn' },
      },
      { makeFilter: undefined },
    );
    await waitFor(() => guard.reports.length >= 2);
    await logJailSettled(logJails, 'sshd', 2);
    const ips = new Set(guard.reports.map((report) => report.ip));
    expect([...ips].some((ip) => ip === '127.0.0.1' || ip === '::1')).toBe(true);
    expect(guard.reports.every((report) => report.options.fields?.dns === 'localhost')).toBe(true);
    expect(guard.reports.map((report) => report.options.fields?.user)).toContain('admin');
    // warn: one warning for the name, not one per line.
    expect(
      logged.filter((entry) => entry.level === 'warn' && entry.message.includes('localhost')),
    ).toHaveLength(1);
  });

  it('usedns: no (the default) counts nothing for a DNS name, and a bad usedns is a config error', async () => {
    const file = path.join(dir, 'auth.log');
    fs.writeFileSync(
      file,
      `${syslogTime(Date.now())} web1 sshd[4245]: Failed password for root from localhost port 22 ssh2\n`,
    );
    const { guard, logJails } = await start(
      { sshd: { source: { log: file, start: 'beginning' }, filter: 'sshd', findtime: '10m' } },
      { makeFilter: undefined },
    );
    await logJailSettled(logJails, 'sshd', 1);
    expect(guard.reports).toEqual([]);
    expect(() =>
      resolveConfig(
        { jails: { sshd: { source: { log: file }, filter: 'sshd', usedns: 'raw' as never } } },
        { env: {} },
      ),
    ).toThrow(/jails\.sshd\.usedns/);
  });

  it('refuses to start a log jail without a filter, naming the jail', async () => {
    await expect(
      start(
        { nofilter: { source: { log: path.join(dir, 'x.log') }, filter: undefined } },
        { makeFilter: undefined },
      ),
    ).rejects.toThrow('jails.nofilter.filter: a log jail needs a filter');
  });
});
