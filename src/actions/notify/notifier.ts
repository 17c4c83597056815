import { hostname } from 'node:os';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import { type Notification, notificationOf, withoutMatches } from './message.js';
import type { NotifyConfig } from './options.js';
import type { Redactor } from './secrets.js';

/**
 * A failed delivery. `retryable: false` (a 4xx other than 429, a refused recipient) is logged and
 * dropped for that recipient; otherwise the message is tried again with backoff, not before
 * `retryAfterMs` when the peer said so (429 `Retry-After`).
 */
export class DeliveryError extends PortcullisError {
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly status: number | undefined;

  constructor(
    message: string,
    options: { retryable: boolean; retryAfterMs?: number; status?: number; cause?: unknown },
  ) {
    super(ErrorCodes.ACTION_FAILED, message, { cause: options.cause });
    this.name = 'DeliveryError';
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
  }
}

/** How a notification kind delivers one message. */
export interface NotifyTransport {
  /**
   * Who receives each message, each delivered and remembered separately (an SMS per number; one
   * SMTP transaction or one webhook URL is one recipient). A recipient that has a message is never
   * sent it again, whatever fails after.
   */
  readonly recipients: readonly string[];
  /** Every known secret, for the errors and logs. */
  readonly redactor: Redactor;
  /** Reads secrets, builds clients. Rejects when it cannot (the action does not start). */
  start(): Promise<void>;
  /** Delivers one message to one recipient; throws a {@link DeliveryError} (or anything: retried). */
  send(recipient: string, notification: Notification): Promise<void>;
  close(): Promise<void>;
}

/** Test hooks and tuning of the notifier core. */
export interface NotifierOptions {
  /** First wait after a failed delivery, ms; doubles up to `maxBackoffMs`. Default 1000. */
  backoffMs?: number;
  /** Default 60,000. */
  maxBackoffMs?: number;
  /** The window `max_per_minute` counts in, ms. Default 60,000. */
  rateWindowMs?: number;
  /** How long `close()` tries to deliver what is left, ms. Default 10,000. */
  closeTimeoutMs?: number;
  /** The instance name in messages. Default `os.hostname()`. */
  instance?: string;
}

/** Counters of a notification action. */
export interface NotifierStats {
  /** Messages delivered (to at least one recipient). */
  messages: number;
  /** Decisions announced in them. */
  announced: number;
  /** Deliveries that failed and will be tried again. */
  failures: number;
  /** Deliveries refused for good (4xx) and dropped. */
  dropped: number;
  /** Decisions waiting for a digest, the rate limit or a retry. */
  pending: number;
}

interface Pending {
  event: 'ban' | 'unban';
  decisions: Decision[];
  firstAtMs: number;
}

interface Outgoing extends Pending {
  group: string;
  /** Recipients still to receive it. */
  remaining: Set<string>;
  /** Frozen once some recipient has it (or refused it): from then on it is resent unchanged. */
  frozen: Notification | null;
  /** Some recipient has it. */
  delivered: boolean;
}

/** Decisions remembered as taken, so that a batch the runner retries is not announced twice. */
const LEDGER_SIZE = 100_000;

/**
 * The core of the notification kinds: decides *when* a message goes and *what* it carries;
 * the transport only delivers. Only bans decided on this instance come here (`scope: 'local'`).
 *
 * - `digest: 0`: the bans of one `apply` batch (those that arrive together) go as one message at
 *   once; `digest: 10m`: the bans of 10 minutes, from the first, go as one digest;
 *   `group_by: jail` makes a message per jail.
 * - At most `max_per_minute` messages in any minute: beyond, bans wait and go as one summary
 *   when the window allows.
 * - A failed delivery is retried with backoff (1 s doubling to 60 s; a 429's `Retry-After` is
 *   honoured). The `apply` that hit it rejects, so the runner logs and counts it; the retry is the
 *   notifier's own, and bans that arrive meanwhile join the message until someone has received
 *   it. Every decision and every recipient is tracked: nothing is announced twice.
 * - `close()` sends what is waiting (digests included), bounded by `closeTimeoutMs`.
 */
