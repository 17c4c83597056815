import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Decision } from '../core/types.js';

/**
 * What happens beyond the inline deny when a ban starts or ends: a kernel firewall set entry, a
 * hosts.deny line, a command, a message to the people on call.
 *
 * Contract (the {@link ActionRunner} relies on it):
 * - **batch-first**: `apply` and `revert` take many decisions at once (a wave of 10k bans, 100k
 *   restored at start) and should cost one system call or message per batch, not per ban;
 * - **idempotent**: applying a ban already applied, or reverting one that is not there, succeeds.
 *   Every ban in force is applied again at each start (restored bans), so the action must not
 *   depend on having seen it before;
 * - a rejected promise means nothing of the batch may be assumed done: the runner retries the
 *   whole batch with backoff (and logs and counts it); it never drops it;
 * - methods are never called concurrently on one action: the runner waits for each to settle.
 */
export interface Action {
  /** Unique among the actions of a guard: `nftables`, `email:ops-mail`. */
  readonly name: string;
  /** The kind (`nftables`, `hostsdeny`, `command`, `email`, ...). */
  readonly kind: string;
  /**
   * `all`: every ban this instance enforces (decided here, by another instance, restored) — a
   * firewall. `local`: only bans decided on this instance — a notification, so ten instances do
   * not send ten mails.
   */
  readonly scope: 'all' | 'local';
  /** Creates what the action needs (table, set, chain, connection). Rejects when it cannot. */
  start(): Promise<void>;
  /** Enforces or announces these bans. */
  apply(decisions: readonly Decision[]): Promise<void>;
  /**
   * Lifts these bans (expired or unbanned). Each decision is the ban as it was applied when the
   * runner still has it, else one rebuilt from the unban (`reason` says why it ended).
   */
  revert(decisions: readonly Decision[]): Promise<void>;
  /**
   * Optional: replaces everything the action holds with exactly these bans — every ban in force,
   * replayed at start and after `check()` re-created the structures — so entries left by an earlier
   * run whose ban was lifted meanwhile go. Without it the runner calls `apply`.
   */
  restore?(decisions: readonly Decision[]): Promise<void>;
  /** Removes every ban the action applied (the structures it created stay). */
  flush(): Promise<void>;
  /**
   * Checks that what `start` created is still there (an admin may have flushed the ruleset) and
   * re-creates it; resolves `false` when it had to, so the runner applies every ban again.
   */
  check?(): Promise<boolean>;
  /** Releases what the action holds (connections, timers). Idempotent. */
  close(): Promise<void>;
}

/** What an action factory is given. */
export interface ActionContext {
  logger: Logger;
  clock: Clock;
  /** The config file's directory, for relative paths; `null` for a config object. */
  baseDir: string | null;
}

/** Builds one action from its configuration entry (`{ nftables: { ports: [22] } }`). */
export type ActionFactory = (
  name: string,
  options: Readonly<Record<string, unknown>>,
  context: ActionContext,
) => Action;
