export interface DistinctTrackerOptions {
  /** How long a value stays "seen" for a client, ms (the jail's findtime). */
  windowMs: number;
  /** Clients remembered at once; the least recently active are forgotten first. Default 20 000. */
  maxClients?: number;
  /** Values remembered per client; the oldest are forgotten first. Default 64. */
  maxValuesPerClient?: number;
  /** Values longer than this are compared on their first this-many characters. Default 1024. */
  maxValueLength?: number;
}

/**
 * Remembers which values (paths, ...) each client was seen with inside a window, in bounded
 * memory: values are kept as 53-bit hashes (a number, not the string), at most
 * `maxClients × maxValuesPerClient` of them, so the worst case is a few tens of MB whatever the
 * clients send. Forgetting early only makes a value count again, which errs towards counting a
 * scanner; a hash collision (about 1 in 10^15 per pair) makes a new value look seen.
 */
export class DistinctTracker {
  readonly #windowMs: number;
  readonly #maxClients: number;
  readonly #maxValues: number;
  readonly #maxLength: number;
  /** client → (value hash → last seen, ms); Map order is recency order for both levels. */
  readonly #clients = new Map<string, Map<number, number>>();

  constructor(options: DistinctTrackerOptions) {
    this.#windowMs = options.windowMs;
    this.#maxClients = options.maxClients ?? 20_000;
    this.#maxValues = options.maxValuesPerClient ?? 64;
    this.#maxLength = options.maxValueLength ?? 1024;
  }

  /** The window, ms. */
  get windowMs(): number {
    return this.#windowMs;
  }

  /** Number of clients remembered. */
  get size(): number {
    return this.#clients.size;
  }

  /** Records `value` for `client` at `nowMs`; true when it was not seen within the window. */
  isNew(client: string, value: string, nowMs: number): boolean {
    const key = hash53(value, Math.min(value.length, this.#maxLength));
    let values = this.#clients.get(client);
    if (values === undefined) {
      values = new Map();
      if (this.#clients.size >= this.#maxClients) {
        const oldest = this.#clients.keys().next().value as string;
        this.#clients.delete(oldest);
      }
    } else {
      this.#clients.delete(client); // re-inserted below: most recent last
    }
    this.#clients.set(client, values);
    const seen = values.get(key);
    const fresh = seen === undefined || nowMs - seen >= this.#windowMs;
    values.delete(key);
    values.set(key, nowMs);
    if (values.size > this.#maxValues) values.delete(values.keys().next().value as number);
    return fresh;
  }

  /** Forgets every client. */
  clear(): void {
    this.#clients.clear();
  }
}

/** Two 32-bit FNV-1a hashes with different seeds, folded into 53 bits (a safe integer). */
function hash53(text: string, length: number): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}