export class Notifier implements Action {
  readonly name: string;
  readonly kind: string;
  readonly scope = 'local' as const;
  readonly config: NotifyConfig;
  readonly #transport: NotifyTransport;
  readonly #context: ActionContext;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #rateWindowMs: number;
  readonly #closeTimeoutMs: number;
  readonly #instance: string;
  readonly #accepted = new Set<string>();
  readonly #pending = new Map<string, Pending>();
  readonly #outbox: Outgoing[] = [];
  /** Times (ms) of the messages sent within the rate window. */
  #sent: number[] = [];
  #notBeforeMs = 0;
  #backoff = 0;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #closing = false;
  #closed: Promise<void> | undefined;
  readonly #stats: NotifierStats = { messages: 0, announced: 0, failures: 0, dropped: 0, pending: 0 };

  constructor(
    name: string,
    kind: string,
    config: NotifyConfig,
    transport: NotifyTransport,
    context: ActionContext,
    options: NotifierOptions = {},
  ) {
    this.name = name;
    this.kind = kind;
    this.config = config;
    this.#transport = transport;
    this.#context = context;
    this.#backoffMs = options.backoffMs ?? 1_000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.#rateWindowMs = options.rateWindowMs ?? 60_000;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.#instance = options.instance ?? hostname();
  }

