import type { Guard } from '../../guard.js';

/** The parts of Express's request/response this middleware touches (Express 4 and 5). */
interface RequestLike {
  socket: { remoteAddress?: string | undefined };
}
interface ResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}
type Next = (error?: unknown) => void;

export interface ExpressGuardOptions {
  /** Status sent to a banned client. Default 403. */
  status?: number;
  /** Body sent to a banned client. Default `Forbidden`. */
  body?: string;
}

/**
 * Express middleware: a banned client gets `status` (403) before any route runs, with
 * `Retry-After` when the ban has an end. The client is the socket peer.
 */
export function portcullis(guard: Guard, options: ExpressGuardOptions = {}) {
  const status = options.status ?? 403;
  const body = options.body ?? 'Forbidden\n';
  return function portcullisMiddleware(req: RequestLike, res: ResponseLike, next: Next): void {
    const ip = req.socket.remoteAddress;
    if (ip !== undefined && guard.isBanned(ip)) {
      const entry = guard.lookup(ip);
      res.statusCode = status;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      if (entry !== undefined && Number.isFinite(entry.expiresAt)) {
        res.setHeader('Retry-After', String(Math.max(1, Math.ceil((entry.expiresAt - Date.now()) / 1000))));
      }
      res.end(body);
      return;
    }
    next();
  };
}
