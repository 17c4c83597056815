import { type ChildProcess, spawn } from 'node:child_process';
import { formatDuration } from '../../core/duration.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { BatchQueue, type LineHandler } from './batch-queue.js';
import type { PositionStore } from './file-follower.js';
import { DEFAULT_MAX_LINE_LENGTH, LineSplitter } from './line-splitter.js';
import { LogThrottle } from './log-throttle.js';

/** Options of {@link CommandFollower}. */
export interface CommandFollowerOptions {
  /** The program and its arguments, e.g. `['journalctl', '-f', '-o', 'json']`. Never run through a shell. */
  argv: readonly string[];
  /** Receives every complete stdout line, in batches. */
  onLines: LineHandler;
  /** Longest line kept, in bytes; longer lines are cut. Default 16384. */
  maxLineLength?: number;
  /** Batches not yet settled before stdout is paused. Default 16. */
  maxInFlight?: number;
  /** Wait before the first restart after the command exits, in ms; doubles each time. Default 1000. */
  initialBackoffMs?: number;
  /** Longest wait between restarts, in ms. A run that lasted this long resets the backoff. Default 60000. */
  maxBackoffMs?: number;
  /** On close: SIGTERM, then SIGKILL after this many ms. Default 2000. */
  killTimeoutMs?: number;
  /** Environment of the command. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /**
   * For `journalctl -o json` commands: where the `__CURSOR` of the last entry whose batch was
   * handled is saved (at most every `saveIntervalMs`, and at close). Every start (and restart)
   * then adds `--after-cursor=CURSOR`, so entries are neither counted twice nor skipped. The
   * position's `headHash` holds `journal:CURSOR`. Ignored when the arguments already say where to
   * start (`--cursor`, `--after-cursor`, `--cursor-file`, `--since`).
   */
  cursor?: { store: PositionStore; id: string };
  /** Cursors are saved at most this often, in ms. Default 1000. */
  saveIntervalMs?: number;
}

const CURSOR_PREFIX = 'journal:';
const CURSOR_FIELD = /"__CURSOR"\s*:\s*"((?:[^"\\]|\\.)*)"/;
const START_OPTIONS = /^--(after-cursor|cursor|cursor-file|since)(=|$)|^-c$|^-S$/;

/** Counters of one command source. */
export interface CommandFollowerStats {
  /** Complete stdout lines handed to `onLines`. */
  lines: number;
  /** Times the command was started. */
  starts: number;
  /** The running command's process id. */
  pid: number | undefined;
}

/**
 * Runs a command (`journalctl -f -o json`, `docker logs -f web`) and hands its stdout lines to a
 * consumer, with the same line limits as files. The command is started with `spawn(argv[0],
 * argv.slice(1))`, never a shell, in its own process group so that `close()` stops it and anything it
 * started. When it exits it is started again after a backoff (1 s, 2 s, 4 s, ... up to
 * `maxBackoffMs`); its stderr is logged at warn, at most 5 lines per 10 s.
 *
 * Commands have no saved position: a restarted `journalctl -f` or `docker logs -f` prints its own
 * recent history again, which the jail's `findtime` check keeps from counting twice only when it is
 * older than findtime.
 */
