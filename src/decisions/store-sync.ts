import { EventEmitter } from 'node:events';
import type { Clock } from '../core/clock.js';
import { ErrorCodes, isPortcullisError } from '../core/errors.js';
import { FailureWindows } from '../core/failure-windows.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { plural } from '../core/plural.js';
import { type Decision, type FailureInput, type FailureResult, isActive } from '../core/types.js';
import type { Store, StoreMessage } from '../stores/store.js';
import { decisionOfEntry } from './decide.js';
import type { DecisionBook } from './decision-book.js';
import { createOutbox, type Outbox, type PendingWrite } from './outbox.js';

/** What to do while the store is unreachable (`on_store_error`). */
export type OutagePolicy = 'local' | 'deny' | 'stop';

export interface StoreSyncOptions {
  store: Store;
  book: DecisionBook;
  clock: Clock;
  logger?: Logger;
  /** This instance's name, in decisions it writes back. */
  origin: string;
  /** Read at each outage, so a reload that changes it takes effect. */
  policy: () => OutagePolicy;
  /**
   * Where decisions wait while the store is down: a SQLite file, so a process killed during an
   * outage replays them at its next start; `null` keeps them in memory. Default `null`.
   */
  outboxPath?: string | null;
  /** How often to try a store that is down, ms. Default 1000. */
  retryIntervalMs?: number;
}

export interface StoreSyncEventMap {
  /** The store became unreachable; the outage policy now applies. */
  down: [error: Error];
  /** The store is back; decisions made meanwhile have been written and everything reloaded. */
  up: [];
  /** Something failed that is not an outage (a bug, an unexpected answer); enforcement goes on. */
  error: [error: Error];
}

/** Writes per store call when replaying the outbox. */
const WRITE_BATCH = 1_000;

/**
 * The only part that knows the store can be down. It writes decisions (or queues them in the
 * outbox during an outage), counts failures in the store (or locally, per the policy), mirrors
 * the store into the {@link DecisionBook} (full reload at start and on every return, pub/sub
 * messages in between), and writes back what this instance enforces when the store comes back
 * without it (a Redis restarted empty, a corrupt SQLite file moved aside).
 */
export class StoreSync extends EventEmitter<StoreSyncEventMap> {
  readonly store: Store;
  readonly #book: DecisionBook;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #origin: string;
  readonly #policy: () => OutagePolicy;
  readonly #outbox: Outbox;
  readonly #retryIntervalMs: number;
  readonly #localWindows = new FailureWindows();
  #available = true;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #recovering: Promise<void> | undefined;
  /** The store announced a change while a reload was reading it: read again once it ends. */
  #again = false;
  #errors = 0;

  constructor(options: StoreSyncOptions) {
    super();
    this.store = options.store;
    this.#book = options.book;
    this.#clock = options.clock;
    this.#logger = options.logger ?? silentLogger;
    this.#origin = options.origin;
    this.#policy = options.policy;
    this.#retryIntervalMs = options.retryIntervalMs ?? 1_000;
    this.#outbox = createOutbox(options.outboxPath ?? null);
  }

  /** False during an outage. */
  get available(): boolean {
    return this.#available;
  }

  /** Decisions waiting to be written. */
  get pending(): number {
    return this.#outbox.size;
  }

  /** Store errors seen (outages and others). */
  get errors(): number {
    return this.#errors;
  }

