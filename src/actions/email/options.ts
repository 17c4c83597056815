import { hostname } from 'node:os';
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
} from '../notify/options.js';

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

/** `ops@example.com`: one address, no display name. */
const address = z.string().regex(/^[^\s@<>",;]+@[^\s@<>",;]+$/, {
  error: (issue) => `expected an e-mail address like ops@example.com, got ${show(issue.input)}`,
});

/** `smtp://host:port` or `smtps://host:port` (TLS from the start), with no password in it. */
const smtpUrl = z.string().superRefine((text, context) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    context.addIssue({
      code: 'custom',
      message: `expected an SMTP URL like "smtp://127.0.0.1:25", got ${show(text)}`,
      input: text,
    });
    return;
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:')
    context.addIssue({
      code: 'custom',
      message: `expected smtp:// or smtps://, got ${show(`${url.protocol}//`)}`,
      input: text,
    });
  else if (url.password !== '')
    context.addIssue({
      code: 'custom',
      message:
        'the SMTP URL holds a password; put it in password_file or password_env (config files get copied)',
    });
  else if (url.hostname === '')
    context.addIssue({ code: 'custom', message: 'expected a host in the SMTP URL' });
  else if (url.pathname !== '' && url.pathname !== '/')
    context.addIssue({
      code: 'custom',
      message: `expected no path in the SMTP URL, got ${show(url.pathname)}`,
    });
});

/** `actions: [{ email: { ... } }]`, as the user writes it. */
export const emailOptionsSchema = z
  .strictObject({
    /** Recipients: an address or a list. Required. */
    to: z
      .union([address, z.array(address).min(1, { error: 'expected at least one recipient' })], {
        error: (issue) => `expected an e-mail address or a list of them, got ${show(issue.input)}`,
      })
      .describe('Recipients: an address or a list of them. Required.'),
    /** Sender. Default `portcullis@<hostname>`. */
    from: address.optional().describe('Sender address. Default portcullis@<hostname>.'),
    /** The SMTP server: `smtp://host:port` (STARTTLS when offered) or `smtps://host:465`. Default `smtp://127.0.0.1:25`. */
    smtp: smtpUrl
      .optional()
      .describe(
        'smtp://host:port (STARTTLS when offered) or smtps://host:port. Default smtp://127.0.0.1:25.',
      ),
    /** SMTP user, with `password_file` or `password_env`. Default: no authentication. */
    username: z.string().min(1).optional().describe('SMTP user (with password_file or password_env).'),
    /** A file holding the SMTP password (relative to the config file). */
    password_file: filePath.optional().describe('A file holding the SMTP password.'),
    /** An environment variable holding the SMTP password. */
    password_env: envName.optional().describe('An environment variable holding the SMTP password.'),
    /** Refuse to send unless the server upgrades to TLS (STARTTLS). Default false. */
    require_tls: z
      .boolean({ error: (issue) => `expected true or false, got ${show(issue.input)}` })
      .optional()
      .describe('Refuse to send without STARTTLS. Default false.'),
    /** Subject; tags `<summary>`, `<count>`, `<jails>`, `<instance>`. Default `portcullis: <summary>`. */
    subject: z
      .string()
      .min(1)
      .max(400)
      .refine((text) => !/[\r\n]/.test(text), { error: 'expected one line' })
      .optional()
      .describe('Subject; tags <summary>, <count>, <jails>, <instance>. Default "portcullis: <summary>".'),
    /** How long the connection, greeting and each command may take. Default 10s. */
    timeout: positiveDurationOption('a timeout')
      .optional()
      .describe('SMTP connection and command timeout. Default 10s.'),
    ...notifyOptionShape,
  })
  .superRefine((data, context) => {
    oneSecret(data, { file: 'password_file', env: 'password_env' }, context, false);
    const password = data.password_file !== undefined || data.password_env !== undefined;
    if (password && data.username === undefined)
      context.addIssue({ code: 'custom', message: 'a password needs a username', path: ['username'] });
    if (!password && data.username !== undefined)
      context.addIssue({
        code: 'custom',
        message: 'a username needs password_file or password_env',
        path: ['username'],
      });
  });

/** A validated, frozen e-mail action configuration. */
export interface EmailConfig {
  readonly to: readonly string[];
  readonly from: string;
  readonly host: string;
  readonly port: number;
  /** TLS from the first byte (`smtps://`). */
  readonly secure: boolean;
  readonly requireTls: boolean;
  readonly username: string | null;
  readonly password: SecretRef | null;
  readonly subject: string;
  readonly timeoutMs: number;
  readonly notify: NotifyConfig;
}

/** Defaults of the e-mail action, written once. */
export const EMAIL_DEFAULTS = {
  smtp: 'smtp://127.0.0.1:25',
  subject: 'portcullis: <summary>',
  timeoutMs: 10_000,
  maxPerMinute: 10,
} as const;

export function resolveEmailOptions(options: z.output<typeof emailOptionsSchema>): EmailConfig {
  const url = new URL(options.smtp ?? EMAIL_DEFAULTS.smtp);
  const secure = url.protocol === 'smtps:';
  return Object.freeze({
    to: Object.freeze(typeof options.to === 'string' ? [options.to] : [...new Set(options.to)]),
    from: options.from ?? `portcullis@${hostname()}`,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (secure ? 465 : 25) : Number(url.port),
    secure,
    requireTls: options.require_tls ?? false,
    username: options.username ?? (url.username === '' ? null : decodeURIComponent(url.username)),
    password: secretRef(options.password_file, options.password_env),
    subject: options.subject ?? EMAIL_DEFAULTS.subject,
    timeoutMs: options.timeout === undefined ? EMAIL_DEFAULTS.timeoutMs : parseDuration(options.timeout),
    notify: resolveNotifyOptions(options, EMAIL_DEFAULTS.maxPerMinute),
  });
}
