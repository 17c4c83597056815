import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { PortcullisOptions } from '../../src/config/schema.js';
import type { Logger } from '../../src/core/logger.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { type ProxyHeader, parseProxyHeader } from '../../src/sources/socket/proxy-protocol.js';
import { TcpGuard } from '../../src/sources/socket/tcp-guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';

/** Shared by the TCP guard tests: upstream servers, guards and raw clients on loopback. */

export const A = '127.0.0.2';
export const B = '127.0.0.3';
export const LB = '127.0.0.9';

export const cleanups: (() => Promise<void> | void)[] = [];

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()?.();
}

/** One connection an upstream accepted. */
export interface SeenConnection {
  /** The TCP peer (the guard's side). */
  peer: string;
  /** The PROXY header it opened with, when the upstream reads one. */
  header: ProxyHeader | undefined;
  socket: Socket;
}

export interface TestUpstream {
  port: number;
  server: Server;
  seen: SeenConnection[];
  close(): Promise<void>;
}

/**
 * An upstream on 127.0.0.1:0 that echoes what it reads, half-close included (it ends its side
 * once the client has ended). `proxyProtocol`: each connection opens with a PROXY header, which is
 * parsed and kept, not echoed. `handler` replaces the echo.
 */
export async function startUpstream(
  options: { proxyProtocol?: boolean; handler?: (socket: Socket) => void } = {},
): Promise<TestUpstream> {
  const seen: SeenConnection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const entry: SeenConnection = { peer: socket.remoteAddress ?? '', header: undefined, socket };
    seen.push(entry);
    const serve = (head: Buffer) => {
      if (options.handler !== undefined) {
        if (head.length > 0) socket.unshift(head);
        options.handler(socket);
        return;
      }
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
    };
    if (!options.proxyProtocol) {
      serve(Buffer.alloc(0));
      return;
    }
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const parsed = parseProxyHeader(buffered);
      if (parsed.kind === 'incomplete') return;
      socket.removeListener('data', onData);
      socket.pause();
      if (parsed.kind === 'invalid') {
        socket.destroy();
        return;
      }
      entry.header = parsed.header;
      serve(buffered.subarray(parsed.length));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const upstream: TestUpstream = {
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  cleanups.push(() => upstream.close());
  return upstream;
}

/** A guard on a memory store, loopback clients counted (no ignoreip/ignoreself). */
export async function startGuard(options: PortcullisOptions, logger?: Logger): Promise<Guard> {
  const guard = await createGuard(
    {
      store: { memory: true },
      ...options,
      defaults: { ignoreip: [], ignoreself: false, ...(options.defaults ?? {}) },
    },
    { store: new MemoryStore(), env: {}, ...(logger === undefined ? {} : { logger }) },
  );
  cleanups.push(() => guard.close());
  return guard;
}

/** Starts the `tcp:` listener `name` of the guard's config, closed after the test. */
export async function startTcpGuard(guard: Guard, name = 'svc'): Promise<TcpGuard & { port: number }> {
  const source = new TcpGuard(guard, name);
  cleanups.push(() => source.close());
  await source.start();
  return Object.assign(source, { port: source.address?.port ?? 0 });
}

/** A `tcp:` section with one listener on 127.0.0.1:0 in front of `upstream`. */
export function listenerTo(upstream: { port: number }, extra: Record<string, unknown> = {}) {
  return { svc: { listen: '127.0.0.1:0', target: `127.0.0.1:${upstream.port}`, ...extra } };
}

export interface Exchange {
  data: Buffer;
  /** How the connection ended for the client. */
  end: 'closed' | 'reset' | 'timeout';
  elapsedMs: number;
}

/**
 * Connects from `from`, runs `script` (which writes), collects everything received until the
 * connection ends (or `timeoutMs`).
 */
export function exchange(
  port: number,
  script: (socket: Socket) => void,
  { from = A, timeoutMs = 5_000 }: { from?: string; timeoutMs?: number } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const socket = connect({ port, host: '127.0.0.1', localAddress: from, allowHalfOpen: true });
    let end: Exchange['end'] = 'closed';
    const timer = setTimeout(() => {
      end = 'timeout';
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The client half-closes too once the other side has (after the script's own 'end' handler).
    socket.once('end', () => setImmediate(() => socket.end()));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') end = 'reset';
    });
    socket.once('connect', () => script(socket));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), end, elapsedMs: Date.now() - started });
    });
  });
}

/** Sends `text`, half-closes, and returns what came back before the end. */
export function echo(port: number, text: string, from = A): Promise<Exchange> {
  return exchange(
    port,
    (socket) => {
      socket.end(text);
    },
    { from },
  );
}

/** Opens a connection from `from` and resolves once it is connected (kept open until the test ends). */
export async function hold(port: number, from = A): Promise<Socket & { ended: Promise<string> }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  const ended = new Promise<string>((resolve) => {
    let how = 'closed';
    socket.on('error', (error: NodeJS.ErrnoException) => {
      how = error.code === 'ECONNRESET' ? 'reset' : (error.code ?? 'error');
    });
    socket.once('close', () => resolve(how));
  });
  cleanups.push(() => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return Object.assign(socket, { ended });
}

/** A logger that keeps every line (fields and message), for "would ban" assertions. */
export function recordingLogger(): Logger & {
  lines: { level: string; fields: Record<string, unknown>; message: string }[];
} {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const at =
    (level: string) =>
    (fields: object, message = '') => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