  /**
   * Opens the store, writes what an earlier run left in the outbox, and loads every decision in
   * force into the book. Rejects when the store cannot be opened.
   */
  async start(): Promise<void> {
    await this.store.open();
    this.store.on('message', this.#onMessage);
    this.store.on('up', this.#onUp);
    this.store.on('down', this.#onDown);
    this.store.on('lost', this.#onLost);
    if (this.#outbox.size > 0) {
      this.#logger.info(
        { event: 'outbox-replay', pending: this.#outbox.size, file: this.#outbox.path },
        `writing ${plural(this.#outbox.size, 'decision')} left from an outage`,
      );
      // Enforced at once, written in the background of start (a restore follows).
      for (const [, write] of this.#outbox.entries()) {
        if (write.kind === 'put' && isActive(write.decision.expiresAt, this.#clock.now())) {
          this.#book.apply(write.decision, 'restore');
        }
      }
      try {
        await this.#flush();
      } catch (error) {
        this.failed(error);
      }
    }
    await this.#reload();
  }

  /**
   * Counts a failure in the store; during an outage (or when the store fails now) locally, or
   * not at all (`null`) with the `stop` policy.
   */
  async addFailure(input: FailureInput): Promise<FailureResult | null> {
    if (this.#available) {
      try {
        return await this.store.addFailure(input);
      } catch (error) {
        this.failed(error);
      }
    }
    if (this.#policy() === 'stop') return null;
    return this.#localWindows.add(input);
  }

  /** Forgets the shared failures of `key` in `jail` (a ban decided here from this instance's own count). */
  async clearFailures(jail: string, key: string): Promise<void> {
    this.#localWindows.clear(jail, key);
    if (!this.#available) return;
    try {
      await this.store.clearFailures(jail, key);
    } catch (error) {
      this.failed(error);
    }
  }

  /** Earlier bans of `key` for `bantime_increment`; 0 when the store cannot say. */
  async countBans(key: string, jail: string | null, sinceMs: number): Promise<number> {
    if (!this.#available) return 0;
    try {
      return await this.store.countBans(key, jail, sinceMs);
    } catch (error) {
      this.failed(error);
      return 0;
    }
  }

  /**
   * Writes a decision the book already enforces; resolves to it as stored (merged with a longer
   * one the store held, which the book then enforces too). Queued during an outage.
   */
  async put(decision: Decision): Promise<Decision> {
    if (!this.#available) {
      this.#outbox.set(decision.target, { kind: 'put', decision });
      return decision;
    }
    try {
      const stored = await this.store.putDecision(decision);
      // A delete still queued from an outage would lift this new ban.
      if (this.#outbox.get(decision.target)?.kind === 'delete') this.#outbox.delete(decision.target);
      if (stored.expiresAt !== decision.expiresAt) this.#book.extend(stored);
      return stored;
    } catch (error) {
      this.failed(error);
      this.#outbox.set(decision.target, { kind: 'put', decision });
      return decision;
    }
  }

  /** Deletes the decision of `target`; resolves to what the store held. Queued during an outage. */
  async delete(target: string): Promise<Decision | undefined> {
    if (!this.#available) {
      this.#outbox.set(target, { kind: 'delete' });
      return undefined;
    }
    try {
      const removed = await this.store.deleteDecision(target);
      // A put still queued from an outage would bring the ban back.
      this.#outbox.delete(target);
      return removed;
    } catch (error) {
      this.failed(error);
      this.#outbox.set(target, { kind: 'delete' });
      return undefined;
    }
  }

  /** Every decision in force, from the store; during an outage, what the book enforces. */
  async decisions(): Promise<Decision[]> {
    const now = this.#clock.now();
    const out: Decision[] = [];
    try {
      await this.store.loadDecisions(now, (batch) => {
        for (const decision of batch) out.push(decision);
      });
      return out;
    } catch (error) {
      this.failed(error);
      out.length = 0;
      for (const entry of this.#book.entries()) {
        out.push(decisionOfEntry(entry, '(store unavailable: details unknown)', this.#origin, now));
      }
      return out;
    }
  }

  /** Drops expired decisions and old history from the store, and stale local windows. */
  async purge(historyBeforeMs: number): Promise<void> {
    const now = this.#clock.now();
    this.#localWindows.prune(now);
    if (!this.#available) return;
    try {
      await this.store.purge(now, historyBeforeMs);
    } catch (error) {
      this.failed(error);
    }
  }

  /** Takes a store error: an outage starts (once), a lost store is written back, others are logged. */
  failed(error: unknown): void {
    this.#errors++;
    if (isPortcullisError(error, ErrorCodes.STORE_CORRUPT)) {
      // The file was replaced by an empty one: what this instance enforces must be written back.
      this.#requeueEnforced('the SQLite file was replaced');
    } else if (
      !isPortcullisError(error, ErrorCodes.STORE_UNAVAILABLE) &&
      !isPortcullisError(error, ErrorCodes.CLOSED)
    ) {
      const err = error instanceof Error ? error : new Error(String(error));
      this.#logger.error({ err }, 'unexpected store error');
      if (this.listenerCount('error') > 0) this.emit('error', err);
    }
    if (!this.#available || this.#closed) return;
    this.#available = false;
    const err = error instanceof Error ? error : new Error(String(error));
    const policy = this.#policy();
    this.#logger.error({ err, policy }, `store unavailable; on_store_error=${policy}: ${policyText(policy)}`);
    this.emit('down', err);
    this.#retryTimer = setInterval(() => void this.#recover(), this.#retryIntervalMs).unref();
  }

  /** Stops retrying and closes the store; the outbox file keeps what is still queued. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retryTimer);
    this.store.off('message', this.#onMessage);
    this.store.off('up', this.#onUp);
    this.store.off('down', this.#onDown);
    this.store.off('lost', this.#onLost);
    await this.#recovering?.catch(() => {});
    if (this.#outbox.size > 0) {
      this.#logger.warn(
        { pending: this.#outbox.size, file: this.#outbox.path },
        this.#outbox.path === null
          ? 'closing with decisions not yet written to the store (they are lost: no store.outbox file)'
          : `closing with decisions not yet written to the store; kept in ${this.#outbox.path} for the next start`,
      );
    }
    this.#outbox.close();
    await this.store.close();
  }

  readonly #onMessage = (message: StoreMessage): void => {
    if (this.#closed) return;
    if (message.type === 'ban') {
      if (isActive(message.decision.expiresAt, this.#clock.now()))
        this.#book.apply(message.decision, 'remote');
      return;
    }
    if (message.type === 'unban') this.#book.remove(message.target, 'remote');
  };

  readonly #onDown = (error: Error): void => {
    this.failed(error);
  };

  readonly #onUp = (): void => {
    if (this.#closed) return;
    if (this.#recovering !== undefined) this.#again = true;
    void this.#recover();
  };

  readonly #onLost = (): void => {
    if (this.#closed) return;
    // Written back by the recovery that the `up` following it starts.
    this.#requeueEnforced('the store came back without its data');
  };

  /** Writes what was decided during an outage, then reloads every decision from the store. */
  async #recover(): Promise<void> {
    if (this.#closed || this.#recovering !== undefined) return;
    this.#recovering = (async () => {
      try {
        await this.#flush();
        await this.#reload();
        // Decisions queued while reloading; no await between the last check and "available".
        await this.#flush();
        const wasDown = !this.#available;
        this.#available = true;
        clearInterval(this.#retryTimer);
        this.#retryTimer = undefined;
        this.#localWindows.clearAll();
        if (wasDown) {
          this.#logger.info({ event: 'store-up' }, 'store available again; decisions written and reloaded');
          this.emit('up');
        }
      } catch (error) {
        if (!this.#available) return; // still down; the retry timer tries again
        this.failed(error);
      }
    })();
    try {
      await this.#recovering;
    } finally {
      this.#recovering = undefined;
    }
    if (this.#again && !this.#closed) {
      this.#again = false;
      await this.#recover();
    }
  }

  /** Writes every queued decision in batches, including those queued while writing. */
  async #flush(): Promise<void> {
    while (this.#outbox.size > 0) {
      const entries = this.#outbox.entries();
      for (let i = 0; i < entries.length; i += WRITE_BATCH) {
        const chunk = entries.slice(i, i + WRITE_BATCH);
        const puts = chunk.filter((e): e is [string, PendingWrite & { kind: 'put' }] => e[1].kind === 'put');
        const deletes = chunk.filter(([, write]) => write.kind === 'delete').map(([target]) => target);
        if (puts.length > 0) await this.store.putDecisions(puts.map(([, write]) => write.decision));
        if (deletes.length > 0) await this.store.deleteDecisions(deletes);
        // Only what was not replaced meanwhile is done.
        for (const [target, write] of chunk)
          if (this.#outbox.get(target) === write) this.#outbox.delete(target);
      }
    }
  }

  /** Rebuilds the book from the store, swapping it in whole so enforcement never gaps. */
  async #reload(): Promise<void> {
    const reload = this.#book.beginReload();
    try {
      await this.store.loadDecisions(this.#clock.now(), (batch) => {
        for (const decision of batch) reload.add(decision);
      });
    } catch (error) {
      reload.abort();
      throw error;
    }
    // Decisions still waiting for the store stay as this instance decided them.
    for (const [target, write] of this.#outbox.entries()) {
      if (write.kind === 'put') reload.add(write.decision);
      else reload.remove(target);
    }
    reload.commit();
    this.#logger.info(
      { event: 'restore', bans: this.#book.size, dryRun: this.#book.dryRunSize },
      `${plural(this.#book.size, 'ban')} loaded`,
    );
  }

  #requeueEnforced(why: string): void {
    const now = this.#clock.now();
    let count = 0;
    for (const entry of this.#book.entries()) {
      if (entry.expiresAt <= now || this.#outbox.get(entry.target) !== undefined) continue;
      this.#outbox.set(entry.target, {
        kind: 'put',
        decision: decisionOfEntry(entry, 'restored after the store was lost', this.#origin, now),
      });
      count++;
    }
    this.#logger.warn(
      { event: 'store-lost', bans: count },
      `${why}: writing back the ${plural(count, 'ban')} this instance enforces`,
    );
  }
}

function policyText(policy: OutagePolicy): string {
  if (policy === 'local') return 'enforcing known bans, counting locally, writing back when it returns';
  if (policy === 'stop') return 'enforcing known bans, not counting';
  return 'refusing every client not in ignoreip';
}
