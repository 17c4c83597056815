/**
 * Lets at most `limit` messages through per `intervalMs` window and counts the rest, so a noisy
 * source (a command's stderr, a file full of overlong lines) cannot flood the process log.
 */
export class LogThrottle {
  readonly #intervalMs: number;
  readonly #limit: number;
  readonly #now: () => number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #count = 0;
  #suppressed = 0;

  /**
   * @param intervalMs window length in ms. Default 10000.
   * @param limit messages allowed per window. Default 5.
   */
  constructor(intervalMs = 10_000, limit = 5, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#limit = limit;
    this.#now = now;
  }

  /**
   * Asks to log one message. `allowed` says whether to; `suppressed` is how many were held back in
   * the previous window(s), to mention once in the next message that gets through.
   */
  take(): { allowed: boolean; suppressed: number } {
    const now = this.#now();
    if (now - this.#windowStart >= this.#intervalMs) {
      this.#windowStart = now;
      this.#count = 0;
    }
    if (this.#count >= this.#limit) {
      this.#suppressed++;
      return { allowed: false, suppressed: 0 };
    }
    this.#count++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { allowed: true, suppressed };
  }
}
