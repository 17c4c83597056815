import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ErrorCodes, isPortcullisError, PortcullisError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { Control } from '../../operate/control.js';
import {
  CONTROL_OPS,
  type ControlOp,
  type ControlRequest,
  type ControlResponse,
  MAX_REQUEST_BYTES,
} from './protocol.js';

export interface ControlServerOptions {
  /** Absolute socket path. */
  socket: string;
  /** File mode of the socket. Default 0o600. */
  mode?: number;
  logger?: Logger;
  /** Connections open at once; more are refused. Default 32. */
  maxConnections?: number;
  /** A connection quiet this long is closed, ms. Default 60000. */
  idleTimeoutMs?: number;
}

/**
 * The control socket: a Unix socket speaking newline-delimited JSON ({@link CONTROL_OPS}) to a
 * {@link Control}. Created with mode 0600 (no window in which it is wider: the umask is set
 * around the bind). A socket file left by a killed daemon is detected (nothing answers) and
 * replaced; one a live daemon answers on is not touched. Removed at `close()`.
 */
export class ControlServer {
  readonly path: string;
  readonly #mode: number;
  readonly #control: Control;
  readonly #logger: Logger;
  readonly #maxConnections: number;
  readonly #idleTimeoutMs: number;
  readonly #connections = new Set<Socket>();
  #server: Server | undefined;
  #closing: Promise<void> | undefined;

  constructor(control: Control, options: ControlServerOptions) {
    this.path = options.socket;
    this.#mode = options.mode ?? 0o600;
    this.#control = control;
    this.#logger = options.logger ?? silentLogger;
    this.#maxConnections = options.maxConnections ?? 32;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  }

  /**
   * Listens. Rejects with PC_ERR_CONTROL_SOCKET when a live daemon already answers on the path
   * (`inUse: true` on the error), the path is not a socket, or the directory cannot be made.
   */
  async start(): Promise<void> {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    } catch (error) {
      throw socketError(`cannot create the directory of the control socket ${this.path}`, error);
    }
    try {
      await this.#listen();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE')
        throw socketError(`cannot listen on ${this.path}`, error);
      await this.#replaceStale();
      await this.#listen();
    }
    chmodSync(this.path, this.#mode);
  }

  /** Stops listening, ends the connections and removes the socket file. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const server = this.#server;
      for (const socket of this.#connections) socket.end();
      const timer = setTimeout(() => {
        for (const socket of this.#connections) socket.destroy();
      }, 1000).unref();
      if (server === undefined) {
        clearTimeout(timer);
        resolve();
        return;
      }
      // net removes the socket file when a listening Unix server closes.
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.#closing;
  }

  #listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: false }, (socket) => this.#accept(socket));
      server.maxConnections = this.#maxConnections;
      const onError = (error: Error) => reject(error);
      server.once('error', onError);
      // The bind happens synchronously inside listen(): the umask covers exactly it.
      const umask = process.umask(0o177);
      try {
        server.listen(this.path, () => {
          server.off('error', onError);
          server.on('error', (error) =>
            this.#logger.warn({ err: error, event: 'control-error' }, 'control socket error'),
          );
          this.#server = server;
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
  }

  /** The path exists: a live daemon's socket (refuse), a stale one (remove it), or something else. */
  async #replaceStale(): Promise<void> {
    let isSocket: boolean;
    try {
      isSocket = lstatSync(this.path).isSocket();
    } catch (error) {
      throw socketError(`cannot inspect ${this.path}`, error);
    }
    if (!isSocket)
      throw new PortcullisError(
        ErrorCodes.CONTROL_SOCKET,
        `${this.path} exists and is not a socket; remove it or set control.socket`,
      );
    if (await answers(this.path)) {
      const error = new PortcullisError(
        ErrorCodes.CONTROL_SOCKET,
        `another portcullis daemon answers on ${this.path}`,
        { help: 'stop it, or give this one its own control.socket' },
      );
      (error as PortcullisError & { inUse: boolean }).inUse = true;
      throw error;
    }
    this.#logger.info(
      { event: 'control-stale', socket: this.path },
      `removing the stale control socket ${this.path} (its daemon is gone)`,
    );
    try {
      unlinkSync(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        throw socketError(`cannot remove ${this.path}`, error);
    }
  }

