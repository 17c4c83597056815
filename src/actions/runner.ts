import type { Clock } from '../core/clock.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { plural } from '../core/plural.js';
import type { Decision, DecisionSource, UnbanEvent } from '../core/types.js';
import type { DecisionListener, SubscribeOptions } from '../decisions/decision-book.js';
import type { Action } from './action.js';

/** Where the runner hears of decisions: the guard's (or the decision book's) `subscribe`. */
export interface DecisionFeed {
  subscribe(listener: DecisionListener, options?: SubscribeOptions): () => void;
}

export interface ActionRunnerOptions {
  clock: Clock;
  logger?: Logger;
  /** Decisions handed to one `apply`/`revert` call at most. Default 10,000. */
  maxBatch?: number;
  /** First wait after a failed call, ms; doubles up to `maxBackoffMs`. Default 1000. */
  backoffMs?: number;
  /** Default 60,000. */
  maxBackoffMs?: number;
  /** How often `check()` runs on actions that have it, ms; 0: never. Default 30,000. */
  checkIntervalMs?: number;
}

/** Counters of one action. */
export interface ActionStats {
  /** Decisions applied (a retried batch counts once, when it succeeds). */
  applied: number;
  reverted: number;
  /** Calls that rejected. */
  failures: number;
  /** Calls made again after a failure. */
  retries: number;
  /** Decisions waiting (queued or in a batch being retried). */
  pending: number;
  /** The last failure's message, until a call succeeds. */
  lastError: string | null;
  /** Targets the action refused to write (too wide, not canonical), when it counts them. */
  refused?: number;
  /** Bans a full kernel set could not take (`ipset` at `maxelem`), when it counts them. */
  overflow?: number;
}

type Op = { kind: 'apply' | 'revert'; decision: Decision };

/**
 * An action and the bans it is for: `accepts(jail)` says whether a ban of that jail is applied
 * (a jail that lists the action; see `routeActions`). The end of a ban it applied is always
 * reverted, whichever jail the end names. Without `accepts`, every ban.
 */
export interface RoutedAction {
  action: Action;
  accepts?: (jail: string) => boolean;
}

/** One action's queue, worker and counters. */
class Lane {
  readonly action: Action;
  readonly stats: ActionStats = {
    applied: 0,
    reverted: 0,
    failures: 0,
    retries: 0,
    pending: 0,
    lastError: null,
  };
  queue: Op[] = [];
  /** Targets applied by a `local` action, so that only their ends are reverted. */
  readonly appliedHere = new Set<string>();
  /** Which jails' bans this lane applies; `undefined`: all. */
  readonly accepts: ((jail: string) => boolean) | undefined;
  /** The next batch of applies replaces what the action holds (`restore`): at start, after a re-create. */
  restoring = false;
  running = false;
  timer: NodeJS.Timeout | undefined;
  backoffMs = 0;
  idleWaiters: (() => void)[] = [];

  constructor(entry: Action | RoutedAction) {
    if ('action' in entry) {
      this.action = entry.action;
      this.accepts = entry.accepts;
    } else {
      this.action = entry;
      this.accepts = undefined;
    }
  }

  /** Tracks targets (to revert only what it applied) when local or filtered by jail. */
  get tracks(): boolean {
    return this.action.scope === 'local' || this.accepts !== undefined;
  }
}

/**
 * Runs the configured actions: it subscribes to the decisions **with replay**, so every ban in
 * force at start (restored, or learned before the runner existed) is applied in one batch, then
 * every new ban and every end. Per action, changes are queued and handed over in batches, one
 * call at a time; a failed call is retried with backoff, logged and counted, never dropped.
 */
export class ActionRunner {
  readonly #lanes: Lane[];
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #maxBatch: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #checkIntervalMs: number;
  #feed: DecisionFeed | undefined;
  #unsubscribe: (() => void) | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #checking = false;
  #closing: Promise<void> | undefined;

