import type { FailureWindows } from '../../core/failure-windows.js';
import type { ParsedIp } from '../../core/ip.js';
import type { FailureInput, FailureResult } from '../../core/types.js';
import type { Jail } from './jail.js';

/** Where a jail's failures are counted across instances: the store, or the fallback during an outage. */
export interface FailureCounter {
  /** `null`: not counted (the store is down and `on_store_error` is `stop`). */
  addFailure(input: FailureInput): Promise<FailureResult | null>;
}

/** What counting one failure on this instance concluded, synchronously. */
export type LocalCount =
  | { kind: 'ignored' }
  /** Already banned (or would-banned, in a dry-run jail): failures are not counted. */
  | { kind: 'already-banned' }
  /** This instance's own failures reached `maxretry` within `findtime`: ban `key` now. */
  | { kind: 'reached'; key: string; timeMs: number; weight: number; failures: number }
  /** Counted here; the shared count (every instance's failures) is asked next. */
  | { kind: 'counted'; key: string; timeMs: number; weight: number; failures: number };

/** What the shared count concluded. */
export type SharedCount =
  | { kind: 'not-counted' }
  | { kind: 'counted'; failures: number }
  /** Every instance's failures together reached `maxretry`: the jail must decide a ban. */
  | { kind: 'reached'; failures: number };

/**
 * One failure of `ip` in `jail`, in fail2ban's order — `ignoreip`/`ignoreself`, a ban in force
 * (nothing to count), the client key (the address, or its IPv6 /prefix network), the `findtime`
 * window, `maxretry` — counted **synchronously** in this instance's own windows (`local`), so a
 * ban reached here is in the table before the caller's next request is admitted, whatever the
 * store's latency. The caller then adds it to the shared count ({@link countShared}) unless it
 * was reached here.
 */
export function countHere(
  jail: Jail,
  ip: ParsedIp,
  timeMs: number,
  weight: number,
  local: FailureWindows,
  banned: (ip: ParsedIp, dryRun: boolean) => boolean,
): LocalCount {
  if (jail.isIgnored(ip)) return { kind: 'ignored' };
  const config = jail.config;
  if (banned(ip, config.dryRun)) return { kind: 'already-banned' };
  const key = jail.keyOf(ip);
  const failures = local.count(config.name, key, timeMs, weight, config.findTimeMs, config.maxRetry);
  return { kind: failures >= config.maxRetry ? 'reached' : 'counted', key, timeMs, weight, failures };
}

/** The failure counted here, as the shared count ({@link countShared}) takes it. */
export function failureInput(
  jail: Jail,
  counted: { readonly key: string; readonly timeMs: number; readonly weight: number },
): FailureInput {
  const config = jail.config;
  return {
    jail: config.name,
    key: counted.key,
    timeMs: counted.timeMs,
    weight: counted.weight,
    findTimeMs: config.findTimeMs,
    maxRetry: config.maxRetry,
  };
}

/** Adds a failure counted here to the count every instance shares (the store). */
export async function countShared(input: FailureInput, counter: FailureCounter): Promise<SharedCount> {
  const counted = await counter.addFailure(input);
  if (counted === null) return { kind: 'not-counted' };
  return { kind: counted.reached ? 'reached' : 'counted', failures: counted.count };
}
