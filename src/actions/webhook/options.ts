import { z } from 'zod';
import { parseDuration } from '../../core/duration.js';
import {
  envName,
  filePath,
  type NotifyConfig,
  notifyOptionShape,
  oneSecret,
  positiveDurationOption,
  resolveNotifyOptions,
  type SecretRef,
  secretRef,
  secureUrl,
} from '../notify/options.js';
import { REDACTED, urlForLogs } from '../notify/secrets.js';

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

/** The bodies the webhook action can POST. */
export const WEBHOOK_FORMATS = ['slack', 'discord', 'teams', 'generic'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** Header names fetch accepts (RFC 9110 token); `content-type` is portcullis's own. */
const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, {
    error: (issue) => `expected a header name, got ${show(issue.input)}`,
  })
  .refine((name) => !['content-type', 'content-length', 'host', 'connection'].includes(name.toLowerCase()), {
    error: (issue) => `${show(issue.input)} is set by portcullis`,
  });

/** `actions: [{ webhook: { ... } }]`, as the user writes it. */
export const webhookOptionsSchema = z
  .strictObject({
    /** Where to POST: `https://`, or `http://` to this host only. The URL is a secret (Slack's is a token): use `url_file`/`url_env` to keep it out of the config. */
    url: secureUrl
      .optional()
      .describe('Where to POST: https:// (http:// to this host only). Or url_file / url_env.'),
    /** A file holding the URL (relative to the config file). */
    url_file: filePath.optional().describe('A file holding the webhook URL.'),
    /** An environment variable holding the URL. */
    url_env: envName.optional().describe('An environment variable holding the webhook URL.'),
    /** `slack`, `discord`, `teams` (Adaptive Card, for Workflows) or `generic` JSON (default). */
    format: z
      .enum(WEBHOOK_FORMATS, {
        error: (issue) => `expected one of ${WEBHOOK_FORMATS.join(', ')}, got ${show(issue.input)}`,
      })
      .optional()
      .describe('slack, discord, teams (Adaptive Card) or generic (default).'),
    /** Extra request headers (`Authorization: Bearer ...`); their values are never logged. */
    headers: z
      .record(
        headerName,
        z.string({ error: (issue) => `expected a header value (text), got ${show(issue.input)}` }),
      )
      .optional()
      .describe('Extra request headers; values are never logged.'),
    /** How long one POST may take before it is abandoned and retried. Default 5s. */
    timeout: positiveDurationOption('a timeout')
      .optional()
      .describe('One POST at most this long. Default 5s.'),
    ...notifyOptionShape,
  })
  .superRefine((data, context) =>
    oneSecret(data, { inline: 'url', file: 'url_file', env: 'url_env' }, context, true),
  );

/** A validated, frozen webhook action configuration. */
export interface WebhookConfig {
  /** The URL when written inline; else {@link urlSecret}. */
  readonly url: string | null;
  readonly urlSecret: SecretRef | null;
  readonly format: WebhookFormat;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly notify: NotifyConfig;
}

/** Defaults of the webhook action, written once. */
export const WEBHOOK_DEFAULTS = { format: 'generic', timeoutMs: 5_000, maxPerMinute: 10 } as const;

export function resolveWebhookOptions(options: z.output<typeof webhookOptionsSchema>): WebhookConfig {
  const config: WebhookConfig = {
    url: options.url ?? null,
    urlSecret: secretRef(options.url_file, options.url_env),
    format: options.format ?? WEBHOOK_DEFAULTS.format,
    headers: Object.freeze({ ...(options.headers ?? {}) }),
    timeoutMs: options.timeout === undefined ? WEBHOOK_DEFAULTS.timeoutMs : parseDuration(options.timeout),
    notify: resolveNotifyOptions(options, WEBHOOK_DEFAULTS.maxPerMinute),
  };
  // What `run` logs of it: the URL's host only, header names only.
  Object.defineProperty(config, 'toJSON', {
    enumerable: false,
    value: () => ({
      ...config,
      url: config.url === null ? null : urlForLogs(config.url),
      headers: Object.fromEntries(Object.keys(config.headers).map((name) => [name, REDACTED])),
    }),
  });
  return Object.freeze(config);
}