  get stats(): NotifierStats {
    return { ...this.#stats };
  }

  async start(): Promise<void> {
    try {
      await this.#transport.start();
    } catch (error) {
      throw this.#transport.redactor.error(error);
    }
  }

  async apply(decisions: readonly Decision[]): Promise<void> {
    this.#accept('ban', decisions);
    await this.#kick();
  }

  async revert(decisions: readonly Decision[]): Promise<void> {
    if (!this.config.notifyUnban) return;
    this.#accept('unban', decisions);
    await this.#kick();
  }

  /** Nothing to remove: a message sent stays sent. */
  async flush(): Promise<void> {}

  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.#chain.catch(() => {});
      this.#closing = true;
      if (this.#stats.pending > 0) {
        let timeout: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          this.#serial(() => this.#flush()).then(
            () => null,
            (error: unknown) => error,
          ),
          new Promise((resolve) => {
            timeout = setTimeout(
              () => resolve(new Error(`not delivered within ${this.#closeTimeoutMs} ms`)),
              this.#closeTimeoutMs,
            );
          }),
        ]);
        clearTimeout(timeout);
        if (this.#stats.pending > 0)
          this.#context.logger.warn(
            {
              event: 'notify-lost',
              action: this.name,
              decisions: this.#stats.pending,
              err: outcome === null ? undefined : this.#transport.redactor.error(outcome),
            },
            `action ${this.name}: stopping with ${plural(this.#stats.pending, 'ban')} not announced`,
          );
      }
      clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.#transport.close();
    })();
    return this.#closed;
  }

  /** Takes decisions not seen before into their group's pending list. */
  #accept(event: 'ban' | 'unban', decisions: readonly Decision[]): void {
    const now = this.#context.clock.now();
    for (const decision of decisions) {
      const key = `${event}|${decision.target}|${decision.jail}|${decision.startedAt}`;
      if (this.#accepted.has(key)) continue;
      this.#accepted.add(key);
      if (this.#accepted.size > LEDGER_SIZE)
        this.#accepted.delete(this.#accepted.values().next().value as string);
      const group = this.config.groupBy === 'jail' ? `${event}:${decision.jail}` : event;
      let pending = this.#pending.get(group);
      if (pending === undefined) {
        pending = { event, decisions: [], firstAtMs: now };
        this.#pending.set(group, pending);
      }
      // Only the listed decisions show their matches: the others' would only hold memory meanwhile.
      pending.decisions.push(
        pending.decisions.length < this.config.maxListed ? decision : withoutMatches(decision),
      );
      this.#stats.pending++;
    }
  }

  /** After an apply: send now (digest 0, nothing holding), or leave it to the timer. */
  async #kick(): Promise<void> {
    if (this.#stats.pending === 0) return;
    if (this.config.digestMs > 0 || this.#timer !== undefined) {
      this.#arm(this.#context.clock.now());
      return;
    }
    await this.#serial(() => this.#round());
  }

  /** Runs `task` after every earlier one: deliveries never overlap. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(task, task);
    this.#chain = run.catch(() => {});
    return run;
  }

  /** One flush, then the timer for what is left; rethrows a failure (after arming the retry). */
  async #round(): Promise<void> {
    try {
      await this.#flush();
      this.#backoff = 0;
      this.#arm(this.#context.clock.now());
    } catch (error) {
      this.#backoff = Math.min(this.#backoff === 0 ? this.#backoffMs : this.#backoff * 2, this.#maxBackoffMs);
      const now = this.#context.clock.now();
      const wake = Math.max(now + this.#backoff, this.#notBeforeMs);
      // Nothing goes before the backoff (or the peer's Retry-After) is over, whatever arrives.
      this.#notBeforeMs = wake;
      this.#context.logger.warn(
        { event: 'notify-failed', action: this.name, err: error, pending: this.#stats.pending },
        `action ${this.name}: delivery failed (${(error as Error).message}); retrying in ${wake - now} ms`,
      );
      this.#arm(now, wake);
      throw error;
    }
  }

  /** Sets the timer for the next thing due (or `at`); replaces a later one. */
  #arm(now: number, at?: number): void {
    if (this.#closing) return;
    const due = at ?? this.#nextDue(now);
    if (due === null) return;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= due) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = due;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#serial(() => this.#round()).catch(() => {});
      },
      Math.max(0, due - now),
    ).unref();
  }

  #timerAt = 0;

  /** When something waiting can go: a digest's end, the rate window, a `Retry-After`. */
  #nextDue(now: number): number | null {
    let due = Number.POSITIVE_INFINITY;
    for (const pending of this.#pending.values())
      due = Math.min(due, this.config.digestMs > 0 ? pending.firstAtMs + this.config.digestMs : now);
    if (this.#outbox.length > 0) due = Math.min(due, now);
    if (due === Number.POSITIVE_INFINITY) return null;
    const limited = this.#outbox.some((out) => out.frozen === null) || this.#pending.size > 0;
    if (limited) due = Math.max(due, this.#rateFreeAt(now));
    return Math.max(due, this.#notBeforeMs);
  }

  #rateFreeAt(now: number): number {
    this.#sent = this.#sent.filter((at) => at > now - this.#rateWindowMs);
    if (this.#sent.length < this.config.maxPerMinute) return now;
    return (this.#sent[this.#sent.length - this.config.maxPerMinute] as number) + this.#rateWindowMs;
  }

  /** Moves what is due into the outbox and delivers it; throws the first retryable failure. */
  async #flush(): Promise<void> {
    const now = this.#context.clock.now();
    for (const [group, pending] of this.#pending) {
      if (!this.#closing && this.config.digestMs > 0 && pending.firstAtMs + this.config.digestMs > now)
        continue;
      // Bans that arrive while a message is still undelivered join it: one mail when SMTP is back.
      const open = this.#outbox.find((out) => out.group === group && out.frozen === null);
      if (open !== undefined) open.decisions.push(...pending.decisions);
      else
        this.#outbox.push({
          ...pending,
          group,
          remaining: new Set(this.#transport.recipients),
          frozen: null,
          delivered: false,
        });
      this.#pending.delete(group);
    }
    while (this.#outbox.length > 0) {
      const out = this.#outbox[0] as Outgoing;
      if (!this.#closing && now < this.#notBeforeMs) return;
      if (out.frozen === null && !this.#closing && this.#rateFreeAt(now) > now) return;
      const notification =
        out.frozen ??
        notificationOf(
          out.event,
          out.decisions,
          { firstAtMs: out.firstAtMs, madeAtMs: now },
          this.#instance,
          this.config.maxListed,
        );
      for (const recipient of [...out.remaining]) {
        let delivered = true;
        try {
          await this.#transport.send(recipient, notification);
        } catch (raw) {
          const error = this.#transport.redactor.error(raw) as Error & {
            retryable?: boolean;
            retryAfterMs?: number;
          };
          if (error.retryable !== false) {
            this.#stats.failures++;
            if (error.retryAfterMs !== undefined)
              this.#notBeforeMs = this.#context.clock.now() + error.retryAfterMs;
            throw error;
          }
          delivered = false;
          this.#stats.dropped++;
          this.#context.logger.error(
            { event: 'notify-dropped', action: this.name, decisions: out.decisions.length, err: error },
            `action ${this.name}: message refused (${error.message}); dropped, not retried`,
          );
        }
        out.remaining.delete(recipient);
        if (delivered) out.delivered = true;
        if (out.frozen === null) {
          out.frozen = notification;
          this.#sent.push(now);
        }
      }
      this.#outbox.shift();
      this.#stats.pending -= out.decisions.length;
      if (out.delivered) {
        this.#stats.messages++;
        this.#stats.announced += out.decisions.length;
      }
    }
  }
}
