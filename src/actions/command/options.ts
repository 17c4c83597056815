import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from '../../core/duration.js';
import { COMMAND_TAGS } from './template.js';

const show = (value: unknown) => JSON.stringify(value) ?? String(value);
const durationRe = new RegExp(DURATION_PATTERN);
const TAG = /<([A-Za-z_]+)>/g;
const HAS_TAG = /<[A-Za-z_]+>/;

const argvError = (issue: { input?: unknown }) =>
  issue.input === undefined
    ? 'required: the program to run for each ban and its arguments, like [/usr/local/bin/notify, "<ip>", "<jail>"]'
    : `expected a command as a list of arguments, like [/usr/local/bin/notify, "<ip>", "<jail>"], got ${show(issue.input)}`;

/** One argv list: the program, then its arguments; tags are checked against {@link COMMAND_TAGS}. */
const argvSchema = z
  .array(
    z
      .string({ error: argvError })
      .refine((arg) => !arg.includes('\0'), { error: 'an argument cannot contain a NUL byte' }),
    { error: argvError },
  )
  .min(1, { error: argvError })
  .refine((argv) => argv[0] === undefined || (argv[0].trim() !== '' && !HAS_TAG.test(argv[0])), {
    error: 'the program (the first element) must be a path or a name, not empty and without tags',
  })
  .superRefine((argv, ctx) => {
    argv.forEach((arg, i) => {
      for (const match of arg.matchAll(TAG)) {
        if (!(COMMAND_TAGS as readonly string[]).includes(match[1] as string))
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `unknown tag <${match[1]}> (known: ${COMMAND_TAGS.map((t) => `<${t}>`).join(', ')})`,
            input: arg,
          });
      }
    });
  });

const timeoutError = (issue: { input?: unknown }) =>
  `expected a duration longer than 0 like "10s", got ${show(issue.input)}`;

/** `actions: [{ command: { ... } }]`, as the user writes it. */
export const commandOptionsSchema = z
  .strictObject({
    /** Run for each ban: the program and its arguments, tags substituted. Required. */
    ban: argvSchema.describe('Run for each ban: [program, args...]; tags like "<ip>" are substituted.'),
    /** Run when a ban ends. Default: nothing. */
    unban: argvSchema.optional().describe('Run when a ban ends: [program, args...]. Default: nothing.'),
    /** How long one run may take before it is killed (SIGTERM, then SIGKILL), a duration. Default `10s`. */
    timeout: z
      .union([z.string().regex(durationRe, { error: timeoutError }), z.number({ error: timeoutError })], {
        error: timeoutError,
      })
      .refine(
        (value) => {
          try {
            return parseDuration(value) > 0;
          } catch {
            return true; // not a duration at all: the union has said so
          }
        },
        { error: timeoutError },
      )
      .optional()
      .describe('How long one run may take before it is killed. Default 10s.'),
    /** `true`: one run per batch, the decisions as JSON lines on stdin. Default `false`: one run per decision. */
    batch: z
      .boolean({ error: (issue) => `expected true or false, got ${show(issue.input)}` })
      .optional()
      .describe('true: one run per batch, decisions as JSON lines on stdin. Default false.'),
    /**
     * `all` (default): every ban this instance enforces, like a firewall. `local`: only bans decided
     * on this instance (a notification script, so ten instances do not notify ten times).
     */
    scope: z
      .enum(['all', 'local'], { error: (issue) => `expected "all" or "local", got ${show(issue.input)}` })
      .optional()
      .describe('all (default): every ban enforced here; local: only bans decided on this instance.'),
  })
  .superRefine((options, ctx) => {
    if (options.batch !== true) return;
    for (const key of ['ban', 'unban'] as const)
      options[key]?.forEach((arg, i) => {
        if (HAS_TAG.test(arg))
          ctx.addIssue({
            code: 'custom',
            path: [key, i],
            message: `with batch: true the decisions come as JSON lines on stdin; tags cannot be used in arguments, got ${show(arg)}`,
            input: arg,
          });
      });
  });

export type CommandOptions = z.input<typeof commandOptionsSchema>;

/** A validated, frozen command action configuration. */
export interface CommandConfig {
  readonly ban: readonly string[];
  /** `null`: nothing runs when a ban ends. */
  readonly unban: readonly string[] | null;
  readonly timeoutMs: number;
  readonly batch: boolean;
  readonly scope: 'all' | 'local';
}

/** Defaults of the command action, written once. */
export const COMMAND_DEFAULTS = { timeoutMs: 10_000, batch: false, scope: 'all' } as const;

/** Resolves validated options (the schema's output) to the frozen config. */
export function resolveCommandOptions(
  _actionName: string,
  options: z.output<typeof commandOptionsSchema>,
): CommandConfig {
  return Object.freeze({
    ban: Object.freeze([...options.ban]),
    unban: options.unban === undefined ? null : Object.freeze([...options.unban]),
    timeoutMs: options.timeout === undefined ? COMMAND_DEFAULTS.timeoutMs : parseDuration(options.timeout),
    batch: options.batch ?? COMMAND_DEFAULTS.batch,
    scope: options.scope ?? COMMAND_DEFAULTS.scope,
  });
}
