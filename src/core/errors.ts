/**
 * Every error portcullis throws on purpose is a `PortcullisError` with a stable `code`.
 * Codes are never reused for a different meaning. Being banned is not an error.
 */
export const ErrorCodes = {
  /** The configuration file or object is invalid; the message names the file, key path and value. */
  CONFIG_INVALID: 'PC_ERR_CONFIG_INVALID',
  /** The configuration file could not be read. */
  CONFIG_NOT_FOUND: 'PC_ERR_CONFIG_NOT_FOUND',
  /** A duration string could not be parsed. */
  INVALID_DURATION: 'PC_ERR_INVALID_DURATION',
  /** An IP address or CIDR range could not be parsed. */
  INVALID_IP: 'PC_ERR_INVALID_IP',
  /** `report()` named a jail that is not configured. */
  UNKNOWN_JAIL: 'PC_ERR_UNKNOWN_JAIL',
  /** The store (Redis, SQLite) could not be reached or answered with an error. */
  STORE_UNAVAILABLE: 'PC_ERR_STORE_UNAVAILABLE',
  /** The SQLite file was unreadable and has been moved aside. */
  STORE_CORRUPT: 'PC_ERR_STORE_CORRUPT',
  /** The guard (or a store) was used after `close()`. */
  CLOSED: 'PC_ERR_CLOSED',
  /** A reverse proxy listener could not listen (address in use, permission denied). */
  PROXY_LISTEN: 'PC_ERR_PROXY_LISTEN',
  /** The admin listener (`admin.listen`) could not listen (address in use, permission denied). */
  ADMIN_LISTEN: 'PC_ERR_ADMIN_LISTEN',
  /** A connection on a `proxy_protocol` listener sent no valid PROXY protocol header in time. */
  PROXY_PROTOCOL: 'PC_ERR_PROXY_PROTOCOL',
  /** An action's system command (nft, ...) failed or is missing. The runner retries it. */
  ACTION_FAILED: 'PC_ERR_ACTION_FAILED',
  /** The packet watcher cannot capture (pcap or libpcap missing, no permission, bad interface or BPF filter). */
  PACKET_CAPTURE: 'PC_ERR_PACKET_CAPTURE',
  /** No daemon answers on the control socket (`portcullis status` with no `portcullis run`). */
  NO_DAEMON: 'PC_ERR_NO_DAEMON',
  /** The control socket could not be opened or listened on (permission, in use, not a socket). */
  CONTROL_SOCKET: 'PC_ERR_CONTROL_SOCKET',
  /** A request on the control socket was not understood (not JSON, too large, unknown op, bad args). */
  CONTROL_REQUEST: 'PC_ERR_CONTROL_REQUEST',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface PortcullisErrorOptions {
  cause?: unknown;
  /** A sentence telling the operator what to do about it. */
  help?: string;
}

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  readonly help: string | undefined;

  constructor(code: ErrorCode, message: string, options: PortcullisErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PortcullisError';
    this.code = code;
    this.help = options.help;
  }
}

/** Raised for invalid configuration; the CLI prints `message` and exits with status 2. */
export class ConfigError extends PortcullisError {
  /** One line per problem, each `file: key.path: what is wrong`. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options: PortcullisErrorOptions = {}) {
    super(ErrorCodes.CONFIG_INVALID, problems.join('\n'), options);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isPortcullisError(value: unknown, code?: ErrorCode): value is PortcullisError {
  return value instanceof PortcullisError && (code === undefined || value.code === code);
}
