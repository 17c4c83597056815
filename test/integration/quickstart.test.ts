import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SendOptions, send } from '../helpers/http-client.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The README's quick start, as a user runs it: `npm start` through npm and its `sh -c`, then
 * SIGTERM or SIGINT to npm alone, as a process manager or `kill` would send it. `--ignore-scripts`
 * skips only `prestart` (the build, which CI has done before `npm test`); `start` runs as it is.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SECOND_CLIENT = '127.0.0.2'; // any of 127.0.0.0/8 is loopback on Linux

interface QuickStart {
  npm: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()?.();
});

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist/surfaces/cli/main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before this test (npm start and .ci/run do)');
  }
});

function startQuickStart(env: NodeJS.ProcessEnv = {}): QuickStart {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-quickstart-test-'));
  const npm = spawn('npm', ['start', '--ignore-scripts'], {
    cwd: ROOT,
    // Its own process group, so that a failed test can still take down whatever npm left behind.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: '0',
      APP_PORT: '0',
      PORTCULLIS_SQLITE_PATH: join(dir, 'quickstart.db'),
      npm_config_update_notifier: 'false',
      ...env,
    },
  });
  let output = '';
  npm.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  npm.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.on('exit', (code, signal) => resolve({ code, signal })),
  );
  cleanups.push(() => {
    if (npm.pid !== undefined) {
      try {
        process.kill(-npm.pid, 'SIGKILL');
      } catch {
        // the group is already gone: the test passed
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { npm, output: () => output, exited };
}

/** Waits for the banner; the proxy's and the demo app's ports. */
async function urlsOf(run: QuickStart): Promise<{ proxyPort: number; appPort: number }> {
  const proxy = /portcullis proxy\s+http:\/\/127\.0\.0\.1:(\d+)/;
  const app = /demo app\s+http:\/\/127\.0\.0\.1:(\d+)/;
  await waitFor(
    () => {
      if (run.npm.exitCode !== null) throw new Error(`npm start exited early:\n${run.output()}`);
      return proxy.test(run.output()) && app.test(run.output());
    },
    { timeoutMs: 10_000, message: 'the quick-start banner' },
  );
  return {
    proxyPort: Number(proxy.exec(run.output())?.[1]),
    appPort: Number(app.exec(run.output())?.[1]),
  };
}

/** `pid` and every process below it, read from /proc (Linux). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = statOf(Number(entry))?.ppid;
    if (ppid === undefined) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i] as number) ?? []));
  return tree;
}

function statOf(pid: number): { state: string; ppid: number } | undefined {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state ?? '', ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Still running: signal 0 reaches it, and it is not a zombie (exited, not yet reaped). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return statOf(pid)?.state !== 'Z';
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '?';
  }
}

async function expectAllGone(pids: number[], run: QuickStart): Promise<void> {
  await waitFor(() => pids.every((pid) => !isRunning(pid)), {
    timeoutMs: 5_000,
    message: 'every process of npm start to exit',
  }).catch((error: Error) => {
    const left = pids.filter(isRunning).map((pid) => `${pid} ${commandOf(pid)}`);
    throw new Error(`${error.message}; still running:\n${left.join('\n')}\noutput:\n${run.output()}`);
  });
}

const wrongLogin: SendOptions = {
  method: 'POST',
  path: '/login',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: 'password=wrong',
};

describe('npm start (the quick start)', () => {
  it('serves the demo app through the proxy, bans a brute-forcer and a scanner, and leaves no process behind after SIGTERM', async () => {
    const run = startQuickStart();
    const { proxyPort, appPort } = await urlsOf(run);
    const pids = processTree(run.npm.pid as number);
    const commands = pids.map(commandOf);

    const page = await send(proxyPort, { path: '/' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('Hello from the demo app');
    expect((await send(appPort, { path: '/' })).status).toBe(200);

    // login: maxretry 3. The ban is decided once each response is over: its log line is the settle point.
    const loginBan = /"event":"ban","target":"127\.0\.0\.1","jail":"login"/;
    for (let i = 0; i < 3; i++) expect((await send(proxyPort, wrongLogin)).status).toBe(401);
    await waitFor(() => loginBan.test(run.output()), { timeoutMs: 10_000, message: 'the ban of 127.0.0.1' });
    expect((await send(proxyPort, wrongLogin)).status).toBe(403);
    expect(run.output()).toMatch(loginBan);

    // scanners (the bundled rule, maxretry 2), from a client that is not banned yet.
    const scanner = { path: '/.env', from: SECOND_CLIENT };
    expect((await send(proxyPort, { from: SECOND_CLIENT })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await send(proxyPort, scanner)).status).toBe(404);
    const scannerBan = /"event":"ban","target":"127\.0\.0\.2","jail":"scanners"/;
    await waitFor(() => scannerBan.test(run.output()), {
      timeoutMs: 10_000,
      message: `the ban of ${SECOND_CLIENT}`,
    });
    expect((await send(proxyPort, scanner)).status).toBe(403);
    expect(run.output()).toMatch(scannerBan);

    process.kill(run.npm.pid as number, 'SIGTERM');
    await expectAllGone(pids, run);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.output()).toContain('quickstart: stopped: portcullis and the demo app');
    // npm, the launcher it execs (no shell left in between to swallow the signal), portcullis run.
    expect(commands).toEqual([
      expect.stringMatching(/npm/),
      expect.stringMatching(/node .*scripts\/quickstart\.mjs$/),
      expect.stringMatching(/node .*dist\/surfaces\/cli\/main\.js run -c /),
    ]);
  });

  it('leaves no process behind after SIGINT to npm alone', async () => {
    const run = startQuickStart();
    await urlsOf(run);
    const pids = processTree(run.npm.pid as number);
    expect(pids.length).toBeGreaterThanOrEqual(3); // npm, the launcher, portcullis run
    process.kill(run.npm.pid as number, 'SIGINT');
    await expectAllGone(pids, run);
  });

  it('refuses a PORT that is in use, naming it', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => busy.close());
    const port = (busy.address() as { port: number }).port;
    const run = startQuickStart({ PORT: String(port) });
    expect((await run.exited).code).toBe(1);
    expect(run.output()).toContain(`quickstart: PORT=${port}: 127.0.0.1:${port} is already in use`);
  });
});
