import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { PortcullisOptions } from '../../src/config/schema.js';
import { createManualClock, type ManualClock } from '../../src/core/clock.js';
import { createGuard, type Guard } from '../../src/guard.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { createProxy, type PortcullisProxy } from '../../src/surfaces/proxy/index.js';
import type { ProxyOptions } from '../../src/surfaces/proxy/options.js';

/** Shared by the proxy integration tests: upstreams, guards, proxies and raw clients on loopback. */

export const A = '127.0.0.2';
export const B = '127.0.0.3';
export const LB = '127.0.0.9';

/** Cleanups run after each test, last registered first. */
export const cleanups: (() => Promise<void> | void)[] = [];

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()?.();
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  peer: string;
}

export interface Upstream {
  port: number;
  url: string;
  server: Server;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A small upstream app: `/status/NNN` answers NNN, `/hang` never answers, `/echo` answers the
 * request's headers as JSON, anything else `200 upstream <name>`.
 */
export async function startUpstream(
  name = 'a',
  port = 0,
  handler?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      peer: req.socket.remoteAddress ?? '',
    });
    if (handler?.(req, res)) return;
    const url = req.url ?? '/';
    const status = /^\/status\/(\d{3})/.exec(url);
    if (status !== null) {
      res.statusCode = Number(status[1]);
      res.end(`status ${status[1]}\n`);
    } else if (url.startsWith('/hang')) {
      // never answers
    } else if (url.startsWith('/echo')) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(req.headers));
    } else {
      res.end(`upstream ${name}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  let closed = false;
  const upstream: Upstream = {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  cleanups.push(() => upstream.close());
  return upstream;
}

export const localJails = { ignoreip: [], ignoreself: false };

/** A guard on a memory store with a manual clock (unless one is given). */
export async function startGuard(
  options: PortcullisOptions,
  clock: ManualClock = createManualClock(Date.now()),
): Promise<Guard> {
  const guard = await createGuard(
    { store: { memory: true }, ...options, defaults: { ...localJails, ...(options.defaults ?? {}) } },
    { clock, store: new MemoryStore(), env: {} },
  );
  cleanups.push(() => guard.close());
  return guard;
}

/** A proxy on 127.0.0.1:0 (unless `listen` says otherwise), closed after the test. */
export async function startProxy(
  guard: Guard,
  options: Partial<ProxyOptions> & { target?: string },
): Promise<PortcullisProxy> {
  const proxy = await createProxy(guard, { listen: '127.0.0.1:0', ...options } as ProxyOptions);
  cleanups.push(() => proxy.close());
  return proxy;
}

export interface RawResult {
  /** Everything the server sent. */
  data: Buffer;
  text: string;
  /** How the connection ended. */
  end: 'closed' | 'reset' | 'timeout';
  /** ms from connect to the end. */
  elapsedMs: number;
}

/**
 * Opens a connection from `from`, writes `chunks` (a function gets the socket to write at its own
 * pace, and what was received so far), and collects what comes back until the server closes or
 * `timeoutMs` passes.
 */
export function rawExchange(
  port: number,
  chunks: (string | Buffer)[] | ((write: (data: string | Buffer) => boolean, received: () => string) => void),
  options: { from?: string; timeoutMs?: number; host?: string } = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const received: Buffer[] = [];
    const socket = connect({
      host: options.host ?? '127.0.0.1',
      port,
      localAddress: options.from ?? '127.0.0.1',
    });
    let end: RawResult['end'] = 'closed';
    const timer = setTimeout(() => {
      end = 'timeout';
      socket.destroy();
    }, options.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' && end !== 'timeout') end = 'reset';
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const data = Buffer.concat(received);
      resolve({ data, text: data.toString('latin1'), end, elapsedMs: performance.now() - started });
    });
    socket.on('connect', () => {
      const write = (data: string | Buffer) => !socket.destroyed && socket.write(data);
      if (typeof chunks === 'function') chunks(write, () => Buffer.concat(received).toString('latin1'));
      else for (const chunk of chunks) write(chunk);
    });
  });
}

/** The status of a raw HTTP response, or 0. */
export function statusOf(text: string): number {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return match === null ? 0 : Number(match[1]);
}

/** Paces a test whose subject is time (a slow client); never a wait for a result (see wait-for.ts). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
