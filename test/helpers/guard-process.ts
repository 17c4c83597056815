import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../fixtures/processes/guard-child.ts', import.meta.url));

export interface ChildEvent {
  event: string;
  target?: string;
  source?: string;
  reason?: string;
  /** Wall-clock ms with sub-ms precision (performance.timeOrigin + now()). */
  at: number;
}

/** A guard running in a real child process (see fixtures/processes/guard-child.ts). */
export interface GuardProcess {
  readonly child: ChildProcess;
  readonly events: ChildEvent[];
  call<T = unknown>(op: string, ...args: unknown[]): Promise<T>;
  /** Resolves with the first event (already seen or future) matching `predicate`. */
  waitForEvent(predicate: (event: ChildEvent) => boolean, timeoutMs?: number): Promise<ChildEvent>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function spawnGuard(config: unknown, env: NodeJS.ProcessEnv = {}): Promise<GuardProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const events: ChildEvent[] = [];
  const waiters = new Set<{ predicate: (e: ChildEvent) => boolean; resolve: (e: ChildEvent) => void }>();
  const replies = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  createInterface({ input: child.stdout! }).on('line', (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // not ours
    }
    if (typeof message.id === 'number') {
      const reply = replies.get(message.id);
      replies.delete(message.id);
      if (message.error !== undefined) reply?.reject(new Error(String(message.error)));
      else reply?.resolve(message.result);
      return;
    }
    const event = message as unknown as ChildEvent;
    events.push(event);
    for (const waiter of waiters) {
      if (waiter.predicate(event)) {
        waiters.delete(waiter);
        waiter.resolve(event);
      }
    }
  });

  const handle: GuardProcess = {
    child,
    events,
    call(op, ...args) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        replies.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.stdin?.write(`${JSON.stringify({ id, op, args })}\n`);
      });
    },
    waitForEvent(predicate, timeoutMs = 15_000) {
      const seen = events.find(predicate);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = { predicate, resolve };
        waiters.add(waiter);
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(`timed out waiting for an event; seen ${JSON.stringify(events)}; stderr: ${stderr}`),
          );
        }, timeoutMs);
        exited.then(() => {
          if (waiters.has(waiter)) {
            clearTimeout(timer);
            waiters.delete(waiter);
            reject(new Error(`guard process exited; stderr: ${stderr}`));
          }
        });
        const original = waiter.resolve;
        waiter.resolve = (e) => {
          clearTimeout(timer);
          original(e);
        };
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  await handle.waitForEvent((e) => e.event === 'ready', 30_000);
  return handle;
}
