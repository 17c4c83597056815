import type { JailConfig } from '../config/types.js';
import { formatDuration, PERMANENT } from '../core/duration.js';
import type { BanEntry, Decision, EventFields } from '../core/types.js';
import { computeBanTime } from '../detection/jails/ban-time.js';

/** What a jail knows when a client reaches its threshold. */
export interface BanInput {
  jail: JailConfig;
  /** The client key that reached `maxretry`: an address or the IPv6 /prefix network. */
  key: string;
  /** Failures inside the window, this one included. */
  failures: number;
  /** Earlier bans of `key` in the history (this jail, or all with `overalljails`). */
  previousBans: number;
  nowMs: number;
  /** For `rndtime`: a number in [0, 1). */
  random: () => number;
  /** The instance that decides (`hostname:pid:xxxx`). */
  origin: string;
  fields?: EventFields | undefined;
}

/**
 * The decision a jail makes when `key` reaches `maxretry`: pure, no I/O. Its length follows
 * `bantime` and `bantime_increment` for the `previousBans` found in the history.
 */
export function decideBan(input: BanInput): Decision {
  const { jail, key, failures, previousBans, nowMs } = input;
  const banTimeMs = computeBanTime(jail.banTimeMs, jail.banTimeIncrement, previousBans, input.random);
  const user = input.fields?.user;
  const detail = user === undefined ? '' : ` (user ${String(user)})`;
  return {
    target: key,
    jail: jail.name,
    reason: `${failures} ${failures === 1 ? 'failure' : 'failures'} within ${formatDuration(jail.findTimeMs)}${detail}`,
    startedAt: nowMs,
    expiresAt: banTimeMs === PERMANENT ? null : nowMs + banTimeMs,
    banCount: previousBans + 1,
    dryRun: jail.dryRun,
    origin: input.origin,
  };
}

/** A ban made by hand (CLI, API, `guard.ban()`). */
export interface ManualBanInput {
  /** Canonical address or network text. */
  target: string;
  jail: string;
  /** ms, or `-1` (PERMANENT). */
  durationMs: number;
  reason: string;
  nowMs: number;
  origin: string;
}

/** The decision for a ban made by hand: pure, no I/O. */
export function manualDecision(input: ManualBanInput): Decision {
  return {
    target: input.target,
    jail: input.jail,
    reason: input.reason,
    startedAt: input.nowMs,
    expiresAt: input.durationMs === PERMANENT ? null : input.nowMs + input.durationMs,
    banCount: 1,
    dryRun: false,
    origin: input.origin,
  };
}

/**
 * A decision standing for a ban the local table enforces when the full decision is not at hand
 * (a store that lost its data, a subscriber replay, a listing while the store is down).
 */
export function decisionOfEntry(entry: BanEntry, reason: string, origin: string, nowMs: number): Decision {
  return {
    target: entry.target,
    jail: entry.jail,
    reason,
    startedAt: nowMs,
    expiresAt: Number.isFinite(entry.expiresAt) ? entry.expiresAt : null,
    banCount: 1,
    dryRun: false,
    origin,
  };
}

/**
 * The later of an entry's expiry (while it is still running) and `expiresAt` (`null`: permanent):
 * a ban never shortens a longer one already in force.
 */
export function laterExpiry(
  current: BanEntry | undefined,
  expiresAt: number | null,
  nowMs: number,
): number | null {
  if (current === undefined || current.expiresAt <= nowMs) return expiresAt;
  if (expiresAt === null || current.expiresAt === Number.POSITIVE_INFINITY) return null;
  return Math.max(current.expiresAt, expiresAt);
}
