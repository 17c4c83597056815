import type { ReportOptions, ReportResult, UnbanEvent } from '../core/types.js';
import type { DecisionListener } from '../decisions/decision-book.js';
import { LogThrottle } from '../sources/log/log-throttle.js';

/** The slice of pino the daemon's activity lines need. */
export interface ActivityLogger {
  info(fields: object, message: string): void;
  isLevelEnabled(level: string): boolean;
}

/** What the activity log listens to (the guard). */
export interface ActivitySource {
  readonly jails: ReadonlyMap<string, { readonly config: { readonly maxRetry: number } }>;
  onReport(listener: (ip: string, options: ReportOptions, result: ReportResult) => void): () => void;
  subscribe(listener: DecisionListener): () => void;
}

export interface ActivityLogOptions {
  /** Lines per jail per window before the rest are only counted. Default 20. */
  limit?: number;
  /** Window of `limit`, ms. Default 1000. */
  intervalMs?: number;
  now?: () => number;
}

/**
 * The daemon's info lines per counted failure (`sshd: found 203.0.113.9 (2/5)`) and per unban
 * (`sshd: unban 203.0.113.9 (expired)`), as fail2ban writes them; ban lines (which tell the last
 * failure too) come from the guard itself. Throttled per jail: under a flood at most `limit` lines a window get through, the next
 * one says how many were left out. Returns the function that detaches it.
 */
export function attachActivityLog(
  source: ActivitySource,
  logger: ActivityLogger,
  options: ActivityLogOptions = {},
): () => void {
  const throttles = new Map<string, LogThrottle>();
  const take = (jail: string) => {
    let throttle = throttles.get(jail);
    if (throttle === undefined) {
      throttle = new LogThrottle(options.intervalMs ?? 1000, options.limit ?? 20, options.now ?? Date.now);
      throttles.set(jail, throttle);
    }
    return throttle.take();
  };
  const suffix = (suppressed: number) =>
    suppressed === 0
      ? ''
      : ` [${suppressed} more ${suppressed === 1 ? 'line' : 'lines'} of this jail not logged]`;

  const offReport = source.onReport((ip, report, result) => {
    // The failure that bans is told by the ban line (`... (5 failures within 10m)`), which the
    // guard writes before this result settles.
    if (result.outcome !== 'counted') return;
    if (!logger.isLevelEnabled('info')) return;
    const { allowed, suppressed } = take(report.jail);
    if (!allowed) return;
    const maxretry = source.jails.get(report.jail)?.config.maxRetry;
    const failures = result.failures ?? 0;
    logger.info(
      {
        event: 'found',
        jail: report.jail,
        ip,
        failures,
        maxretry,
        ...(suppressed > 0 ? { suppressed } : {}),
      },
      `${report.jail}: found ${ip} (${failures}/${maxretry ?? '?'})${suffix(suppressed)}`,
    );
  });
  const offUnban = source.subscribe({
    unban: (event: UnbanEvent) => {
      if (!logger.isLevelEnabled('info')) return;
      const { allowed, suppressed } = take(event.jail);
      if (!allowed) return;
      logger.info(
        {
          event: 'unban',
          target: event.target,
          jail: event.jail,
          reason: event.reason,
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        `${event.jail}: unban ${event.target} (${event.reason})${suffix(suppressed)}`,
      );
    },
  });
  return () => {
    offReport();
    offUnban();
  };
}
