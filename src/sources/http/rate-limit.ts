import type { Cluster, Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * Where a rate jail's count is shared with the other instances: the Redis store's command
 * connection (it fails fast: no offline queue, a command timeout), under the store's key prefix.
 */
export interface SharedRateBackend {
  /** `undefined` until the store is open (and after it is closed). */
  readonly commandClient: Redis | Cluster | undefined;
  /** The store's key prefix; rate keys are `<prefix>rate:<jail, URI-encoded>:<client key>`. */
  readonly keyPrefix: string;
}

/** The Redis store as a shared rate backend; `undefined` for SQLite and memory stores (they count alone). */
export function sharedRateBackendOf(
  store: { readonly kind: string } | undefined,
): SharedRateBackend | undefined {
  if (store === undefined || store.kind !== 'redis' || !('commandClient' in store)) return undefined;
  return store as unknown as SharedRateBackend;
}

export interface RateLimitOptions {
  /** The jail's name (part of the shared key). */
  jail: string;
  /** Requests allowed per window. */
  points: number;
  /** The window, ms. The shared window is rounded up to whole seconds (Redis key TTLs are). */
  durationMs: number;
  /** Count across instances through this backend too. Absent: this instance counts alone. */
  shared?: SharedRateBackend | undefined;
  /**
   * The first request over the rate in a window: the one the shared count puts at `points + 1`
   * (once across every instance) while Redis answers; this instance's own first excess otherwise.
   */
  onExceeded(ip: string): void;
  /** An unexpected rejection of a limiter (never a refusal). */
  onError(error: Error): void;
}

/**
 * Shared consumes waiting for Redis, per jail, beyond which requests are counted here only. Bounds
 * the memory a blackholed Redis (every command waiting `commandTimeoutMs`) can pin under a flood.
 */
const MAX_SHARED_IN_FLIGHT = 1024;

/** Results the insurance limiter produced (Redis did not answer): they say nothing shared. */
const insured = new WeakSet<object>();

function markInsured<T>(result: T): T {
  if (typeof result === 'object' && result !== null) insured.add(result);
  return result;
}

/** rate-limiter-flexible's insurance limiter, marking its answers so they are told from Redis's. */
class InsuranceLimiter extends RateLimiterMemory {
  override consume(
    key: string | number,
    points?: number,
    options?: { [key: string]: unknown },
  ): Promise<RateLimiterRes> {
    return super
      .consume(key, points, options)
      .then(markInsured, (rejection: unknown) => Promise.reject(markInsured(rejection)));
  }
}

/**
 * One rate jail's counter. Admission is decided on this instance, without waiting for any I/O:
 * its own in-memory window (`points` per `durationMs`), plus keys the shared count has put over
 * the rate, which are refused here for the rest of the shared window. Every admitted request is
 * then added to the shared count in Redis (rate-limiter-flexible's `RateLimiterRedis`, one atomic
 * INCR) without being waited for. A reply over the rate blocks the key in this instance's window,
 * and in the Redis limiter's in-memory block (`inMemoryBlockOnConsumed`), so the rest of a flood
 * costs no round trip at all.
 *
 * Bound: across N instances a client gets at most `points` requests plus, per instance, the ones
 * that instance admitted before it heard the shared count was over: one for a client that waits
 * for each answer (so `points + N`), plus the requests it had in flight within one Redis round
 * trip. No instance ever admits more than `points` per window on its own, so while Redis is
 * unreachable (its insurance limiter answers) each instance limits alone, as without Redis.
 */
export class RateLimit {
  readonly points: number;
  readonly durationMs: number;
  readonly #options: RateLimitOptions;
  readonly #local: RateLimiterMemory;
  #shared: RateLimiterRedis | undefined;
  #sharedClient: Redis | Cluster | undefined;
  #inFlight = 0;

  constructor(options: RateLimitOptions) {
    this.#options = options;
    this.points = options.points;
    this.durationMs = options.durationMs;
    this.#local = new RateLimiterMemory({
      points: options.points,
      duration: options.durationMs / 1000,
      keyPrefix: `pc-rate:${options.jail}`,
    });
  }

  /** True when this counter adds to a count shared through Redis (whether or not Redis answers now). */
  get shared(): boolean {
    return this.#options.shared !== undefined;
  }

  /**
   * Counts one request of `key` (the client key; `ip` is reported). Resolves `undefined` when it
   * may go on, else the ms until the client may try again. Never rejects; decided in a microtask.
   */
  consume(key: string, ip: string): Promise<number | undefined> {
    return this.#local.consume(key).then(
      () => {
        this.#share(key, ip, false);
        return undefined;
      },
      (rejection: unknown) => this.#refused(key, ip, rejection),
    );
  }

  #refused(key: string, ip: string, rejection: unknown): number | undefined {
    if (!(rejection instanceof RateLimiterRes)) {
      this.#options.onError(asError(rejection));
      return undefined;
    }
    // This instance's first excess in its window: the shared count (if any) says whether it is
    // the first across instances; a key blocked by the shared count never lands on points + 1.
    if (rejection.consumedPoints === this.points + 1) this.#share(key, ip, true);
    return Math.max(1, rejection.msBeforeNext);
  }

  /** Adds the request to the shared count; `crossing`: it is this instance's own first excess. */
  #share(key: string, ip: string, crossing: boolean): void {
    const limiter = this.#sharedLimiter();
    if (limiter === undefined || this.#inFlight >= MAX_SHARED_IN_FLIGHT) {
      if (crossing) this.#options.onExceeded(ip);
      return;
    }
    this.#inFlight++;
    limiter.consume(key).then(
      () => {
        this.#inFlight--;
        // Redis unreachable (the insurance answered), or under the rate across instances yet over
        // it here (the windows started apart): this instance's excess is the one to report.
        if (crossing) this.#options.onExceeded(ip);
      },
      (rejection: unknown) => {
        this.#inFlight--;
        this.#sharedRefused(key, ip, crossing, rejection);
      },
    );
  }

  #sharedRefused(key: string, ip: string, crossing: boolean, rejection: unknown): void {
    if (!(rejection instanceof RateLimiterRes) || insured.has(rejection)) {
      if (!(rejection instanceof RateLimiterRes)) this.#options.onError(asError(rejection));
      if (crossing) this.#options.onExceeded(ip);
      return;
    }
    // Over the rate counted across instances: refused here too until the shared window ends.
    if (rejection.msBeforeNext > 0) void this.#local.block(key, rejection.msBeforeNext / 1000);
    // Redis counts atomically: exactly one request anywhere lands on points + 1.
    if (rejection.consumedPoints === this.points + 1) this.#options.onExceeded(ip);
  }

  /** The Redis limiter on the store's current connection; built once the store is open. */
  #sharedLimiter(): RateLimiterRedis | undefined {
    const backend = this.#options.shared;
    if (backend === undefined) return undefined;
    const client = backend.commandClient;
    if (client === undefined) return undefined;
    if (client !== this.#sharedClient || this.#shared === undefined) {
      const duration = Math.max(1, Math.ceil(this.durationMs / 1000));
      this.#shared = new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `${backend.keyPrefix}rate:${encodeURIComponent(this.#options.jail)}`,
        points: this.points,
        duration,
        // Over the rate: the key is refused from memory until its Redis key expires (no round trip).
        inMemoryBlockOnConsumed: this.points + 1,
        // Not connected: straight to the insurance limiter, instead of a command that must fail.
        rejectIfRedisNotReady: true,
        insuranceLimiter: new InsuranceLimiter({
          points: this.points,
          duration,
          keyPrefix: `pc-rate-insurance:${this.#options.jail}`,
        }),
      });
      this.#sharedClient = client;
    }
    return this.#shared;
  }
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
