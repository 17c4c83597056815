import type { Clock } from '../core/clock.js';
import type { ParsedIp } from '../core/ip.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { BanEntry, Decision, DecisionSource, UnbanEvent } from '../core/types.js';
import { BanTable } from './ban-table.js';
import { decisionOfEntry, laterExpiry } from './decide.js';

/**
 * Told about every change of what this instance enforces. Each method is optional; a listener
 * that throws is reported through the book's `onError` and does not stop the others.
 */
export interface DecisionListener {
  /** A ban starts to be enforced here (decided here, by another instance, or restored). */
  ban?(decision: Decision, source: DecisionSource): void;
  /** A ban stops being enforced here. */
  unban?(event: UnbanEvent): void;
  /** A dry-run jail's "would ban" was recorded (never enforced). */
  wouldBan?(decision: Decision, source: DecisionSource): void;
}

export interface SubscribeOptions {
  /**
   * First deliver every ban in force as a `ban(decision, 'restore')`, synchronously, before
   * `subscribe` returns: a listener added at any time (an action at start, after the bans were
   * restored) sees exactly what is enforced. Default false.
   */
  replay?: boolean;
}

export interface DecisionBookOptions {
  clock: Clock;
  logger?: Logger;
  /** This instance's name, for decisions a replay has to make up from table entries. */
  origin: string;
  /** A listener threw. Default: logged. */
  onError?: (error: Error) => void;
}

/** Changes applied while a reload reads the store; replayed onto the tables it builds. */
type TableChange = (table: BanTable, dryRun: BanTable) => void;

/** Expiry runs at least this often, so a clock jump is noticed. */
const MAX_TIMER_MS = 60_000;
/** Expired bans handled per turn of the event loop. */
const EXPIRE_BATCH = 10_000;

/**
 * What this instance enforces: the exact and range ban tables (and the dry-run table), their
 * expiry, the swap when everything is reloaded from the store, and the subscribers told of each
 * change. It does no I/O; the store is someone else's business ({@link StoreSync}).
 */
export class DecisionBook {
  #table: BanTable;
  #dryRun: BanTable;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #origin: string;
  readonly #onError: (error: Error) => void;
  readonly #listeners = new Set<DecisionListener>();
  readonly #journals = new Set<TableChange[]>();
  #expiryTimer: NodeJS.Timeout | undefined;
  #expiryAt = Number.POSITIVE_INFINITY;
  #closed = false;

