import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCommandAction } from '../../../../src/actions/command/command-action.js';
import { commandOptionsSchema, resolveCommandOptions } from '../../../../src/actions/command/options.js';
import { ActionRunner } from '../../../../src/actions/runner.js';
import { createManualClock } from '../../../../src/core/clock.js';
import type { Decision } from '../../../../src/core/types.js';
import { createGuard } from '../../../../src/guard.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';

const clock = createManualClock();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const ban = (target: string, extra: Partial<Decision> = {}): Decision => ({
  target,
  jail: 'sshd',
  reason: '5 failures within 10m',
  startedAt: clock.now(),
  expiresAt: clock.now() + 3_600_000,
  banCount: 1,
  dryRun: false,
  origin: 'test',
  ...extra,
});

interface Run {
  argv: string[];
  env: Record<string, string>;
  stdin: string;
}

/**
 * A temp dir with a recording script: each run writes its argv and environment (NUL-separated)
 * and its stdin to files of its own. `/bin/sh` is the test's helper; portcullis never builds a
 * shell string.
 */
async function fixture(body = '') {
  const dir = await mkdtemp(join(tmpdir(), 'pc-command-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const runs = join(dir, 'runs');
  await mkdir(runs);
  await mkdir(join(dir, 'victim'));
  const script = join(dir, 'record.sh');
  await writeFile(
    script,
    `#!/bin/sh\nf="${runs}/$$"\nfor a in "$@"; do printf '%s\\0' "$a"; done > "$f.argv"\nenv -0 > "$f.env"\ncat > "$f.stdin"\n${body}\n`,
  );
  await chmod(script, 0o755);
  const read = async (): Promise<Run[]> => {
    const names = (await readdir(runs)).filter((n) => n.endsWith('.argv'));
    return Promise.all(
      names.map(async (name) => {
        const base = join(runs, name.slice(0, -5));
        const argv = (await readFile(`${base}.argv`, 'utf8')).split('\0').slice(0, -1);
        const env = Object.fromEntries(
          (await readFile(`${base}.env`, 'utf8'))
            .split('\0')
            .filter(Boolean)
            .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        );
        return { argv, env, stdin: await readFile(`${base}.stdin`, 'utf8') };
      }),
    );
  };
  return { dir, script, read };
}

function action(
  options: Record<string, unknown>,
  logs: { level: string; fields: object; message?: string }[] = [],
) {
  const config = resolveCommandOptions('command', commandOptionsSchema.parse(options));
  const log = (level: string) => (fields: object, message?: string) => logs.push({ level, fields, message });
  const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  return createCommandAction('command', config, { logger, clock, baseDir: null });
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('command action (real processes)', () => {
  it('passes hostile values as literal argv strings and runs nothing of them', async () => {
    const { dir, script, read } = await fixture();
    const canary = join(dir, 'canary');
    const hostile = [
      `1.2.3.4; rm -rf ${dir}/victim; touch ${canary}`,
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `x\ntouch ${canary}`,
      `root' ; touch ${canary} #`,
      `"; touch ${canary}; echo "`,
    ];
    const logs: { level: string; fields: object; message?: string }[] = [];
    const a = action({ ban: [script, '<ip>', '<jail>', '--reason=<reason>', '<family>', '<bantime>'] }, logs);
    await a.start();
    await a.apply(hostile.map((value) => ban('192.0.2.7', { jail: value, reason: value })));
    // A hostile target is refused before anything runs.
    await a.apply(hostile.map((value) => ban(value)));
    const runs = await read();
    expect(runs).toHaveLength(hostile.length);
    expect(runs.map((r) => r.argv).sort()).toEqual(
      hostile.map((value) => ['192.0.2.7', value, `--reason=${value}`, 'inet4', '3600']).sort(),
    );
    for (const run of runs) {
      expect(hostile).toContain(run.env.PORTCULLIS_JAIL);
      expect(run.env.PORTCULLIS_IP).toBe('192.0.2.7');
      expect(run.env.PORTCULLIS_OP).toBe('ban');
    }
    expect(await exists(canary)).toBe(false);
    expect(await exists(join(dir, 'victim'))).toBe(true);
    expect(logs.filter((l) => l.level === 'error').map((l) => l.message)).toEqual([
      expect.stringContaining(`${hostile.length} target(s) refused`),
    ]);
  });

  it('runs once per batch with the decisions as JSON lines on stdin', async () => {
    const { script, read } = await fixture();
    const a = action({ ban: [script, 'ban'], unban: [script, 'unban'], batch: true });
    await a.apply([ban('192.0.2.1'), ban('2001:db8::/64', { expiresAt: null })]);
    await a.revert([ban('192.0.2.1')]);
    const runs = await read();
    expect(runs).toHaveLength(2);
    const banRun = runs.find((r) => r.argv[0] === 'ban') as Run;
    expect(banRun.env.PORTCULLIS_COUNT).toBe('2');
    expect(
      banRun.stdin
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([
      expect.objectContaining({ ip: '192.0.2.1', family: 'inet4', bantime: '3600', failures: '5' }),
      expect.objectContaining({ ip: '2001:db8::/64', family: 'inet6', bantime: '-1' }),
    ]);
    expect(a.runs).toBe(2);
  });

  it('kills a hanging program and what it started, SIGKILL when it ignores SIGTERM', async () => {
    const { dir, script } = await fixture(
      `trap '' TERM\nsleep 30 &\necho $! > "${'$'}(dirname "$0")/sleep.pid"\nwait`,
    );
    const a = action({ ban: [script], timeout: '300ms' });
    const started = Date.now();
    await expect(a.apply([ban('192.0.2.1')])).rejects.toThrow(/timed out after 300 ms and was killed/);
    expect(Date.now() - started).toBeLessThan(5000);
    const pid = Number(await readFile(join(dir, 'sleep.pid'), 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Gone, or a zombie waiting for a PID 1 that does not reap (a container): either way, not running.
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').then(
      (text) => text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3),
      () => 'gone',
    );
    expect(['gone', 'Z']).toContain(state);
  });

  it('a hung program whose child escaped (setsid + double fork, holding its output) fails at the deadline; the escaped child is killed too', async () => {
    const { dir, script } = await fixture(
      `trap '' TERM\nd=$(dirname "$0")\nsetsid sh -c 'sleep 30 & echo $! > "$1"/escaped.pid' sh "$d"\nsleep 30`,
    );
    const a = action({ ban: [script], timeout: '300ms' });
    const started = Date.now();
    await expect(a.apply([ban('192.0.2.1')])).rejects.toThrow(/timed out after 300 ms and was killed/);
    expect(Date.now() - started).toBeLessThan(5000);
    const pid = Number(await readFile(join(dir, 'escaped.pid'), 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Gone, or a zombie waiting for a PID 1 that does not reap (a container): either way, not running.
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').then(
      (text) => text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3),
      () => 'gone',
    );
    expect(['gone', 'Z']).toContain(state);
  });

  it('a program that exits leaving a setsid child holding its output is not waited for', async () => {
    const { dir, script } = await fixture(
      `setsid sleep 3 &\necho $! > "${'$'}(dirname "$0")/daemon.pid"\nexit 0`,
    );
    const a = action({ ban: [script], timeout: '10s' });
    const started = Date.now();
    await a.apply([ban('192.0.2.1')]);
    expect(Date.now() - started).toBeLessThan(2500);
    const pid = Number(await readFile(join(dir, 'daemon.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
  });

  it('a failing program is retried by the runner with backoff, its output logged', async () => {
    const { script, read } = await fixture(
      `d=$(dirname "$0"); if [ ! -e "$d/failed-once" ]; then touch "$d/failed-once"; echo "no route to pager" >&2; exit 3; fi`,
    );
    const logs: { level: string; fields: object; message?: string }[] = [];
    const a = action({ ban: [script, '<ip>'] }, logs);
    const guard = await createGuard(
      { jails: { sshd: { maxretry: 1, findtime: '10m', bantime: '1h', ignoreip: [], ignoreself: false } } },
      { clock, store: new MemoryStore(), env: {} },
    );
    cleanups.push(() => guard.close());
    const runner = new ActionRunner([a], { clock, backoffMs: 5, maxBackoffMs: 20, checkIntervalMs: 0 });
    cleanups.unshift(() => runner.close());
    await runner.start(guard);
    await guard.report('192.0.2.9', { jail: 'sshd' });
    for (let i = 0; i < 100 && (runner.stats().command?.applied ?? 0) === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(runner.stats().command).toMatchObject({ applied: 1, failures: 1, retries: 1, pending: 0 });
    expect((await read()).map((r) => r.argv)).toEqual([['192.0.2.9'], ['192.0.2.9']]);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        fields: expect.objectContaining({ stderr: 'no route to pager' }),
      }),
    );
  });

  it('on the retry of a batch, does not run again what already succeeded', async () => {
    const { script, read } = await fixture(
      `d=$(dirname "$0"); if [ "$1" = 192.0.2.2 ] && [ ! -e "$d/failed-once" ]; then touch "$d/failed-once"; exit 1; fi`,
    );
    const a = action({ ban: [script, '<ip>'] });
    const batch = [ban('192.0.2.1'), ban('192.0.2.2'), ban('192.0.2.3')];
    await expect(a.apply(batch)).rejects.toThrow(/exited with status 1/);
    await a.apply(batch);
    const runs = (await read()).map((r) => r.argv[0]).sort();
    expect(runs).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.2', '192.0.2.3']);
  });

  it("keeps a bounded part of a chatty program's output", async () => {
    const { script } = await fixture(`head -c 100000 /dev/zero | tr '\\0' x`);
    const logs: { level: string; fields: object; message?: string }[] = [];
    await action({ ban: [script] }, logs).apply([ban('192.0.2.1')]);
    const fields = logs.find((l) => l.level === 'info')?.fields as { stdout: string; truncated: boolean };
    expect(fields.stdout.length).toBeLessThanOrEqual(8192);
    expect(fields.truncated).toBe(true);
  });

  it('refuses to start when the program is missing or not executable', async () => {
    const { dir } = await fixture();
    await writeFile(join(dir, 'plain'), 'x');
    await expect(action({ ban: [join(dir, 'missing')] }).start()).rejects.toThrow(/not an executable file/);
    await expect(action({ ban: ['/bin/true'], unban: [join(dir, 'plain')] }).start()).rejects.toThrow(
      /plain is not/,
    );
    await action({ ban: ['true'] }).start();
  });
});
