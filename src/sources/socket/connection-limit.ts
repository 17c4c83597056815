/**
 * Counts concurrent connections per client address (`max_connections_per_ip`). Addresses are
 * counted exactly (an IPv6 client rotating through its /64 is not grouped).
 */
export class ConnectionLimit {
  readonly max: number;
  readonly #counts = new Map<string, number>();

  /** @param max connections one address may hold at once (at least 1). */
  constructor(max: number) {
    this.max = max;
  }

  /** Takes a slot for `ip`; false when it already holds `max`. */
  acquire(ip: string): boolean {
    const held = this.#counts.get(ip) ?? 0;
    if (held >= this.max) return false;
    this.#counts.set(ip, held + 1);
    return true;
  }

  /** Gives back a slot taken by `acquire`. */
  release(ip: string): void {
    const held = this.#counts.get(ip);
    if (held === undefined) return;
    if (held <= 1) this.#counts.delete(ip);
    else this.#counts.set(ip, held - 1);
  }

  /** Addresses holding at least one connection. */
  get size(): number {
    return this.#counts.size;
  }
}