  constructor(actions: readonly (Action | RoutedAction)[], options: ActionRunnerOptions) {
    this.#lanes = actions.map((entry) => new Lane(entry));
    this.#clock = options.clock;
    this.#logger = options.logger ?? silentLogger;
    this.#maxBatch = options.maxBatch ?? 10_000;
    this.#backoffMs = options.backoffMs ?? 1_000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.#checkIntervalMs = options.checkIntervalMs ?? 30_000;
  }

  /**
   * Starts every action (rejects, having closed the started ones, when one cannot start), then
   * subscribes to `feed` with replay.
   */
  async start(feed: DecisionFeed): Promise<void> {
    const started: Action[] = [];
    try {
      for (const lane of this.#lanes) {
        await lane.action.start();
        started.push(lane.action);
      }
    } catch (error) {
      await Promise.allSettled(started.map((action) => action.close()));
      throw error;
    }
    this.#feed = feed;
    // The replay is synchronous: right after subscribe, each queue holds exactly the bans in
    // force, which an action with `restore` takes in one call (stale entries of a previous run go).
    for (const lane of this.#lanes) lane.restoring = lane.action.restore !== undefined;
    this.#unsubscribe = feed.subscribe(this.#listener, { replay: true });
    for (const lane of this.#lanes) if (lane.restoring) this.#schedule(lane);
    if (this.#checkIntervalMs > 0 && this.#lanes.some((lane) => lane.action.check !== undefined)) {
      this.#checkTimer = setInterval(() => {
        // A check that outlasts the interval is not started twice.
        if (this.#checking) return;
        this.#checking = true;
        void this.#check().finally(() => {
          this.#checking = false;
        });
      }, this.#checkIntervalMs).unref();
    }
  }

