import type { Clock } from '../../core/clock.js';
import { FailureWindows } from '../../core/failure-windows.js';
import { clientKey, parseIp } from '../../core/ip.js';

/** `admin.auth_failures`, resolved. */
export interface AuthFailureSettings {
  readonly maxRetry: number;
  readonly findTimeMs: number;
  readonly banTimeMs: number;
}

/** What {@link AuthFailures.fail} concluded about the client that sent a wrong token. */
export interface AuthFailureResult {
  /** Wrong tokens inside findtime, this one included. */
  failures: number;
  /** True when this one reached maxretry: the client is refused from now on. */
  blocked: boolean;
}

/** Clients remembered at most (failure windows and blocks each): a flood of addresses costs bounded memory. */
const MAX_CLIENTS = 10_000;
const IPV6_PREFIX = 64;
/** Addresses that cannot be known share one key (they are refused together). */
const UNKNOWN = 'unknown';

/**
 * The admin listener's own jail for wrong tokens: `maxretry` wrong tokens within `findtime` from
 * one client (an IPv6 client per /64) get it refused for `bantime`, the right token included.
 * It is kept apart from the engine's jails on purpose: the engine's `ignoreip` (loopback by
 * default) must not exempt a local user guessing the token, and the engine's bans would also shut
 * the client out of the proxied application, which is not this jail's business.
 */
export class AuthFailures {
  readonly #clock: Clock;
  readonly #windows = new FailureWindows(MAX_CLIENTS);
  /** Key → refused until (ms since the epoch); oldest first. */
  readonly #blocked = new Map<string, number>();
  #total = 0;
  #blocks = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Wrong tokens seen since start. */
  get total(): number {
    return this.#total;
  }

  /** Clients refused since start. */
  get blocks(): number {
    return this.#blocks;
  }

  /** Clients refused right now. */
  get blockedNow(): number {
    this.#expire();
    return this.#blocked.size;
  }

  /** Milliseconds the client is still refused for; 0 when it is not. */
  blockedFor(ip: string | null): number {
    const key = keyOf(ip);
    const until = this.#blocked.get(key);
    if (until === undefined) return 0;
    const left = until - this.#clock.now();
    if (left > 0) return left;
    this.#blocked.delete(key);
    return 0;
  }

  /** Counts one wrong token of `ip`. */
  fail(ip: string | null, settings: AuthFailureSettings): AuthFailureResult {
    this.#total++;
    const key = keyOf(ip);
    const now = this.#clock.now();
    const result = this.#windows.add({
      jail: 'admin',
      key,
      timeMs: now,
      weight: 1,
      findTimeMs: settings.findTimeMs,
      maxRetry: settings.maxRetry,
    });
    if (!result.reached) return { failures: result.count, blocked: false };
    this.#windows.clear('admin', key);
    this.#expire();
    if (this.#blocked.size >= MAX_CLIENTS) {
      const oldest = this.#blocked.keys().next().value;
      if (oldest !== undefined) this.#blocked.delete(oldest);
    }
    this.#blocked.delete(key);
    this.#blocked.set(key, now + settings.banTimeMs);
    this.#blocks++;
    return { failures: result.count, blocked: true };
  }

  #expire(): void {
    const now = this.#clock.now();
    for (const [key, until] of this.#blocked) if (until <= now) this.#blocked.delete(key);
  }
}

function keyOf(ip: string | null): string {
  if (ip === null) return UNKNOWN;
  const parsed = parseIp(ip);
  return parsed === null ? UNKNOWN : clientKey(parsed, IPV6_PREFIX);
}
