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
  const scan = scanProcesses(marker, true);
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 4096) {
    for (const pid of scan.children.get(queue.shift() as number) ?? []) {
      out.push(pid);
      queue.push(pid);
    }
  }
  for (const { pid } of scan.marked) if (!out.includes(pid)) out.push(pid);
  return out;
}

/**
 * The live processes carrying `marker` in their environment, with their process group, from a
 * fresh `/proc` scan: once the program has exited its pid may belong to someone else, so only
 * the marker says what is still the run's.
 */
export function markedProcesses(marker: string): { pid: number; pgrp: number }[] {
  return scanProcesses(marker, false).marked;
}

function scanProcesses(
  marker: string,
  tree: boolean,
): { marked: { pid: number; pgrp: number }[]; children: Map<number, number[]> } {
  const tag = Buffer.from(`${RUN_MARKER}=${marker}\0`);
  const children = new Map<number, number[]>();
  const marked: { pid: number; pgrp: number }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return { marked, children };
  }
  for (const name of entries) {
    const pid = Number(name);
    let isMarked = false;
    try {
      isMarked = pid !== process.pid && readFileSync(`/proc/${name}/environ`).includes(tag);
    } catch {}
    if (!isMarked && !tree) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // After the command name: state ppid pgrp ...
      const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (isMarked) marked.push({ pid, pgrp: Number(pgrp) });
      if (tree) {
        const list = children.get(Number(ppid));
        if (list === undefined) children.set(Number(ppid), [pid]);
        else list.push(pid);
      }
    } catch {}
  }
  return { marked, children };
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
    let exited = false;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const send = (pid: number, sig: NodeJS.Signals) => {
      try {
        process.kill(pid, sig);
      } catch {}
    };
    // Every signal works from a fresh look: while the program runs, its process group and its
    // descendants (a `setsid` grandchild left the group); once it has exited (its pid may be
    // reused), only processes still carrying this run's marker, and the group when one of them
    // proves it is still this run's.
    const signalRun = (sig: NodeJS.Signals) => {
      const root = child.pid;
      if (root === undefined) return;
      if (!exited) {
        const pids = processesOfRun(root, marker);
        try {
          process.kill(-root, sig);
        } catch {
          child.kill(sig);
        }
        for (const pid of pids) send(pid, sig);
        return;
      }
      const left = markedProcesses(marker);
      if (left.some((p) => p.pgrp === root)) send(-root, sig);
      for (const { pid } of left) send(pid, sig);
    };
    // The deadline stays armed after the program exits: what it left running (`sleep 31 &`) is
    // ended then too.
    const timer = setTimeout(() => {
      if (!exited) timedOut = true;
      signalRun('SIGTERM');
      killTimer = setTimeout(() => signalRun('SIGKILL'), Math.min(KILL_GRACE_MS, request.timeoutMs)).unref();
    }, request.timeoutMs).unref();

    let settled = false;
    /** Whether the program left processes behind: its group still has members, or its pipes stayed open. */
    let leftovers = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(drainTimer);
      if (child.pid !== undefined && !leftovers) {
        try {
          process.kill(-child.pid, 0);
          leftovers = true;
        } catch {}
      }
      // Nothing left (the usual case): no /proc scan at the deadline.
      if (!leftovers && !timedOut) {
        clearTimeout(timer);
        clearTimeout(killTimer);
      }
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
      exited = true;
      drainTimer = setTimeout(() => {
        leftovers = true;
        finish(code, signal);
      }, DRAIN_MS).unref();
    });
    child.once('close', (code, signal) => finish(code, signal));
  });