  /** Per action name. */
  stats(): Record<string, ActionStats> {
    return Object.fromEntries(
      this.#lanes.map((lane) => {
        const stats: ActionStats = { ...lane.stats };
        // The firewall kinds count what they would not write on the action object itself.
        const own = lane.action as Action & { refused?: unknown; overflow?: unknown };
        if (typeof own.refused === 'number') stats.refused = own.refused;
        if (typeof own.overflow === 'number') stats.overflow = own.overflow;
        return [lane.action.name, stats];
      }),
    );
  }

  /** Resolves when every queue is empty and no call is in flight (a settle point for tests). */
  idle(): Promise<void> {
    return Promise.all(
      this.#lanes.map((lane) =>
        lane.queue.length === 0 && !lane.running
          ? undefined
          : new Promise<void>((resolve) => lane.idleWaiters.push(resolve)),
      ),
    ).then(() => {});
  }

  /**
   * Stops listening, waits for the calls in flight, hands over what is queued once more (without
   * retrying), and closes every action. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#unsubscribe?.();
      clearInterval(this.#checkTimer);
      for (const lane of this.#lanes) clearTimeout(lane.timer);
      await Promise.allSettled(
        this.#lanes.map(async (lane) => {
          while (lane.running) await new Promise((resolve) => setTimeout(resolve, 5));
          await this.#drain(lane, false);
          await lane.action.close();
        }),
      );
    })();
    return this.#closing;
  }

  readonly #listener: DecisionListener = {
    ban: (decision: Decision, source: DecisionSource) => {
      for (const lane of this.#lanes) {
        if (lane.action.scope === 'local' && source !== 'local') continue;
        if (lane.accepts !== undefined && !lane.accepts(decision.jail)) continue;
        if (lane.tracks) lane.appliedHere.add(decision.target);
        this.#enqueue(lane, { kind: 'apply', decision });
      }
    },
    unban: (event: UnbanEvent) => {
      const decision: Decision = {
        target: event.target,
        jail: event.jail,
        reason: event.reason,
        startedAt: this.#clock.now(),
        expiresAt: this.#clock.now(),
        banCount: 1,
        dryRun: false,
        origin: '',
      };
      for (const lane of this.#lanes) {
        if (lane.tracks && !lane.appliedHere.delete(event.target)) continue;
        this.#enqueue(lane, { kind: 'revert', decision });
      }
    },
  };

  #enqueue(lane: Lane, op: Op): void {
    if (this.#closing !== undefined) return;
    lane.queue.push(op);
    lane.stats.pending++;
    this.#schedule(lane);
  }

  #schedule(lane: Lane): void {
    // Batches form from everything queued in the same turn (a restore, a wave of bans).
    if (!lane.running && lane.timer === undefined) {
      lane.timer = setTimeout(() => {
        lane.timer = undefined;
        void this.#drain(lane, true);
      }, 0);
    }
  }

  /** Hands the queue over in batches of consecutive ops of one kind until it is empty. */
  async #drain(lane: Lane, retry: boolean): Promise<void> {
    if (lane.running) return;
    lane.running = true;
    try {
      while (lane.queue.length > 0 || lane.restoring) {
        const restore = lane.restoring;
        const kind = restore ? 'apply' : (lane.queue[0] as Op).kind;
        // A restore takes every leading apply at once: replacing in pieces would drop bans.
        const limit = restore ? lane.queue.length : this.#maxBatch;
        let end = 0;
        while (end < lane.queue.length && end < limit && (lane.queue[end] as Op).kind === kind) end++;
        const batch = lane.queue.slice(0, end).map((op) => op.decision);
        try {
          if (restore && lane.action.restore !== undefined) await lane.action.restore(batch);
          else if (kind === 'apply') await lane.action.apply(batch);
          else await lane.action.revert(batch);
          lane.restoring = false;
        } catch (error) {
          lane.stats.failures++;
          lane.stats.lastError = error instanceof Error ? error.message : String(error);
          lane.backoffMs = Math.min(
            lane.backoffMs === 0 ? this.#backoffMs : lane.backoffMs * 2,
            this.#maxBackoffMs,
          );
          this.#logger.error(
            {
              event: 'action-failed',
              action: lane.action.name,
              op: kind,
              decisions: batch.length,
              err: error,
            },
            `action ${lane.action.name}: ${kind} of ${plural(batch.length, 'decision')} failed; retrying in ${lane.backoffMs} ms`,
          );
          if (retry && this.#closing === undefined) {
            lane.timer = setTimeout(() => {
              lane.timer = undefined;
              lane.stats.retries++;
              void this.#drain(lane, true);
            }, lane.backoffMs).unref();
          }
          return;
        }
        lane.queue.splice(0, end);
        lane.stats.pending -= end;
        if (kind === 'apply') lane.stats.applied += end;
        else lane.stats.reverted += end;
        lane.backoffMs = 0;
        lane.stats.lastError = null;
      }
    } finally {
      lane.running = false;
      if (lane.queue.length === 0) {
        const waiters = lane.idleWaiters;
        lane.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }

  /** Re-creates what an admin removed and applies every ban again where an action says so. */
  async #check(): Promise<void> {
    for (const lane of this.#lanes) {
      if (lane.action.check === undefined || lane.running) continue;
      // The lane is held while it checks: an action is never called concurrently (action.ts).
      lane.running = true;
      let intact: boolean;
      try {
        intact = await lane.action.check();
      } catch (error) {
        lane.stats.failures++;
        lane.stats.lastError = error instanceof Error ? error.message : String(error);
        intact = true;
      } finally {
        lane.running = false;
      }
      if (intact) {
        // What was queued while the lane checked goes out now.
        if (lane.queue.length > 0) this.#schedule(lane);
        continue;
      }
      try {
        this.#logger.warn(
          { event: 'action-recreated', action: lane.action.name },
          `action ${lane.action.name}: its rules were gone; re-created, re-applying every ban`,
        );
        // A fresh replay of what is in force, into this lane only.
        lane.restoring = lane.action.restore !== undefined && lane.queue.length === 0;
        const once = this.#feed?.subscribe(
          {
            ban: (decision, source) => {
              if (lane.action.scope !== 'all' || source !== 'restore') return;
              if (lane.accepts !== undefined && !lane.accepts(decision.jail)) return;
              if (lane.tracks) lane.appliedHere.add(decision.target);
              this.#enqueue(lane, { kind: 'apply', decision });
            },
          },
          { replay: true },
        );
        once?.();
        if (lane.restoring) this.#schedule(lane);
      } catch (error) {
        lane.stats.failures++;
        lane.stats.lastError = error instanceof Error ? error.message : String(error);
      }
    }
  }
}