  constructor(options: DecisionBookOptions) {
    this.#clock = options.clock;
    this.#logger = options.logger ?? silentLogger;
    this.#origin = options.origin;
    this.#onError =
      options.onError ?? ((error) => this.#logger.error({ err: error }, 'a decision listener failed'));
    this.#table = new BanTable(this.#clock);
    this.#dryRun = new BanTable(this.#clock);
  }

  /** Bans enforced now. */
  get size(): number {
    return this.#table.size;
  }

  /** Dry-run "would ban" decisions in force. */
  get dryRunSize(): number {
    return this.#dryRun.size;
  }

  /** Synchronous, no I/O: is `ip` (any textual form) covered by a ban? */
  isBanned(ip: string): boolean {
    return this.#table.has(ip);
  }

  /** Like {@link isBanned} for a parsed address; `dryRun` asks the dry-run table instead. */
  hasParsed(ip: ParsedIp, dryRun = false): boolean {
    return (dryRun ? this.#dryRun : this.#table).hasParsed(ip);
  }

  /** The ban covering `ip`, if any. */
  lookup(ip: string | ParsedIp): BanEntry | undefined {
    return this.#table.lookup(ip);
  }

  /** The entry of exactly `target` (canonical text), if any. */
  get(target: string): BanEntry | undefined {
    return this.#table.get(target);
  }

  /** Every ban enforced now. */
  entries(): IterableIterator<BanEntry> {
    return this.#table.entries();
  }

  /**
   * Enforces `decision` (or records a dry-run one) and tells the listeners. A ban never shortens a
   * longer one this instance enforces. The table answers at once. `announce: false` enforces
   * without telling the listeners yet (a ban whose length is still being worked out: the caller
   * applies the final decision, announced, right after).
   */
  apply(decision: Decision, source: DecisionSource, announce = true): void {
    if (this.#closed) return;
    const { target, jail, dryRun } = decision;
    const table = dryRun ? this.#dryRun : this.#table;
    const expiresAt = laterExpiry(table.get(target), decision.expiresAt, this.#clock.now());
    table.add(target, jail, expiresAt);
    this.#record((t, d) => (dryRun ? d : t).add(target, jail, expiresAt));
    this.#scheduleExpiry();
    if (!announce) return;
    if (dryRun) this.#emit('wouldBan', decision, source);
    else this.#emit('ban', decision, source);
  }

  /**
   * Sets the expiry of a ban already announced (the store merged it with a longer one). No event:
   * the ban was announced when it started.
   */
  extend(decision: Decision): void {
    if (decision.dryRun || this.#closed) return;
    this.#table.add(decision.target, decision.jail, decision.expiresAt);
    this.#record((t) => t.add(decision.target, decision.jail, decision.expiresAt));
    this.#scheduleExpiry();
  }

  /**
   * Stops enforcing exactly `target` (and its dry-run decision). Resolves to the entry that was
   * enforced, if any; listeners hear `unban` with `reason` only then.
   */
  remove(target: string, reason: UnbanEvent['reason']): BanEntry | undefined {
    const entry = this.#table.get(target);
    const removed = this.#table.remove(target);
    this.#dryRun.remove(target);
    this.#record((t, d) => {
      t.remove(target);
      d.remove(target);
    });
    if (!removed || entry === undefined) return undefined;
    // Its time was up but the expiry timer had not run yet: the timer will skip it now, so the
    // end is announced here (actions must revert it), as what it is.
    const ended = entry.expiresAt > this.#clock.now() ? reason : 'expired';
    this.#emit('unban', { target, jail: entry.jail, reason: ended });
    return entry;
  }

  /**
   * Adds a listener; with `replay`, it first hears every ban in force as `restore` (and every
   * dry-run decision as `wouldBan`). Returns the function that removes it.
   */
  subscribe(listener: DecisionListener, options: SubscribeOptions = {}): () => void {
    if (options.replay === true) {
      const now = this.#clock.now();
      for (const entry of this.#table.entries()) {
        if (entry.expiresAt <= now) continue;
        this.#call(listener, 'ban', decisionOfEntry(entry, 'in force', this.#origin, now), 'restore');
      }
      for (const entry of this.#dryRun.entries()) {
        if (entry.expiresAt <= now) continue;
        const decision = { ...decisionOfEntry(entry, 'in force', this.#origin, now), dryRun: true };
        this.#call(listener, 'wouldBan', decision, 'restore');
      }
    }
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Starts rebuilding the tables from scratch (a restore from the store). Bans keep being enforced
   * from the current tables until {@link Reload.commit}; changes applied meanwhile are kept.
   */
  beginReload(): Reload {
    const table = new BanTable(this.#clock);
    const dryRun = new BanTable(this.#clock);
    const journal: TableChange[] = [];
    this.#journals.add(journal);
    const restored: Decision[] = [];
    const announce = this.#listeners.size > 0;
    let open = true;
    const close = () => {
      open = false;
      this.#journals.delete(journal);
    };
    return {
      add: (decision) => {
        if (decision.dryRun) dryRun.add(decision.target, decision.jail, decision.expiresAt);
        else {
          table.add(decision.target, decision.jail, decision.expiresAt);
          if (announce && this.#table.get(decision.target) === undefined) restored.push(decision);
        }
      },
      remove: (target) => {
        table.remove(target);
        dryRun.remove(target);
      },
      abort: close,
      commit: () => {
        if (!open) return;
        close();
        for (const change of journal) change(table, dryRun);
        const previous = this.#table;
        const now = this.#clock.now();
        this.#table = table;
        this.#dryRun = dryRun;
        this.#scheduleExpiry(true);
        for (const decision of restored) {
          if (table.get(decision.target) !== undefined) this.#emit('ban', decision, 'restore');
        }
        for (const entry of previous.entries()) {
          if (table.get(entry.target) !== undefined) continue;
          // Dropped with the old table, expired or not: its end must be heard (see remove()).
          const reason = entry.expiresAt > now ? 'remote' : 'expired';
          this.#emit('unban', { target: entry.target, jail: entry.jail, reason });
        }
      },
    };
  }

  /** Ends bans whose time is up now (tests driving a manual clock call it; a timer does otherwise). */
  expireNow(): void {
    this.#expiryAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    for (;;) {
      const expired = this.#table.takeExpired(now, EXPIRE_BATCH);
      for (const entry of expired) {
        this.#logger.info(
          { event: 'unban', target: entry.target, jail: entry.jail },
          `unban ${entry.target} (expired)`,
        );
        this.#emit('unban', { target: entry.target, jail: entry.jail, reason: 'expired' });
      }
      if (expired.length < EXPIRE_BATCH) break;
    }
    // Dry-run decisions expire too: a dry-run-only guard would otherwise keep every one.
    this.#dryRun.takeExpired(now, Number.MAX_SAFE_INTEGER);
    this.#scheduleExpiry(true);
  }

  /** Stops the expiry timer and drops the listeners. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#expiryTimer);
    this.#listeners.clear();
  }

  #record(change: TableChange): void {
    for (const journal of this.#journals) journal.push(change);
  }

  #emit(kind: 'ban' | 'wouldBan', decision: Decision, source: DecisionSource): void;
  #emit(kind: 'unban', event: UnbanEvent): void;
  #emit(kind: keyof DecisionListener, value: Decision | UnbanEvent, source?: DecisionSource): void {
    for (const listener of this.#listeners) this.#call(listener, kind, value, source);
  }

  #call(
    listener: DecisionListener,
    kind: keyof DecisionListener,
    value: Decision | UnbanEvent,
    source?: DecisionSource,
  ): void {
    try {
      if (kind === 'unban') listener.unban?.(value as UnbanEvent);
      else listener[kind]?.(value as Decision, source as DecisionSource);
    } catch (error) {
      this.#onError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #scheduleExpiry(force = false): void {
    if (this.#closed) return;
    const next = Math.min(this.#table.nextExpiry(), this.#dryRun.nextExpiry());
    if (!force && next >= this.#expiryAt) return;
    clearTimeout(this.#expiryTimer);
    this.#expiryAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const delay = Math.min(Math.max(next - this.#clock.now(), 0), MAX_TIMER_MS);
    this.#expiryTimer = setTimeout(() => this.expireNow(), delay).unref();
  }
}

/** A reload in progress: fill it, then commit (swap in) or abort. */
export interface Reload {
  add(decision: Decision): void;
  remove(target: string): void;
  /** Swaps the new tables in (with the changes made meanwhile) and tells the listeners. */
  commit(): void;
  abort(): void;
}
