import type { ParsedIp } from '../../core/ip.js';
import type { FailureInput, FailureResult } from '../../core/types.js';
import type { Jail } from './jail.js';

/** Where a jail's failures are counted: the store, or the local fallback during an outage. */
export interface FailureCounter {
  /** `null`: not counted (the store is down and `on_store_error` is `stop`). */
  addFailure(input: FailureInput): Promise<FailureResult | null>;
}

/** What counting one failure concluded. */
export type CountResult =
  | { kind: 'ignored' }
  /** Already banned (or would-banned, in a dry-run jail): failures are not counted. */
  | { kind: 'already-banned' }
  | { kind: 'not-counted' }
  | { kind: 'counted'; key: string; failures: number }
  /** `maxretry` reached within `findtime`: the jail must decide a ban of `key`. */
  | { kind: 'reached'; key: string; failures: number };

/**
 * One failure of `ip` in `jail`, in fail2ban's order: `ignoreip`/`ignoreself`, a ban in force
 * (`banned`: nothing to count), then the client
 * key (the address, or its IPv6 /prefix network), then the `findtime` window, then `maxretry`.
 */
export async function countFailure(
  jail: Jail,
  ip: ParsedIp,
  timeMs: number,
  weight: number,
  counter: FailureCounter,
  banned: (ip: ParsedIp, dryRun: boolean) => boolean,
): Promise<CountResult> {
  if (jail.isIgnored(ip)) return { kind: 'ignored' };
  if (banned(ip, jail.config.dryRun)) return { kind: 'already-banned' };
  const key = jail.keyOf(ip);
  const config = jail.config;
  const counted = await counter.addFailure({
    jail: config.name,
    key,
    timeMs,
    weight,
    findTimeMs: config.findTimeMs,
    maxRetry: config.maxRetry,
  });
  if (counted === null) return { kind: 'not-counted' };
  return { kind: counted.reached ? 'reached' : 'counted', key, failures: counted.count };
}
