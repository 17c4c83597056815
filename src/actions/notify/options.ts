import { isIP } from 'node:net';
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from '../../core/duration.js';

/** Option pieces every notification kind (`email`, `webhook`, `sms`) shares, and their resolution. */

const show = (value: unknown) => JSON.stringify(value) ?? String(value);
const durationRe = new RegExp(DURATION_PATTERN);

/** A duration of 0 or more (`0`, `90s`, `10m`), in the config's syntax; `-1` is refused. */
export function durationOption(what: string) {
  const error = (issue: { input?: unknown }) =>
    `expected ${what} like "10m" (0 for none), got ${show(issue.input)}`;
  return z.union(
    [
      z
        .string()
        .regex(durationRe, { error })
        .refine((text) => text.trim() !== '-1', { error }),
      z.number({ error }).refine((n) => Number.isFinite(n) && n >= 0, { error }),
    ],
    { error },
  );
}

/** A duration longer than 0 (timeouts). */
export function positiveDurationOption(what: string) {
  const error = (issue: { input?: unknown }) =>
    `expected ${what} longer than 0, like "5s", got ${show(issue.input)}`;
  return durationOption(what).refine((value) => parseDuration(value) > 0, { error });
}

/** An environment variable's name. */
export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
  error: (issue) => `expected an environment variable name like SMTP_PASSWORD, got ${show(issue.input)}`,
});

/** A file path (absolute, or relative to the config file). */
export const filePath = z
  .string()
  .min(1, { error: 'expected a file path' })
  .refine((text) => !text.includes('\0'), { error: 'expected a file path' });

/** Whether `hostname` (a URL's) names this host: `localhost`, 127.0.0.0/8, `::1`. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * An `https://` URL, or `http://` to a loopback host (a local relay, a test server): bans,
 * addresses and tokens must not cross a network in clear text.
 */
export function secureUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `expected a URL like "https://hooks.example.com/...", got ${show(text)}`;
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return null;
  if (url.protocol === 'http:')
    return `expected an https:// URL (http:// only to this host: localhost, 127.0.0.1, ::1), got ${url.protocol}//${url.host}`;
  return `expected an https:// URL, got ${show(`${url.protocol}//${url.host}`)}`;
}

/** `https://` (or loopback `http://`) URL, checked by {@link secureUrlProblem}. */
export const secureUrl = z.string().superRefine((text, context) => {
  const problem = secureUrlProblem(text);
  if (problem !== null) context.addIssue({ code: 'custom', message: problem, input: text });
});

/** The shared options (spread into each kind's strict schema). */
export const notifyOptionShape = {
  /**
   * Collects bans for this long and sends them as one digest. `0` (default): sends at once, one
   * message per batch of bans that arrive together.
   */
  digest: durationOption('a digest window')
    .optional()
    .describe('Collect bans for this long and send one digest ("10m"). Default 0: send at once.'),
  /** `action` (default): one message for every jail's bans; `jail`: one message per jail. */
  group_by: z
    .enum(['action', 'jail'], { error: (issue) => `expected "action" or "jail", got ${show(issue.input)}` })
    .optional()
    .describe('action (default): one message for all jails; jail: one message per jail.'),
  /** Messages per minute at most; what comes beyond waits and goes as one summary. Default per kind. */
  max_per_minute: z
    .number({ error: (issue) => `expected a number of messages (1 or more), got ${show(issue.input)}` })
    .int({ error: (issue) => `expected a whole number of messages, got ${show(issue.input)}` })
    .min(1, { error: (issue) => `expected 1 or more messages per minute, got ${show(issue.input)}` })
    .optional()
    .describe('Messages per minute at most; beyond that, bans wait and go as one summary.'),
  /** Announce unbans (expiry, `portcullis unban`) too. Default false. */
  notify_unban: z
    .boolean({ error: (issue) => `expected true or false, got ${show(issue.input)}` })
    .optional()
    .describe('Announce unbans too. Default false.'),
  /** Bans listed in one message; the rest is counted ("and 900 more"). Default 100. */
  max_listed: z
    .number({ error: (issue) => `expected a number of bans (1 or more), got ${show(issue.input)}` })
    .int({ error: (issue) => `expected a whole number, got ${show(issue.input)}` })
    .min(1, { error: (issue) => `expected 1 or more, got ${show(issue.input)}` })
    .max(10_000, { error: (issue) => `expected 10000 or fewer, got ${show(issue.input)}` })
    .optional()
    .describe('Bans listed in one message; the rest is counted. Default 100.'),
};

type NotifyOptionsInput = {
  [K in keyof typeof notifyOptionShape]?: z.output<(typeof notifyOptionShape)[K]>;
};

/** The validated, frozen shared settings of a notification action. */
export interface NotifyConfig {
  /** 0: send at once. */
  readonly digestMs: number;
  readonly groupBy: 'action' | 'jail';
  readonly maxPerMinute: number;
  readonly notifyUnban: boolean;
  readonly maxListed: number;
}

/** Defaults shared by the notification kinds, written once (`max_per_minute` is per kind). */
export const NOTIFY_DEFAULTS = {
  digestMs: 0,
  groupBy: 'action',
  notifyUnban: false,
  maxListed: 100,
} as const;

export function resolveNotifyOptions(options: NotifyOptionsInput, maxPerMinute: number): NotifyConfig {
  return Object.freeze({
    digestMs: options.digest === undefined ? NOTIFY_DEFAULTS.digestMs : parseDuration(options.digest),
    groupBy: options.group_by ?? NOTIFY_DEFAULTS.groupBy,
    maxPerMinute: options.max_per_minute ?? maxPerMinute,
    notifyUnban: options.notify_unban ?? NOTIFY_DEFAULTS.notifyUnban,
    maxListed: options.max_listed ?? NOTIFY_DEFAULTS.maxListed,
  });
}

/** Where a secret comes from: a file (its content, trimmed) or an environment variable. */
export type SecretRef = { readonly file: string } | { readonly env: string };

/**
 * `url` / `url_file` / `url_env`-style triples: the secret given once. `inline` is the key that
 * holds the value itself, when the kind allows one.
 */
export function oneSecret(
  data: Record<string, unknown>,
  keys: { inline?: string; file: string; env: string },
  context: z.RefinementCtx,
  required: boolean,
): void {
  const given = [keys.inline, keys.file, keys.env].filter(
    (key): key is string => key !== undefined && data[key] !== undefined,
  );
  const all = [keys.inline, keys.file, keys.env].filter((key) => key !== undefined).join(', ');
  if (given.length > 1)
    context.addIssue({
      code: 'custom',
      message: `expected one of ${all}, got ${given.join(' and ')}`,
      path: [],
    });
  else if (given.length === 0 && required)
    context.addIssue({ code: 'custom', message: `expected one of ${all}`, path: [] });
}

/** The {@link SecretRef} of a `*_file` / `*_env` pair; `null` when neither is set. */
export function secretRef(file: string | undefined, env: string | undefined): SecretRef | null {
  if (file !== undefined) return Object.freeze({ file });
  if (env !== undefined) return Object.freeze({ env });
  return null;
}
