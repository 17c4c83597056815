import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './wait-for.js';

/** A server listening on 127.0.0.1 on a free port, closed with every connection it holds. */
export interface Listening {
  readonly port: number;
  /** Requests the server took, and how many of their responses have closed (finished or aborted). */
  readonly exchanges: { readonly received: number; readonly closed: number };
  /**
   * The settle point after requests to a guarded app: every exchange the server took has closed
   * (the middleware judges it then, which can be after the client read the response) and every
   * report that started has settled (`guard.idle()`).
   */
  settled(guard: { idle(): Promise<void> }): Promise<void>;
  close(): Promise<void>;
}

/** Starts `server` (an `http.Server`, or what Express's `app.listen` would wrap) on 127.0.0.1:0. */
export async function listen(server: Server): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  // Added after the app's own listener, so the app's 'close' handlers run before this count moves.
  const exchanges = { received: 0, closed: 0 };
  server.on('request', (_req, res: ServerResponse) => {
    exchanges.received++;
    res.once('close', () => exchanges.closed++);
  });
  return {
    port,
    exchanges,
    async settled(guard) {
      await waitFor(() => exchanges.closed === exchanges.received, {
        timeoutMs: 5_000,
        message: () => `every exchange to close (${exchanges.closed} of ${exchanges.received})`,
      });
      await guard.idle();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SendOptions {
  method?: string;
  /** Sent exactly as written (no URL normalisation, unlike fetch). Default `/`. */
  path?: string;
  headers?: OutgoingHttpHeaders | [string, string][];
  /** Client source address: any of 127.0.0.0/8 is loopback on Linux. Default 127.0.0.1. */
  from?: string;
  body?: string;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection (no keep-alive), from `from`. */
export function send(port: number, options: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // A raw header list (to repeat a header) gets no automatic Host header from Node.
    const headers = Array.isArray(options.headers)
      ? ['host', `127.0.0.1:${port}`, ...options.headers.flat()]
      : options.headers;
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: headers as OutgoingHttpHeaders,
        localAddress: options.from ?? '127.0.0.1',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
