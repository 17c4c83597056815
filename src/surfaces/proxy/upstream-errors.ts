import type { Socket } from 'node:net';

/** Raised (as the destroy reason of the upstream request) when the upstream is silent too long. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'PC_UPSTREAM_TIMEOUT';
  constructor(timeoutMs: number) {
    super(`upstream sent nothing for ${timeoutMs} ms`);
    this.name = 'UpstreamTimeoutError';
  }
}

/** Errors meaning the upstream could not be reached at all: nothing was sent, another may be tried. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/** True when the upstream refused or could not be reached (the request never left). */
export function isConnectError(error: unknown): boolean {
  return CONNECT_ERRORS.has((error as NodeJS.ErrnoException)?.code ?? '');
}

/** The status a client gets for an upstream failure: 504 for a timeout, 502 for anything else. */
export function upstreamStatus(error: unknown): 502 | 504 {
  return error instanceof UpstreamTimeoutError || (error as NodeJS.ErrnoException)?.code === 'ETIMEDOUT'
    ? 504
    : 502;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
};

/** A complete raw HTTP/1.1 response that closes the connection (for sockets with no `ServerResponse`). */
export function rawResponse(
  status: number,
  body = `${REASONS[status] ?? 'Error'}\n`,
  headers: Record<string, string> = {},
  contentType = 'text/plain; charset=utf-8',
): string {
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nContent-Type: ${contentType}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * Ends a raw socket with `response` and destroys it once written (or after `graceMs` when the
 * client does not read), so a refused client cannot keep the connection open.
 */
export function endSocket(socket: Socket, response: string, graceMs = 5_000): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.setTimeout(graceMs, () => socket.destroy());
  socket.end(response, () => socket.destroy());
}
