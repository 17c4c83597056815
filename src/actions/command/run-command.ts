import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Runs one program (never through a shell) and reports how it ended. Injected in tests to count
 * runs or simulate failures.
 */
export type CommandRunner = (request: CommandRequest) => Promise<CommandResult>;

export interface CommandRequest {
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Written to stdin, which is then closed. Default: nothing. */
  input?: string;
  timeoutMs: number;
}

export interface CommandResult {
  /** Exit status; `null` when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The timeout fired and the process was killed. */
  timedOut: boolean;
  /** The first {@link MAX_OUTPUT_BYTES} of each stream. */
  stdout: string;
  stderr: string;
  /** More output than was kept. */
  truncated: boolean;
}

/** Output kept per stream, bytes; the rest is read and dropped, so the child never blocks. */
export const MAX_OUTPUT_BYTES = 8192;
/** How long after SIGTERM a process that has not exited gets SIGKILL, ms. */
export const KILL_GRACE_MS = 2000;
/**
 * How long the output pipes may stay open after the program exited, ms: a process it started in a
 * session of its own (`setsid`) may hold them forever; the run is not left waiting for it.
 */
export const DRAIN_MS = 500;

/** Set in each run's environment (a fresh value per run) so its processes can be found at the deadline. */
export const RUN_MARKER = 'PORTCULLIS_RUN_ID';

/**
 * The processes of one run: descended from `root` (children, grandchildren, ... — also those that
 * left its process group with `setsid`), or carrying `marker` in their environment (inherited
 * across `setsid` and double forks, so a daemon re-parented to init is found too). From `/proc`;
 * none where there is no `/proc`.
 */
export function processesOfRun(root: number, marker: string): number[] {
  const tag = Buffer.from(`${RUN_MARKER}=${marker}\0`);
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const marked = new Set<number>();
  for (const name of entries) {
    try {
      if (Number(name) !== process.pid && readFileSync(`/proc/${name}/environ`).includes(tag))
        marked.add(Number(name));
    } catch {}
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid);
      if (list === undefined) children.set(ppid, [Number(name)]);
      else list.push(Number(name));
    } catch {}
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 4096) {
    for (const pid of children.get(queue.shift() as number) ?? []) {
      out.push(pid);
      queue.push(pid);
    }
  }
  for (const pid of marked) if (!out.includes(pid)) out.push(pid);
  return out;
}

/**
 * The real runner: `spawn(argv[0], argv.slice(1), { shell: false })` in a process group of its own,
 * so a timeout kills the program and whatever it started (a script's `sleep`), not only its first
 * process. Rejects only when the program cannot be started (ENOENT, EACCES).
 */
export const spawnCommand: CommandRunner = (request) =>
  new Promise((resolve, reject) => {
    const [program, ...args] = request.argv as [string, ...string[]];
    const marker = randomUUID();
    const child = spawn(program, args, {
      shell: false,
      detached: true,
      env: { ...request.env, [RUN_MARKER]: marker },
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const kept = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const sizes = { stdout: 0, stderr: 0 };
    let truncated = false;
    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const room = MAX_OUTPUT_BYTES - sizes[stream];
      if (room <= 0) {
        truncated = true;
        return;
      }
      if (chunk.length > room) truncated = true;
      const part = chunk.subarray(0, room);
      kept[stream].push(part);
      sizes[stream] += part.length;
    };
    child.stdout?.on('data', collect('stdout'));
    child.stderr?.on('data', collect('stderr'));
    child.stdin?.on('error', () => {}); // a program that does not read its stdin
    child.stdin?.end(request.input ?? '');

    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    // Descendants seen at the deadline: a `setsid` grandchild is not in the group any more.
    const escaped = new Set<number>();
    const signalGroup = (signal: NodeJS.Signals) => {
      if (child.pid !== undefined) for (const pid of processesOfRun(child.pid, marker)) escaped.add(pid);
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        child.kill(signal);
      }
      for (const pid of escaped) {
        try {
          process.kill(pid, signal);
        } catch {}
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup('SIGTERM');
      killTimer = setTimeout(
        () => signalGroup('SIGKILL'),
        Math.min(KILL_GRACE_MS, request.timeoutMs),
      ).unref();
    }, request.timeoutMs).unref();

    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(kept.stdout).toString('utf8'),
        stderr: Buffer.concat(kept.stderr).toString('utf8'),
        truncated,
      });
    };
    child.once('error', (error) => {
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      reject(error);
    });
    // The program is gone but something it started may keep the pipes open: a bounded wait.
    child.once('exit', (code, signal) => {
      drainTimer = setTimeout(() => finish(code, signal), DRAIN_MS).unref();
    });
    child.once('close', (code, signal) => finish(code, signal));
  });
