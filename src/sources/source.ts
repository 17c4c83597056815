import type { PortcullisConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { BanEntry, ReportOptions, ReportResult } from '../core/types.js';
import type { Jail } from '../detection/jails/jail.js';
import type { LogPosition } from '../stores/store.js';

/**
 * The ports through which sources and surfaces see the engine. They never import the Guard: a
 * `Guard` implements every one of them, and a test can hand in a small double.
 */

/** "Is this client banned?": synchronous, no I/O. */
export interface BanCheck {
  /** Any textual address form; garbage is "not banned". */
  isBanned(ip: string): boolean;
  /** The ban covering `ip` (for `Retry-After` and logs), if any. */
  lookup(ip: string): BanEntry | undefined;
  /** The time every decision uses. */
  readonly clock: Clock;
}

/** Where failures go. */
export interface FailureSink {
  /**
   * Counts one failure of `ip` in `options.jail`. Never rejects for a bad address (the outcome
   * says `invalid-ip`); rejects for an unknown jail (`PC_ERR_UNKNOWN_JAIL`) or after close
   * (`PC_ERR_CLOSED`).
   */
  report(ip: string, options: ReportOptions): Promise<ReportResult>;
  /**
   * Optional fast path of `report()`: the result itself when it is known at once, a promise only
   * when there is more to wait for; throws where `report()` rejects. A `Guard` has it.
   */
  reportEager?(ip: string, options: ReportOptions): ReportResult | Promise<ReportResult>;
}

/** The configuration and jails in force. Both are replaced (new objects) by a reload. */
export interface JailRegistry {
  readonly config: PortcullisConfig;
  readonly jails: ReadonlyMap<string, Jail>;
}

/** Saved read positions (log sources). */
export interface PositionStore {
  getPosition(id: string): Promise<LogPosition | undefined>;
  setPosition(id: string, position: LogPosition): Promise<void>;
}

/** Everything a source may use of the engine. */
export interface SourceContext extends BanCheck, FailureSink, JailRegistry {
  readonly logger: Logger;
  readonly positions: PositionStore;
  /** Something unexpected failed in the background (never thrown into the caller). */
  reportError(error: Error): void;
}

/** A source's counters (lines read, connections, events, errors, ...): a plain JSON-able object. */
export type SourceStats = object;

/**
 * A source of events: log files and commands, the HTTP proxy, TCP listeners, the packet watcher.
 *
 * Contract:
 * - `start()` resolves when the source is running (listening, following); it rejects, having
 *   released everything, when it cannot start (a port in use, a bad path). After it resolves the
 *   source never throws: problems are logged, counted in `stats()` and retried by the source
 *   where retrying makes sense. The caller supervises (starts, reloads, stops); a source never
 *   restarts itself wholesale.
 * - `close()` is idempotent; it stops taking input, drains the reports already made (so the last
 *   failures reach the store) and resolves when every handle is released.
 */
export interface Source {
  /** What it is (`log`, `proxy`, `tcp`, `packets`). */
  readonly kind: string;
  /** Unique among running sources: `log:sshd`, `proxy`, `tcp:ssh`. */
  readonly name: string;
  start(): Promise<void>;
  close(): Promise<void>;
  stats(): SourceStats;
  /**
   * Adopts a reloaded configuration in place when it can; resolves `false` when the caller must
   * close this source and start a new one. Optional: without it, a reload always restarts.
   */
  reload?(): Promise<boolean>;
}
