import { connect } from 'node:net';
import { type ErrorCode, ErrorCodes, PortcullisError } from '../../core/errors.js';
import type { ControlArgs, ControlOp, ControlResponse } from './protocol.js';

export interface ControlClientOptions {
  /** Give up waiting for the answer after this long, ms. Default 30000. */
  timeoutMs?: number;
}

/**
 * Sends one request to the daemon's control socket and resolves with its result. Rejects with
 * PC_ERR_NO_DAEMON when nothing listens there (no file, or a stale one), PC_ERR_CONTROL_SOCKET
 * when the socket cannot be opened (permissions), and with the daemon's own error code when it
 * refused the request.
 */
export function requestControl<Op extends ControlOp>(
  socketPath: string,
  op: Op,
  args: ControlArgs<Op> = {} as ControlArgs<Op>,
  options: ControlClientOptions = {},
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffered = '';
    let settled = false;
    const finish = (error: Error | null, result?: unknown) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error === null) resolve(result);
      else reject(error);
    };
    socket.setTimeout(options.timeoutMs ?? 30_000, () =>
      finish(
        new PortcullisError(
          ErrorCodes.CONTROL_SOCKET,
          `the daemon at ${socketPath} did not answer ${op} in time`,
        ),
      ),
    );
    socket.once('connect', () => socket.write(`${JSON.stringify({ id: 1, op, args })}\n`));
    socket.on('error', (error: NodeJS.ErrnoException) => finish(connectError(socketPath, error)));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline === -1) return;
      let response: ControlResponse;
      try {
        response = JSON.parse(buffered.slice(0, newline)) as ControlResponse;
      } catch {
        finish(new PortcullisError(ErrorCodes.CONTROL_SOCKET, `${socketPath}: the answer is not JSON`));
        return;
      }
      if (response.ok) finish(null, response.result);
      else finish(new PortcullisError(response.error.code as ErrorCode, response.error.message));
    });
    socket.on('end', () =>
      finish(
        new PortcullisError(ErrorCodes.CONTROL_SOCKET, `${socketPath}: the daemon closed the connection`),
      ),
    );
  });
}

function connectError(path: string, error: NodeJS.ErrnoException): PortcullisError {
  if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK')
    return new PortcullisError(
      ErrorCodes.NO_DAEMON,
      `no portcullis daemon at ${path}: is \`portcullis run\` running?`,
      { cause: error },
    );
  if (error.code === 'EACCES' || error.code === 'EPERM')
    return new PortcullisError(
      ErrorCodes.CONTROL_SOCKET,
      `permission denied on ${path}: run this as the daemon's user (or root)`,
      { cause: error },
    );
  return new PortcullisError(ErrorCodes.CONTROL_SOCKET, `${path}: ${error.code ?? error.message}`, {
    cause: error,
  });
}
