import type { EventEmitter } from 'node:events';
import type { Decision, FailureInput, FailureResult } from '../core/types.js';

export type { FailureInput, FailureResult } from '../core/types.js';

/**
 * The contract every store (SQLite, Redis, memory) keeps. The store is the source of truth for
 * decisions; each instance mirrors it into its local ban table. Methods reject with a
 * `PortcullisError` (`PC_ERR_STORE_UNAVAILABLE`) when the backend cannot be reached; they never
 * retry on their own; the guard applies the `on_store_error` policy.
 */
export interface Store extends EventEmitter<StoreEventMap> {
  readonly kind: 'memory' | 'sqlite' | 'redis';
  /** True when other processes may write to the same store (Redis), so messages matter. */
  readonly shared: boolean;

  /** Connects / opens the file. Resolves when ready; rejects with a clear error otherwise. */
  open(): Promise<void>;

  /**
   * Adds `weight` failures at `timeMs` for `key` in `jail`, drops failures older than
   * `timeMs - findTimeMs`, and reports the sum still inside the window. When the sum reaches
   * `maxRetry` the counter is cleared in the same atomic step and `reached` is true, so exactly one
   * caller (one instance, with Redis) wins the right to ban.
   */
  addFailure(input: FailureInput): Promise<FailureResult>;

  /** Forgets the failures counted for `key` in `jail`. */
  clearFailures(jail: string, key: string): Promise<void>;

  /**
   * Stores a decision, replacing any decision for the same target (the later expiry wins, a
   * permanent ban is never shortened), and announces it to other instances. Non-dry-run jail
   * decisions are also added to the ban history used by `bantime_increment`.
   * Resolves to the decision as stored (after merging).
   */
  putDecision(decision: Decision): Promise<Decision>;

  /** Removes the decision for `target` and announces it. Resolves to the removed one, if any. */
  deleteDecision(target: string): Promise<Decision | undefined>;

  /**
   * `putDecision` for many decisions at once, with the same merge, history and announcement
   * rules, as if they were put one after the other in input order (a target given twice is merged
   * with itself). For writing back a queue (after an outage, or after `'lost'`): Redis takes a
   * few round trips per thousand decisions instead of one each, SQLite one transaction, and other
   * instances receive a few batched messages (still emitted to them as one `ban` message each).
   *
   * Resolves to the decisions as stored, in input order. When it rejects, some of them may already
   * be stored (SQLite: none; Redis: whole chunks of 500) and announced; putting them again is
   * harmless for the decision itself but records their ban history a second time.
   */
  putDecisions(decisions: readonly Decision[]): Promise<Decision[]>;

  /**
   * `deleteDecision` for many targets at once, in input order, announced in batches. Resolves to
   * the removed decisions in input order (`undefined` where there was none, or where the same
   * target was removed earlier in the batch). When it rejects, some may already be removed
   * (SQLite: none; Redis: whole chunks of 500); deleting them again is harmless.
   */
  deleteDecisions(targets: readonly string[]): Promise<(Decision | undefined)[]>;

  /**
   * Streams every decision active at `nowMs` to `onBatch` in batches (restoring 1M bans must not
   * build one giant array). Resolves to the number delivered.
   */
  loadDecisions(nowMs: number, onBatch: (batch: Decision[]) => void): Promise<number>;

  /** The number of bans of `target` recorded since `sinceMs`, in `jail` or (jail `null`) in all. */
  countBans(target: string, jail: string | null, sinceMs: number): Promise<number>;

  /** Deletes expired decisions and ban history older than `historyBeforeMs`. */
  purge(nowMs: number, historyBeforeMs: number): Promise<void>;

  /** Reads a saved log position (log jails). */
  getPosition(id: string): Promise<LogPosition | undefined>;
  /** Saves a log position. */
  setPosition(id: string, position: LogPosition): Promise<void>;

  /** Idempotent; resolves when every handle is released. */
  close(): Promise<void>;
}

export interface LogPosition {
  /** Byte offset of the next unread byte. */
  offset: number;
  /** Inode of the file when the offset was saved. */
  inode: number;
  /** Hash of the file's first line, to spot a file replaced under the same inode. */
  headHash: string;
}

/**
 * What a store tells its user another instance decided (the `message` event). Local writes are not
 * echoed back to the writer. A batch written by `putDecisions` / `deleteDecisions` travels as one
 * {@link StoreWireMessage} per chunk but is still emitted as one `ban` / `unban` per target, so a
 * listener handles a single shape.
 */
export type StoreMessage = { type: 'ban'; decision: Decision } | { type: 'unban'; target: string };

/**
 * What travels between instances (the Redis channel `<prefix>events`, JSON), `from` being the
 * sender's instance id. `bans` / `unbans` carry a whole chunk of a batch write. A receiver ignores
 * (and logs) a message it cannot read, and an entry of a batch that is not a decision.
 * An instance older than `bans` / `unbans` ignores them too: upgrade every instance together, or
 * expect those bans to reach old instances only at their next reload.
 */
export type StoreWireMessage = { from: string } & (
  | StoreMessage
  | { type: 'bans'; decisions: Decision[] }
  | { type: 'unbans'; targets: string[] }
);

export interface StoreEventMap {
  /** Another instance decided something. */
  message: [StoreMessage];
  /** The backend is (again) reachable: the guard reloads every decision. */
  up: [];
  /**
   * The backend came back without the data this instance saw (restarted empty, flushed, failed
   * over to an empty replica): write back what you enforce (`putDecisions`). Always followed by
   * `up` (the usual reload), and emitted only by stores that can tell: Redis (its epoch key went
   * missing or changed, noticed on reconnect or by the heartbeat) and SQLite (a corrupt file was
   * moved aside while running); the memory store never.
   */
  lost: [];
  /** The backend became unreachable. */
  down: [Error];
}
