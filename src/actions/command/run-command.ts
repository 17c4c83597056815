import { spawn } from 'node:child_process';

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
 * The real runner: `spawn(argv[0], argv.slice(1), { shell: false })` in a process group of its own,
 * so a timeout kills the program and whatever it started (a script's `sleep`), not only its first
 * process. Rejects only when the program cannot be started (ENOENT, EACCES).
 */
export const spawnCommand: CommandRunner = (request) =>
  new Promise((resolve, reject) => {
    const [program, ...args] = request.argv as [string, ...string[]];
    const child = spawn(program, args, {
      shell: false,
      detached: true,
      env: { ...request.env },
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
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        child.kill(signal);
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

    child.once('error', (error) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(kept.stdout).toString('utf8'),
        stderr: Buffer.concat(kept.stderr).toString('utf8'),
        truncated,
      });
    });
  });
