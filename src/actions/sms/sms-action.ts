import type { ActionContext } from '../action.js';
import { post } from '../notify/http-post.js';
import { clip, type Notification, summaryOf } from '../notify/message.js';
import { Notifier, type NotifierOptions, type NotifyTransport } from '../notify/notifier.js';
import { Redactor, readSecret } from '../notify/secrets.js';
import { SMS_DEFAULTS, type SmsConfig } from './options.js';

/** Test hooks. */
export interface SmsActionOptions extends NotifierOptions {
  /** Where `token_env` is read. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** `portcullis: banned 203.0.113.9 (sshd, 5 failures) for 1h`, at most one segment (160). */
export function smsText(notification: Notification): string {
  return clip(`portcullis: ${summaryOf(notification)}`, SMS_DEFAULTS.maxLength);
}

/** The Twilio form body of one text. */
export function smsForm(config: Pick<SmsConfig, 'from'>, to: string, text: string): string {
  return new URLSearchParams({ To: to, From: config.from, Body: text }).toString();
}

/** One form POST per number (`To`, `From`, `Body`), Basic auth `account:token`: Twilio's API. */
export class SmsTransport implements NotifyTransport {
  readonly recipients: readonly string[];
  readonly redactor = new Redactor();
  readonly #config: SmsConfig;
  readonly #baseDir: string | null;
  readonly #env: Readonly<Record<string, string | undefined>> | undefined;
  #authorization = '';

  constructor(config: SmsConfig, baseDir: string | null, env?: Readonly<Record<string, string | undefined>>) {
    this.#config = config;
    this.recipients = config.to;
    this.#baseDir = baseDir;
    this.#env = env;
  }

  async start(): Promise<void> {
    const token = await readSecret(this.#config.token, this.#baseDir, this.#env);
    this.redactor.addBasic(this.#config.account, token);
    this.#authorization = `Basic ${Buffer.from(`${this.#config.account}:${token}`).toString('base64')}`;
  }

  async send(recipient: string, notification: Notification): Promise<void> {
    await post({
      url: this.#config.url,
      headers: {
        authorization: this.#authorization,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: smsForm(this.#config, recipient, smsText(notification)),
      timeoutMs: this.#config.timeoutMs,
    });
  }

  async close(): Promise<void> {}
}

/** The `sms` action: a short text per message to each number, through the notifier core. */
export function createSmsAction(
  name: string,
  config: SmsConfig,
  context: ActionContext,
  options: SmsActionOptions = {},
): Notifier {
  return new Notifier(
    name,
    'sms',
    config.notify,
    new SmsTransport(config, context.baseDir, options.env),
    context,
    options,
  );
}
