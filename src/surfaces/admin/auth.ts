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
  /** True when this one used up the trusted peer's budget: everything through it is refused now. */
  peerBlocked: boolean;
}

/** Clients remembered at most (failure windows and blocks each): a flood of addresses costs bounded memory. */
const MAX_CLIENTS = 10_000;
const IPV6_PREFIX = 64;
/** Addresses that cannot be known share one key (they are refused together). */
const UNKNOWN = 'unknown';
/**
 * A trusted proxy (the peer that named the client in X-Forwarded-For) is charged every wrong
 * token sent through it too, against this many times `maxretry`: anyone who can reach the listener
 * through a trusted peer (every local user, when loopback is trusted) picks the identity it is
 * judged under, and must not get a fresh `maxretry` per invented address.
 */
export const PEER_BUDGET_FACTOR = 10;

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

  /**
   * Milliseconds the client is still refused for; 0 when it is not. `via`: the trusted peer that
   * named the client (its own budget refuses everything sent through it).
   */
  blockedFor(ip: string | null, via: string | null = null): number {
    const own = this.#left(keyOf(ip));
    return via === null ? own : Math.max(own, this.#left(peerKeyOf(via)));
  }

  /** Counts one wrong token of `ip`, and against the budget of `via`, the trusted peer it came through. */
  fail(ip: string | null, settings: AuthFailureSettings, via: string | null = null): AuthFailureResult {
    this.#total++;
    const own = this.#charge(keyOf(ip), settings.maxRetry, settings);
    const peer =
      via === null
        ? { count: 0, blocked: false }
        : this.#charge(peerKeyOf(via), settings.maxRetry * PEER_BUDGET_FACTOR, settings);
    return { failures: own.count, blocked: own.blocked, peerBlocked: peer.blocked };
  }

  #left(key: string): number {
    const until = this.#blocked.get(key);
    if (until === undefined) return 0;
    const left = until - this.#clock.now();
    if (left > 0) return left;
    this.#blocked.delete(key);
    return 0;
  }

  #charge(key: string, maxRetry: number, settings: AuthFailureSettings): { count: number; blocked: boolean } {
    const now = this.#clock.now();
    const result = this.#windows.add({
      jail: 'admin',
      key,
      timeMs: now,
      weight: 1,
      findTimeMs: settings.findTimeMs,
      maxRetry,
    });
    if (!result.reached) return { count: result.count, blocked: false };
    this.#windows.clear('admin', key);
    this.#expire();
    if (this.#blocked.size >= MAX_CLIENTS) {
      const oldest = this.#blocked.keys().next().value;
      if (oldest !== undefined) this.#blocked.delete(oldest);
    }
    this.#blocked.delete(key);
    this.#blocked.set(key, now + settings.banTimeMs);
    this.#blocks++;
    return { count: result.count, blocked: true };
  }

  #expire(): void {
    const now = this.#clock.now();
    for (const [key, until] of this.#blocked) if (until <= now) this.#blocked.delete(key);
  }
}

/** A peer's budget is kept apart from its own client key (it may also send as itself). */
function peerKeyOf(ip: string): string {
  return `via ${keyOf(ip)}`;
}

function keyOf(ip: string | null): string {
  if (ip === null) return UNKNOWN;
  const parsed = parseIp(ip);
  return parsed === null ? UNKNOWN : clientKey(parsed, IPV6_PREFIX);
}
