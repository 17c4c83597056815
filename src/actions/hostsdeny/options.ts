import { z } from 'zod';

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

/**
 * A tcp_wrappers daemon list as portcullis writes it: process names (`sshd`, `in.ftpd`,
 * `vsftpd@192.0.2.1`) or `ALL`, separated by commas or blanks. No `:`, `#` or newline, so the
 * value can never end the daemon field or start a second line.
 */
const DAEMON_LIST = /^[A-Za-z0-9_.@+-]{1,64}(?:(?:\s*,\s*|[ \t]+)[A-Za-z0-9_.@+-]{1,64}){0,15}$/;

/** `actions: [{ hostsdeny: { ... } }]`, as the user writes it. Every key is optional. */
export const hostsdenyOptionsSchema = z.strictObject({
  /** The tcp_wrappers file written. Relative paths are from the config file's directory. Default `/etc/hosts.deny`. */
  file: z
    .string({ error: (issue) => `expected a file path, got ${show(issue.input)}` })
    .min(1, { error: 'expected a file path, got ""' })
    .refine((path) => !/[\0\n\r]/.test(path), {
      error: (issue) => `expected a file path, got ${show(issue.input)}`,
    })
    .optional()
    .describe('The tcp_wrappers file written. Default /etc/hosts.deny.'),
  /** The daemon list of each line (`sshd`, `sshd, vsftpd`). Default `ALL`: every wrapped service. */
  daemon: z
    .string({
      error: (issue) => `expected a daemon list like "sshd" or "sshd, vsftpd", got ${show(issue.input)}`,
    })
    .regex(DAEMON_LIST, {
      error: (issue) =>
        `expected a daemon list like "sshd" or "sshd, vsftpd" (process names or ALL; no ":" or "#"), got ${show(issue.input)}`,
    })
    .optional()
    .describe('The daemon list of each line: sshd, "sshd, vsftpd", or ALL (default).'),
});

export type HostsdenyOptions = z.input<typeof hostsdenyOptionsSchema>;

/** A validated, frozen hostsdeny action configuration. */
export interface HostsdenyConfig {
  /** As written; the factory resolves a relative path against the config file's directory. */
  readonly file: string;
  /** Daemon list, normalised to `a, b`. */
  readonly daemon: string;
}

/** Defaults of the hostsdeny action, written once. */
export const HOSTSDENY_DEFAULTS = { file: '/etc/hosts.deny', daemon: 'ALL' } as const;

/** Resolves validated options (the schema's output) to the frozen config. */
export function resolveHostsdenyOptions(
  _actionName: string,
  options: z.output<typeof hostsdenyOptionsSchema>,
): HostsdenyConfig {
  const daemon = (options.daemon ?? HOSTSDENY_DEFAULTS.daemon)
    .split(/[\s,]+/)
    .filter(Boolean)
    .join(', ');
  return Object.freeze({ file: options.file ?? HOSTSDENY_DEFAULTS.file, daemon });
}
