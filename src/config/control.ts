import { dirname, isAbsolute, join, resolve } from 'node:path';
import * as z from 'zod';

/**
 * The control socket (`control:`): the Unix socket `portcullis status`, `ban`, `unban`, `reload`
 * and `stop` talk to. On by default; `control: false` turns it off. Whoever can open the socket
 * can ban, unban and stop: its file mode is the access control, 0600 (the daemon's user) unless
 * told otherwise, and never open to others.
 */

/** Every default of `control:`, in one place. */
export const CONTROL_DEFAULTS = {
  /** As root. */
  rootSocket: '/run/portcullis/portcullis.sock',
  /** Not root: in `$XDG_RUNTIME_DIR`, else next to the configuration file. */
  userSocketName: 'portcullis.sock',
  mode: 0o600,
  /** A Unix socket path longer than this (bytes) cannot be bound on Linux. */
  maxPathBytes: 107,
} as const;

/** The `control:` section, resolved. `null`: off. */
export interface ControlConfig {
  /** Absolute path of the socket. */
  readonly socket: string;
  /** File mode of the socket, e.g. 0o600. */
  readonly mode: number;
  /** The path was written in the configuration (a failure to listen there stops `run`). */
  readonly explicit: boolean;
}

const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));

const modeSchema = z
  .string({
    error: (issue) =>
      `expected an octal file mode in quotes like "0600", got ${show(issue.input)}${typeof issue.input === 'number' ? ' (quote it: YAML reads 0600 as the number 600)' : ''}`,
  })
  .regex(/^0?[0-7]{3}$/, {
    error: (issue) => `expected an octal file mode like "0600", got ${show(issue.input)}`,
  })
  .refine((text) => (Number.parseInt(text, 8) & 0o007) === 0, {
    error: (issue) =>
      `the control socket can ban, unban and stop portcullis: other users must not reach it, got ${show(issue.input)} (use "0600" or "0660")`,
  });

export const controlSchema = z
  .union(
    [
      z.literal(false),
      z.strictObject({
        /** Socket path (relative to the config file). Default /run/portcullis/portcullis.sock as root, else $XDG_RUNTIME_DIR/portcullis.sock or next to the config file. */
        socket: z
          .string()
          .min(1)
          .optional()
          .describe(
            'Socket path, relative to the config file. Default /run/portcullis/portcullis.sock as root, else $XDG_RUNTIME_DIR/portcullis.sock, else portcullis.sock next to the config file.',
          ),
        /** File mode of the socket, octal in quotes. Nothing for others. Default "0600". */
        mode: modeSchema
          .optional()
          .describe('File mode of the socket, octal in quotes; nothing for others. Default "0600".'),
      }),
    ],
    {
      // An object is told by its own keys' problems (see formatIssue); anything else is this.
      error: (issue) =>
        issue.input !== null && typeof issue.input === 'object' && !Array.isArray(issue.input)
          ? undefined
          : `expected false or { socket, mode }, got ${show(issue.input)}`,
    },
  )
  .describe('The control socket used by portcullis status/ban/unban/reload/stop. false turns it off.');

export type ControlOptions = z.output<typeof controlSchema>;

/** Resolves `control:`; the problems (a path too long to bind) go to `problems`. */
export function resolveControl(
  options: ControlOptions,
  context: { name: string; baseDir: string; problems: string[] },
): ControlConfig | null {
  if (options === false) return null;
  const socket =
    options.socket === undefined
      ? undefined
      : isAbsolute(options.socket)
        ? options.socket
        : resolve(context.baseDir, options.socket);
  if (socket !== undefined && Buffer.byteLength(socket) > CONTROL_DEFAULTS.maxPathBytes)
    context.problems.push(
      `${context.name}: control.socket: a Unix socket path is at most ${CONTROL_DEFAULTS.maxPathBytes} bytes, got ${Buffer.byteLength(socket)} (${socket})`,
    );
  return {
    socket: socket ?? defaultSocketPath(context.baseDir),
    mode: options.mode === undefined ? CONTROL_DEFAULTS.mode : Number.parseInt(options.mode, 8),
    explicit: socket !== undefined,
  };
}

/**
 * Where the socket is when the configuration does not say: `/run/portcullis/portcullis.sock` as
 * root; else `$XDG_RUNTIME_DIR/portcullis.sock`; else `portcullis.sock` in `configDir`.
 */
export function defaultSocketPath(
  configDir: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  uid: number | undefined = process.getuid?.(),
): string {
  if (uid === 0) return CONTROL_DEFAULTS.rootSocket;
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== '' && isAbsolute(runtime))
    return join(runtime, CONTROL_DEFAULTS.userSocketName);
  return join(configDir, CONTROL_DEFAULTS.userSocketName);
}

/**
 * The control settings in force for a configuration: its `control:` section, or the defaults
 * (next to its file). `null`: off.
 */
export function controlOf(config: {
  readonly file: string | null;
  readonly control?: ControlConfig | null;
}): ControlConfig | null {
  if (config.control !== undefined) return config.control;
  const dir = config.file === null ? process.cwd() : dirname(resolve(config.file));
  return { socket: defaultSocketPath(dir), mode: CONTROL_DEFAULTS.mode, explicit: false };
}
