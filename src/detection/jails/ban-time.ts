import type { BanTimeIncrementConfig } from '../../config/types.js';
import { PERMANENT } from '../../core/duration.js';

/**
 * The length of a ban, in ms (`-1` for permanent), for a client with `previousBans` earlier bans
 * still in the history (within `dbpurgeage`; this jail only, or every jail with `overalljails`).
 *
 * - no increment, or a permanent `bantime`: `bantime`;
 * - `multipliers: [m0, m1, ...]`: `bantime * m[min(previousBans, len-1)]` (m0 applies to a first ban);
 * - otherwise fail2ban's default formula: a first ban lasts `bantime`, the n-th repeat
 *   `bantime * factor * 2^min(n, 20)`;
 * - then a random `0..rndtime` is added, and the result is capped at `maxtime`.
 *
 * Plain arithmetic: fail2ban evaluates a Python expression from its config here; we never do.
 */
export function computeBanTime(
  banTimeMs: number,
  increment: BanTimeIncrementConfig | null,
  previousBans: number,
  random: () => number = Math.random,
): number {
  if (banTimeMs === PERMANENT || increment === null) return banTimeMs;
  let ms = banTimeMs;
  if (increment.multipliers !== null) {
    const index = Math.min(previousBans, increment.multipliers.length - 1);
    ms = banTimeMs * (increment.multipliers[index] as number);
  } else if (previousBans > 0) {
    ms = banTimeMs * increment.factor * 2 ** Math.min(previousBans, 20);
  }
  if (increment.rndTimeMs > 0) ms += Math.floor(random() * increment.rndTimeMs);
  if (increment.maxTimeMs !== null && increment.maxTimeMs !== PERMANENT && ms > increment.maxTimeMs) {
    ms = increment.maxTimeMs;
  }
  return Math.round(ms);
}