export class CommandFollower {
  /** The command line, for messages. */
  readonly command: string;
  readonly #argv: readonly string[];
  readonly #options: Required<
    Omit<CommandFollowerOptions, 'argv' | 'onLines' | 'logger' | 'env' | 'cursor' | 'saveIntervalMs'>
  >;
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #logger: Logger;
  readonly #queue: BatchQueue<string>;
  readonly #cursor: CommandFollowerOptions['cursor'];
  readonly #saveIntervalMs: number;
  /** The cursor of the last entry read (where a restarted command continues). */
  #readCursor: string | undefined;
  /** The cursor of the last entry whose batch was handled (what is saved). */
  #committedCursor: string | undefined;
  #savedCursor: string | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  #saving: Promise<void> = Promise.resolve();
  #loading: Promise<void> = Promise.resolve();
  readonly #stderrLog = new LogThrottle(10_000, 5);
  readonly #stats: CommandFollowerStats = { lines: 0, starts: 0, pid: undefined };
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: CommandFollowerOptions) {
    if (options.argv.length === 0 || options.argv[0] === '')
      throw new RangeError('argv: expected a program to run');
    this.#argv = [...options.argv];
    this.command = this.#argv
      .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg)))
      .join(' ');
    this.#options = {
      maxLineLength: options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
      maxInFlight: options.maxInFlight ?? 16,
      initialBackoffMs: options.initialBackoffMs ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 60_000,
      killTimeoutMs: options.killTimeoutMs ?? 2000,
    };
    this.#env = options.env;
    this.#logger = options.logger ?? silentLogger;
    this.#cursor =
      options.cursor !== undefined && !options.argv.some((arg) => START_OPTIONS.test(arg))
        ? options.cursor
        : undefined;
    this.#saveIntervalMs = options.saveIntervalMs ?? 1000;
    this.#queue = new BatchQueue<string>(options.onLines, {
      maxInFlight: this.#options.maxInFlight,
      onCommit: (cursor) => {
        this.#committedCursor = cursor;
        this.#scheduleSave();
      },
      onError: (error) =>
        this.#logger.error({ err: error, command: this.command }, `${this.command}: lines not handled`),
    });
  }

  get stats(): CommandFollowerStats {
    return { ...this.#stats };
  }

  /** Starts the command. Never throws: a command that cannot start is logged and retried. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    if (this.#cursor === undefined) {
      this.#spawn();
      return;
    }
    const cursor = this.#cursor;
    this.#loading = cursor.store
      .getPosition(cursor.id)
      .then((position) => {
        if (position?.headHash.startsWith(CURSOR_PREFIX)) {
          this.#readCursor = position.headHash.slice(CURSOR_PREFIX.length);
          this.#savedCursor = this.#readCursor;
        }
      })
      .catch((error: unknown) =>
        this.#logger.warn(
          { err: error, command: this.command },
          `${this.command}: saved cursor unavailable; starting afresh`,
        ),
      )
      .then(() => this.#spawn());
  }

  /** Resolves once the saved cursor is loaded and the command was started (for tests). */
  get ready(): Promise<void> {
    return this.#loading;
  }

  #scheduleSave(): void {
    if (this.#cursor === undefined || this.#saveTimer !== undefined || this.#closed) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void this.#save();
    }, this.#saveIntervalMs).unref();
  }

  /** Saves the committed cursor if it moved; saves never overlap. */
  #save(): Promise<void> {
    this.#saving = this.#saving.then(async () => {
      const cursor = this.#cursor;
      const value = this.#committedCursor;
      if (cursor === undefined || value === undefined || value === this.#savedCursor) return;
      try {
        await cursor.store.setPosition(cursor.id, {
          offset: 0,
          inode: 0,
          headHash: `${CURSOR_PREFIX}${value}`,
        });
        this.#savedCursor = value;
      } catch (error) {
        this.#logger.warn(
          { err: error, command: this.command },
          `${this.command}: could not save the journal cursor`,
        );
      }
    });
    return this.#saving;
  }

  /**
   * Stops restarting, terminates the command's process group (SIGTERM, then SIGKILL after
   * `killTimeoutMs`) and waits for the lines already read to be handled. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      clearTimeout(this.#restartTimer);
      clearTimeout(this.#saveTimer);
      await this.#loading;
      const child = this.#child;
      if (child !== undefined) {
        signal(child, 'SIGTERM');
        const force = setTimeout(() => signal(child, 'SIGKILL'), this.#options.killTimeoutMs).unref();
        await this.#exited;
        clearTimeout(force);
      }
      await this.#queue.drain();
      await this.#save();
    })();
    return this.#closing;
  }

  #spawn(): void {
    if (this.#closed) return;
    const startedAt = Date.now();
    const out = new LineSplitter(this.#options.maxLineLength);
    const err = new LineSplitter(this.#options.maxLineLength);
    let finish: () => void = () => {};
    this.#exited = new Promise((resolve) => {
      finish = resolve;
    });
    let ended = false;
    const end = (code: number | null, signalName: NodeJS.Signals | null, error?: Error): void => {
      if (ended) return;
      ended = true;
      if (this.#child === child) this.#child = undefined;
      this.#stats.pid = undefined;
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      finish();
      this.#ended(startedAt, code, signalName, error);
    };
    let child: ChildProcess | undefined;
    try {
      const resume =
        this.#cursor !== undefined && this.#readCursor !== undefined
          ? [`--after-cursor=${this.#readCursor}`]
          : [];
      child = spawn(this.#argv[0] as string, [...this.#argv.slice(1), ...resume], {
        stdio: ['ignore', 'pipe', 'pipe'],
        shell: false,
        detached: true,
        ...(this.#env === undefined ? {} : { env: this.#env }),
      });
    } catch (error) {
      end(null, null, error as Error);
      return;
    }
    this.#child = child;
    this.#stats.starts++;
    this.#stats.pid = child.pid;
    const proc = child;
    proc.stdout?.on('data', (chunk: Buffer) => this.#hand(out.push(chunk), proc));
    proc.stderr?.on('data', (chunk: Buffer) => {
      for (const line of err.push(chunk)) this.#stderr(line);
    });
    proc.on('error', (error) => {
      if (proc.pid === undefined) end(null, null, error);
      else this.#logger.warn({ err: error, command: this.command }, `${this.command}: ${error.message}`);
    });
    proc.on('exit', (code, signalName) => {
      // Grandchildren may still hold the pipes open; stop them too unless we are to follow them.
      if (this.#closed) end(code, signalName);
    });
    proc.on('close', (code, signalName) => {
      const tail = out.flush();
      if (tail !== undefined) this.#hand([tail], proc);
      const errTail = err.flush();
      if (errTail !== undefined) this.#stderr(errTail);
      end(code, signalName);
    });
  }

  #ended(startedAt: number, code: number | null, signalName: NodeJS.Signals | null, error?: Error): void {
    if (this.#closed) return;
    if (Date.now() - startedAt >= this.#options.maxBackoffMs) this.#failures = 0;
    const delay = Math.min(this.#options.maxBackoffMs, this.#options.initialBackoffMs * 2 ** this.#failures);
    this.#failures = Math.min(this.#failures + 1, 30);
    const what =
      error === undefined
        ? `exited (${code === null ? `signal ${signalName}` : `status ${code}`})`
        : `could not start: ${error.message}`;
    this.#logger.warn(
      { command: this.command, code, signal: signalName, restartInMs: delay },
      `${this.command} ${what}; restarting in ${formatDuration(delay)}`,
    );
    this.#restartTimer = setTimeout(() => this.#spawn(), delay).unref();
  }

  #hand(lines: string[], child: ChildProcess): void {
    if (lines.length === 0) return;
    this.#stats.lines += lines.length;
    let cursor: string | undefined;
    if (this.#cursor !== undefined) {
      for (let i = lines.length - 1; i >= 0 && cursor === undefined; i--) {
        const m = CURSOR_FIELD.exec(lines[i] as string);
        if (m !== null) cursor = JSON.parse(`"${m[1]}"`) as string;
      }
      if (cursor !== undefined) this.#readCursor = cursor;
    }
    const full = this.#queue.push({ lines, source: this.command }, cursor);
    if (full === undefined) return;
    child.stdout?.pause();
    void full.then(() => child.stdout?.resume());
  }

  #stderr(line: string): void {
    const { allowed, suppressed } = this.#stderrLog.take();
    if (!allowed) return;
    const more = suppressed > 0 ? ` (${suppressed} stderr lines not shown)` : '';
    this.#logger.warn({ command: this.command, stderr: line }, `${this.command}: ${line}${more}`);
  }
}

/** Signals the command's whole process group (it was started detached), or the process alone. */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, name);
  } catch {
    try {
      child.kill(name);
    } catch {
      // Already gone.
    }
  }
}
