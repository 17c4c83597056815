import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from '../../core/duration.js';

const show = (value: unknown) => JSON.stringify(value) ?? String(value);
const durationRe = new RegExp(DURATION_PATTERN);

const argvError = (issue: { input?: unknown }) =>
  `expected a command as a list of arguments, like [nginx, -s, reload] or [systemctl, reload, nginx], got ${show(issue.input)}`;

const debounceError = (issue: { input?: unknown }) =>
  `expected a duration like "500ms" (0: reload after every change), got ${show(issue.input)}`;

const timeoutError = (issue: { input?: unknown }) =>
  `expected a duration longer than 0 like "30s", got ${show(issue.input)}`;

/** `actions: [{ nginx: { ... } }]`, as the user writes it. Every key is optional. */
export const nginxOptionsSchema = z.strictObject({
  /**
   * The include file written (one `ADDRESS 1;` line per ban, for a `geo` block). Relative paths are
   * from the config file's directory. Default `/etc/nginx/portcullis-banned.conf`.
   */
  file: z
    .string({ error: (issue) => `expected a file path, got ${show(issue.input)}` })
    .min(1, { error: 'expected a file path, got ""' })
    .refine((path) => !/[\0\n\r]/.test(path), {
      error: (issue) => `expected a file path, got ${show(issue.input)}`,
    })
    .optional()
    .describe('The geo include file written. Default /etc/nginx/portcullis-banned.conf.'),
  /** The command that makes nginx read the file again (never a shell). Default `[nginx, -s, reload]`. */
  reload: z
    .array(
      z
        .string({ error: argvError })
        .refine((arg) => !arg.includes('\0'), { error: 'an argument cannot contain a NUL byte' }),
      { error: argvError },
    )
    .min(1, { error: argvError })
    .refine((argv) => argv.length === 0 || (argv[0] as string).trim() !== '', {
      error: 'the program (the first element) must not be empty',
    })
    .optional()
    .describe(
      'The command that reloads nginx, as a list: [nginx, -s, reload] (default) or [systemctl, reload, nginx].',
    ),
  /**
   * The shortest time between two reloads, a duration: the first change reloads at once, changes
   * during the next `debounce` are written and reloaded together after it. Default `500ms`.
   */
  debounce: z
    .union(
      [
        z.string().regex(durationRe, { error: debounceError }),
        z.number({ error: debounceError }).min(0, { error: debounceError }),
      ],
      { error: debounceError },
    )
    .refine((value) => String(value).trim() !== '-1', { error: debounceError })
    .optional()
    .describe('Shortest time between two nginx reloads. Default 500ms.'),
  /** How long one reload may take before it is killed, a duration. Default `30s`. */
  timeout: z
    .union(
      [
        z.string().regex(durationRe, { error: timeoutError }),
        z.number({ error: timeoutError }).positive({ error: timeoutError }),
      ],
      { error: timeoutError },
    )
    .refine((value) => String(value).trim() !== '-1', { error: timeoutError })
    .optional()
    .describe('How long one reload may take. Default 30s.'),
});

export type NginxOptions = z.input<typeof nginxOptionsSchema>;

/** A validated, frozen nginx action configuration. */
export interface NginxConfig {
  /** As written; the factory resolves a relative path against the config file's directory. */
  readonly file: string;
  readonly reload: readonly string[];
  readonly debounceMs: number;
  readonly timeoutMs: number;
}

/** Defaults of the nginx action, written once. */
export const NGINX_DEFAULTS = {
  file: '/etc/nginx/portcullis-banned.conf',
  reload: ['nginx', '-s', 'reload'],
  debounce: '500ms',
  timeout: '30s',
} as const;

export function resolveNginxOptions(
  _actionName: string,
  options: z.output<typeof nginxOptionsSchema>,
): NginxConfig {
  const timeoutMs = parseDuration(options.timeout ?? NGINX_DEFAULTS.timeout);
  return Object.freeze({
    file: options.file ?? NGINX_DEFAULTS.file,
    reload: Object.freeze([...(options.reload ?? NGINX_DEFAULTS.reload)]),
    debounceMs: parseDuration(options.debounce ?? NGINX_DEFAULTS.debounce),
    timeoutMs: timeoutMs > 0 ? timeoutMs : parseDuration(NGINX_DEFAULTS.timeout),
  });
}
