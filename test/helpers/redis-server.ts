import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REDIS_SERVER = '/usr/bin/redis-server';
const READY_TIMEOUT_MS = 10_000;

/** A redis-server (or sentinel) this test process started and owns. */
export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** SIGTERM, then resolves once the process has exited (and its temporary dir is gone). Idempotent. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (after `stop()` or `kill()`); resolves on PING. */
  start(): Promise<void>;
  /** SIGKILL, then resolves once the process has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets but answers nothing, like a host behind a partition. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
}

/**
 * Spawns a throwaway redis-server on a free port, without persistence, and resolves once it
 * answers PING. Throws (so tests fail, not skip) when redis-server is not installed.
 */
export async function startRedis(): Promise<RedisServerHandle> {
  return startServer((port, dir) => ['--port', String(port), ...commonArgs(dir)]);
}

/**
 * Spawns a Sentinel watching the master at `masterPort` under the group name `name` (quorum 1),
 * and resolves once it answers PING.
 */
export async function startSentinel(masterPort: number, name: string): Promise<RedisServerHandle> {
  return startServer((port, dir) => {
    // Sentinel rewrites its configuration file, so it must be a writable file of its own.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${name} 5000`,
        '',
      ].join('\n'),
    );
    return [conf, '--sentinel'];
  });
}

/** A key prefix no other test (or earlier run) uses. */
export function uniquePrefix(label = 'test'): string {
  return `pct:${label}:${randomBytes(4).toString('hex')}:`;
}

function commonArgs(dir: string): string[] {
  return ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'];
}

async function startServer(args: (port: number, dir: string) => string[]): Promise<RedisServerHandle> {
  try {
    accessSync(REDIS_SERVER, constants.X_OK);
  } catch {
    throw new Error('redis-server not found: apt-get install redis-server');
  }
  let running: { proc: ChildProcess; dir: string } | undefined;
  const reap = () => {
    if (running === undefined) return;
    running.proc.kill('SIGKILL');
    rmSync(running.dir, { recursive: true, force: true });
  };

  const spawnOn = async (port: number): Promise<void> => {
    // A fresh directory per run: nothing is persisted, and a Sentinel's rewritten config is discarded.
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-redis-'));
    const proc = spawn(REDIS_SERVER, args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    running = { proc, dir };
    // Never leave a server behind when a test run dies before calling stop().
    process.once('exit', reap);
    try {
      await waitForPing(port, proc);
    } catch (error) {
      await halt('SIGKILL');
      throw new Error(`redis-server on port ${port} did not start: ${(error as Error).message}\n${output}`);
    }
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    if (running === undefined) return;
    const { proc, dir } = running;
    running = undefined;
    process.removeListener('exit', reap);
    if (signal === 'SIGTERM') proc.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    await terminate(proc, signal);
    rmSync(dir, { recursive: true, force: true });
  };

  // A free port can be taken between probing it and the server binding it: try a few.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await spawnOn(port);
      break;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    pause() {
      running?.proc.kill('SIGSTOP');
    },
    resume() {
      running?.proc.kill('SIGCONT');
    },
    async start() {
      if (running !== undefined) throw new Error('redis-server is already running');
      // The port was just released; redis binds with SO_REUSEADDR, so it can take it again at once.
      await spawnOn(port);
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not get a free port'));
      });
    });
  });
}

async function waitForPing(port: number, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`exited with ${proc.exitCode ?? proc.signalCode}`);
    }
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no PONG within ${READY_TIMEOUT_MS} ms`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function terminate(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}
