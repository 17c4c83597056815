import nodemailer, { type Transporter } from 'nodemailer';
import type { ActionContext } from '../action.js';
import type { Notification } from '../notify/message.js';
import { DeliveryError, Notifier, type NotifierOptions, type NotifyTransport } from '../notify/notifier.js';
import { Redactor, readSecret } from '../notify/secrets.js';
import type { EmailConfig } from './options.js';
import { renderMail } from './render.js';

/** Test hooks. */
export interface EmailActionOptions extends NotifierOptions {
  /** Where `password_env` is read. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** What nodemailer's errors carry. */
interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
}

/**
 * Sends each message as one SMTP transaction to every recipient (one recipient for the notifier:
 * the transaction). A new connection per message: notifications are rare, and nothing stays
 * open between them.
 */
export class EmailTransport implements NotifyTransport {
  readonly recipients = ['smtp'] as const;
  readonly redactor = new Redactor();
  readonly #config: EmailConfig;
  readonly #context: ActionContext;
  readonly #env: Readonly<Record<string, string | undefined>> | undefined;
  #transporter: Transporter | undefined;

  constructor(
    config: EmailConfig,
    context: ActionContext,
    env?: Readonly<Record<string, string | undefined>>,
  ) {
    this.#config = config;
    this.#context = context;
    this.#env = env;
  }

  async start(): Promise<void> {
    const config = this.#config;
    let auth: { user: string; pass: string } | undefined;
    if (config.username !== null && config.password !== null) {
      const pass = await readSecret(config.password, this.#context.baseDir, this.#env);
      this.redactor.add(pass);
      this.redactor.addBasic(config.username, pass);
      auth = { user: config.username, pass };
    }
    this.#transporter = nodemailer.createTransport({
      host: config.host,
      port: config.port,
      secure: config.secure,
      requireTLS: config.requireTls,
      auth,
      connectionTimeout: config.timeoutMs,
      greetingTimeout: config.timeoutMs,
      socketTimeout: config.timeoutMs,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  async send(_recipient: string, notification: Notification): Promise<void> {
    const mail = renderMail(this.#config.subject, notification);
    const transporter = this.#transporter;
    if (transporter === undefined)
      throw new DeliveryError('the e-mail action is not started', { retryable: true });
    let info: { accepted?: unknown[]; rejected?: unknown[] };
    try {
      info = await transporter.sendMail({
        from: this.#config.from,
        to: [...this.#config.to],
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
      });
    } catch (raw) {
      const error = raw as SmtpError;
      const code = error.responseCode;
      // 5xx: the server refused for good (bad recipient, auth, policy); 4xx and network: try again.
      const permanent = code !== undefined && code >= 500;
      throw new DeliveryError(`SMTP ${code ?? error.code ?? 'error'}: ${error.message}`, {
        retryable: !permanent,
        cause: error,
      });
    }
    if ((info.rejected?.length ?? 0) > 0)
      this.#context.logger.warn(
        { event: 'notify-rejected', recipients: info.rejected },
        `SMTP server refused ${info.rejected?.length} recipient(s): ${info.rejected?.join(', ')}`,
      );
  }

  async close(): Promise<void> {
    this.#transporter?.close();
    this.#transporter = undefined;
  }
}

/** The `email` action: text + HTML mails over SMTP (nodemailer), through the notifier core. */
export function createEmailAction(
  name: string,
  config: EmailConfig,
  context: ActionContext,
  options: EmailActionOptions = {},
): Notifier {
  return new Notifier(
    name,
    'email',
    config.notify,
    new EmailTransport(config, context, options.env),
    context,
    options,
  );
}
