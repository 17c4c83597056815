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
  secureUrlProblem,
} from '../notify/options.js';
import { urlForLogs } from '../notify/secrets.js';

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

/** `+15550100`: E.164. */
const phone = z.string().regex(/^\+[1-9]\d{6,14}$/, {
  error: (issue) => `expected a phone number like "+15550100" (E.164), got ${show(issue.input)}`,
});

/** The provider's URL: `<account>` is replaced by `account`. */
const providerUrl = z.string().superRefine((text, context) => {
  const problem = secureUrlProblem(text.replaceAll('<account>', 'account'));
  if (problem !== null) context.addIssue({ code: 'custom', message: problem, input: text });
});

/** `actions: [{ sms: { ... } }]`, as the user writes it. */
export const smsOptionsSchema = z
  .strictObject({
    /** Numbers to text: one or a list, E.164. Required. */
    to: z
      .union([phone, z.array(phone).min(1, { error: 'expected at least one number' })], {
        error: (issue) => `expected a phone number or a list of them, got ${show(issue.input)}`,
      })
      .describe('Numbers to text (E.164, "+15550100"): one or a list. Required.'),
    /** The sender: a number of the account (E.164) or an alphanumeric sender ID. Required. */
    from: z
      .string()
      .regex(/^(\+[1-9]\d{6,14}|[A-Za-z0-9 ]{1,11})$/, {
        error: (issue) =>
          `expected the sending number ("+15550199") or a sender ID, got ${show(issue.input)}`,
      })
      .describe('The sending number (E.164) or an alphanumeric sender ID. Required.'),
    /** Twilio's Messages URL by default; another provider with the same form API works too. */
    url: providerUrl
      .optional()
      .describe(
        'The provider endpoint (https). Default https://api.twilio.com/2010-04-01/Accounts/<account>/Messages.json.',
      ),
    /** Account SID (Basic auth user). Required. */
    account: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, {
        error: (issue) => `expected an account id like "AC0123...", got ${show(issue.input)}`,
      })
      .describe('Account SID: the Basic auth user. Required.'),
    /** A file holding the auth token (relative to the config file). */
    token_file: filePath.optional().describe('A file holding the auth token.'),
    /** An environment variable holding the auth token. */
    token_env: envName.optional().describe('An environment variable holding the auth token.'),
    /** How long one request may take. Default 5s. */
    timeout: positiveDurationOption('a timeout')
      .optional()
      .describe('One request at most this long. Default 5s.'),
    ...notifyOptionShape,
  })
  .superRefine((data, context) => oneSecret(data, { file: 'token_file', env: 'token_env' }, context, true));

/** A validated, frozen SMS action configuration. */
export interface SmsConfig {
  readonly to: readonly string[];
  readonly from: string;
  readonly url: string;
  readonly account: string;
  readonly token: SecretRef;
  readonly timeoutMs: number;
  readonly notify: NotifyConfig;
}

/** Defaults of the SMS action, written once: texts cost money and wake people, hence 3 a minute. */
export const SMS_DEFAULTS = {
  url: 'https://api.twilio.com/2010-04-01/Accounts/<account>/Messages.json',
  timeoutMs: 5_000,
  maxPerMinute: 3,
  /** One SMS segment (GSM-7). */
  maxLength: 160,
} as const;

export function resolveSmsOptions(options: z.output<typeof smsOptionsSchema>): SmsConfig {
  const config: SmsConfig = {
    to: Object.freeze(typeof options.to === 'string' ? [options.to] : [...new Set(options.to)]),
    from: options.from,
    url: (options.url ?? SMS_DEFAULTS.url).replaceAll('<account>', encodeURIComponent(options.account)),
    account: options.account,
    token: secretRef(options.token_file, options.token_env) as SecretRef,
    timeoutMs: options.timeout === undefined ? SMS_DEFAULTS.timeoutMs : parseDuration(options.timeout),
    notify: resolveNotifyOptions(options, SMS_DEFAULTS.maxPerMinute),
  };
  Object.defineProperty(config, 'toJSON', {
    enumerable: false,
    value: () => ({ ...config, url: urlForLogs(config.url) }),
  });
  return Object.freeze(config);
}
