import type { Decision, DecisionSource, ReportResult, UnbanEvent } from '../core/types.js';

/** fail2ban's four numbers for one jail (this instance's view). */
export interface JailCounts {
  /** Clients with a failure inside the jail's findtime now, not banned since. */
  currentlyFailed: number;
  /** Failures counted since start. */
  totalFailed: number;
  /** Bans of this jail enforced now. */
  currentlyBanned: number;
  /** Bans of this jail since start (decided here or received from another instance; not restored ones). */
  totalBanned: number;
}

interface PerJail {
  totalFailed: number;
  totalBanned: number;
  currentlyBanned: number;
}

/**
 * Per-jail counters for `portcullis status` and the admin API: a failure costs one Map lookup and
 * an increment. Fed from the guard's report results ({@link JailCounters.report}) and its
 * ban/unban events ({@link JailCounters.ban}, {@link JailCounters.unban}). "Currently failed" is
 * not kept here: the guard's own failure windows know it ({@link JailCounters.counts} takes it).
 */
export class JailCounters {
  readonly #jails = new Map<string, PerJail>();
  /** Target → jail of every ban enforced now (a ban replaced by another jail's moves over). */
  readonly #banned = new Map<string, string>();

  /** One report's result: a counted failure (or the one that banned). */
  report(jail: string, result: ReportResult): void {
    const outcome = result.outcome;
    if (outcome === 'counted' || outcome === 'banned' || outcome === 'would-ban')
      this.#of(jail).totalFailed++;
  }

  /** A ban starts to be enforced here. */
  ban(decision: Decision, source: DecisionSource): void {
    if (decision.dryRun) return;
    const counts = this.#of(decision.jail);
    const previous = this.#banned.get(decision.target);
    if (source !== 'restore' && previous === undefined) counts.totalBanned++;
    if (previous === decision.jail) return;
    if (previous !== undefined) this.#of(previous).currentlyBanned--;
    counts.currentlyBanned++;
    this.#banned.set(decision.target, decision.jail);
  }

  /** A ban stops being enforced here. */
  unban(event: UnbanEvent): void {
    const jail = this.#banned.get(event.target);
    if (jail === undefined) return;
    this.#banned.delete(event.target);
    this.#of(jail).currentlyBanned--;
  }

  /** The four numbers of `jail`; `currentlyFailed` comes from the guard's failure windows. */
  counts(jail: string, currentlyFailed: number): JailCounts {
    const counts = this.#jails.get(jail);
    return {
      currentlyFailed,
      totalFailed: counts?.totalFailed ?? 0,
      currentlyBanned: counts?.currentlyBanned ?? 0,
      totalBanned: counts?.totalBanned ?? 0,
    };
  }

  #of(jail: string): PerJail {
    let counts = this.#jails.get(jail);
    if (counts === undefined) {
      counts = { totalFailed: 0, totalBanned: 0, currentlyBanned: 0 };
      this.#jails.set(jail, counts);
    }
    return counts;
  }
}
