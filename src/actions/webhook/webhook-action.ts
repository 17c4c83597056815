import type { ActionContext } from '../action.js';
import { post } from '../notify/http-post.js';
import type { Notification } from '../notify/message.js';
import { Notifier, type NotifierOptions, type NotifyTransport } from '../notify/notifier.js';
import { secureUrlProblem } from '../notify/options.js';
import { Redactor, readSecret } from '../notify/secrets.js';
import { WEBHOOK_BODIES } from './formats.js';
import type { WebhookConfig } from './options.js';

/** Test hooks. */
export interface WebhookActionOptions extends NotifierOptions {
  /** Where `url_env` is read. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** POSTs each message as JSON in the configured format; one recipient: the URL. */
export class WebhookTransport implements NotifyTransport {
  readonly recipients = ['webhook'] as const;
  readonly redactor = new Redactor();
  readonly #config: WebhookConfig;
  readonly #baseDir: string | null;
  readonly #env: Readonly<Record<string, string | undefined>> | undefined;
  #url = '';

  constructor(
    config: WebhookConfig,
    baseDir: string | null,
    env?: Readonly<Record<string, string | undefined>>,
  ) {
    this.#config = config;
    this.#baseDir = baseDir;
    this.#env = env;
    for (const value of Object.values(config.headers)) this.redactor.add(value);
  }

  async start(): Promise<void> {
    const url =
      this.#config.url ??
      (await readSecret(
        this.#config.urlSecret as NonNullable<WebhookConfig['urlSecret']>,
        this.#baseDir,
        this.#env,
      ));
    const problem = secureUrlProblem(url);
    if (problem !== null) throw new Error(`the webhook URL from ${this.#where()}: ${problem}`);
    // A Slack or Discord URL's path is its token.
    const parsed = new URL(url);
    this.redactor.add(url);
    if (parsed.pathname.length > 1) this.redactor.add(parsed.pathname.slice(1));
    this.#url = url;
  }

  #where(): string {
    const ref = this.#config.urlSecret;
    if (ref === null) return 'url';
    return 'file' in ref ? `url_file ${ref.file}` : `url_env ${ref.env}`;
  }

  async send(_recipient: string, notification: Notification): Promise<void> {
    await post({
      url: this.#url,
      headers: { ...this.#config.headers, 'content-type': 'application/json' },
      body: JSON.stringify(WEBHOOK_BODIES[this.#config.format](notification)),
      timeoutMs: this.#config.timeoutMs,
    });
  }

  async close(): Promise<void> {}
}

/** The `webhook` action: Slack, Discord, Teams or generic JSON, through the notifier core. */
export function createWebhookAction(
  name: string,
  config: WebhookConfig,
  context: ActionContext,
  options: WebhookActionOptions = {},
): Notifier {
  return new Notifier(
    name,
    'webhook',
    config.notify,
    new WebhookTransport(config, context.baseDir, options.env),
    context,
    options,
  );
}