  #accept(socket: Socket): void {
    this.#connections.add(socket);
    socket.setTimeout(this.#idleTimeoutMs, () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let queue = Promise.resolve();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) return this.#tooLarge(socket);
        if (line.trim() !== '') queue = queue.then(() => this.#answer(socket, line));
        newline = buffered.indexOf('\n');
      }
      if (Buffer.byteLength(buffered) > MAX_REQUEST_BYTES) this.#tooLarge(socket);
    });
  }

  #tooLarge(socket: Socket): void {
    socket.removeAllListeners('data');
    reply(socket, {
      id: null,
      ok: false,
      error: {
        code: ErrorCodes.CONTROL_REQUEST,
        message: `request larger than ${MAX_REQUEST_BYTES} bytes; connection closed`,
      },
    });
    socket.end();
  }

  async #answer(socket: Socket, line: string): Promise<void> {
    let id: number | string | null = null;
    try {
      const request = parseRequest(line, (known) => {
        id = known;
      });
      const result = await this.#dispatch(request);
      reply(socket, { id, ok: true, result: result ?? null });
    } catch (error) {
      const code = isPortcullisError(error) ? error.code : 'PC_ERR_INTERNAL';
      const message = error instanceof Error ? error.message : String(error);
      if (!isPortcullisError(error))
        this.#logger.warn({ err: error, event: 'control-error' }, 'control request failed');
      reply(socket, { id, ok: false, error: { code, message } });
    }
  }

  #dispatch(request: ControlRequest): unknown {
    const op = request.op as ControlOp;
    const schema = CONTROL_OPS[op];
    const checked = schema.safeParse(request.args ?? {});
    if (!checked.success) {
      const issue = checked.error.issues[0];
      const where = issue === undefined || issue.path.length === 0 ? 'args' : `args.${issue.path.join('.')}`;
      throw new PortcullisError(
        ErrorCodes.CONTROL_REQUEST,
        `${op}: ${where}: ${issue?.message ?? 'invalid'}`,
      );
    }
    const c = this.#control;
    // Shapes checked by the op's schema just above.
    const a = checked.data as {
      name: string;
      ip: string;
      target: string;
      jail?: string;
      bantimeMs?: number;
      reason?: string;
      force?: boolean;
      limit?: number;
    };
    switch (op) {
      case 'ping':
        return c.ping();
      case 'status':
        return c.status();
      case 'jail':
        return c.jail(a.name);
      case 'decisions':
        return c.decisions(checked.data as { jail?: string; ip?: string; limit?: number });
      case 'banned':
        return c.banned(a.ip);
      case 'ban': {
        const { target, ...rest } = a;
        return c.ban(target, rest);
      }
      case 'unban':
        return c.unban(a.target, a.jail === undefined ? {} : { jail: a.jail });
      case 'unbanAll':
        return c.unbanAll(a.jail === undefined ? {} : { jail: a.jail });
      case 'reload':
        return c.reload(a.jail);
      case 'stop':
        this.#logger.info({ event: 'control-stop' }, 'stop requested on the control socket');
        return c.stop();
    }
  }
}

/** Validates one request line; `onId` hears its id as soon as it is known (for the error answer). */
function parseRequest(line: string, onId: (id: number | string) => void): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new PortcullisError(
      ErrorCodes.CONTROL_REQUEST,
      'not JSON: each request is one JSON object on one line',
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new PortcullisError(
      ErrorCodes.CONTROL_REQUEST,
      'expected a JSON object { "op": ..., "args": {...} }',
    );
  const request = value as ControlRequest;
  const id = request.id;
  if (id !== undefined && typeof id !== 'number' && typeof id !== 'string')
    throw new PortcullisError(ErrorCodes.CONTROL_REQUEST, 'id: expected a number or a string');
  if (id !== undefined) onId(id);
  if (typeof request.op !== 'string' || !Object.hasOwn(CONTROL_OPS, request.op))
    throw new PortcullisError(
      ErrorCodes.CONTROL_REQUEST,
      `op: expected one of ${Object.keys(CONTROL_OPS).join(', ')}, got ${JSON.stringify(request.op) ?? 'nothing'}`,
    );
  if (
    request.args !== undefined &&
    (request.args === null || typeof request.args !== 'object' || Array.isArray(request.args))
  )
    throw new PortcullisError(ErrorCodes.CONTROL_REQUEST, 'args: expected an object');
  return request;
}

function reply(socket: Socket, response: ControlResponse): void {
  if (!socket.writable) return;
  socket.write(`${JSON.stringify(response)}\n`);
}

/** Does something accept connections on `path`? (A stale socket file refuses them.) */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (alive: boolean) => {
      socket.destroy();
      resolve(alive);
    };
    socket.setTimeout(1000, () => done(true));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function socketError(what: string, error: unknown): PortcullisError {
  const reason = (error as NodeJS.ErrnoException)?.code ?? String(error);
  return new PortcullisError(ErrorCodes.CONTROL_SOCKET, `${what}: ${reason}`, { cause: error });
}
