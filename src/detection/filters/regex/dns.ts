import { lookup, reverse } from 'node:dns/promises';
import { normalizeIp } from '../../../core/ip.js';

/**
 * `usedns` for log filters: what to do with a line whose `<HOST>` is a DNS name.
 *
 * - `no` (default): nothing is resolved; the line is missed (counted as a bad host).
 * - `warn`: the name is resolved, and the first time each name is seen a warning is logged
 *   (an attacker may control the name's DNS: they choose whom the ban hits).
 * - `yes`: the name is resolved, silently.
 *
 * Resolution never runs on the hot path: a line with a name not yet known starts one lookup (at
 * most one in flight per name) and the failure is counted when the lookup settles, with the
 * line's own time; later lines with the same name use the cache. Answers are cached for
 * `cacheMs`, failures (no address, timeout) for `negativeCacheMs`; the cache holds at most
 * `maxEntries` names.
 */
export type UseDns = 'no' | 'warn' | 'yes';

export const USEDNS_VALUES: readonly UseDns[] = ['no', 'warn', 'yes'];

/** Resolves a name to its addresses (IPv4 and IPv6). */
export type Resolver = (name: string) => Promise<readonly string[]>;

/** Reverse DNS: the PTR names of an address. */
export type Reverser = (ip: string) => Promise<readonly string[]>;

export interface DnsCacheOptions {
  /** Default `dns.promises.lookup(name, { all: true })`. */
  resolver?: Resolver;
  /** Default `dns.promises.reverse(ip)`. */
  reverser?: Reverser;
  /** A lookup that takes longer fails. Default 3000 ms. */
  timeoutMs?: number;
  /** How long an answer is used. Default 1 h. */
  cacheMs?: number;
  /** How long a failed lookup is remembered. Default 5 min. */
  negativeCacheMs?: number;
  /** Names remembered (the oldest is dropped first). Default 10000. */
  maxEntries?: number;
  /** Wall clock for the cache, ms. Default `Date.now`. */
  now?: () => number;
}

export const DNS_DEFAULTS = Object.freeze({
  timeoutMs: 3000,
  cacheMs: 3_600_000,
  negativeCacheMs: 300_000,
  maxEntries: 10_000,
});

/** The system resolver (getaddrinfo: /etc/hosts, then DNS). */
export const systemResolver: Resolver = async (name) =>
  (await lookup(name, { all: true, verbatim: true })).map((entry) => entry.address);

/** The system's reverse lookup (PTR records). */
export const systemReverser: Reverser = (ip) => reverse(ip);

interface Entry {
  ips: readonly string[];
  expiresMs: number;
}

/** A name is worth resolving only when it looks like one (letters, digits, dots, dashes). */
const NAME =
  /^(?=.{1,253}$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;

/** True for text shaped like a DNS name (`mail.example.com`, `localhost`), not an address. */
export function isDnsName(text: string): boolean {
  return NAME.test(text);
}

/** Cache and lookups for one filter; see {@link UseDns}. */
export class DnsCache {
  readonly #resolver: Resolver;
  readonly #reverser: Reverser;
  readonly #verdicts = new Map<string, { ok: boolean; expiresMs: number }>();
  readonly #verifying = new Map<string, Promise<boolean>>();
  readonly #timeoutMs: number;
  readonly #cacheMs: number;
  readonly #negativeMs: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<readonly string[]>>();
  /** Lookups started (for tests and `portcullis test`). */
  lookups = 0;

  constructor(options: DnsCacheOptions = {}) {
    this.#resolver = options.resolver ?? systemResolver;
    this.#reverser = options.reverser ?? systemReverser;
    this.#timeoutMs = options.timeoutMs ?? DNS_DEFAULTS.timeoutMs;
    this.#cacheMs = options.cacheMs ?? DNS_DEFAULTS.cacheMs;
    this.#negativeMs = options.negativeCacheMs ?? DNS_DEFAULTS.negativeCacheMs;
    this.#max = options.maxEntries ?? DNS_DEFAULTS.maxEntries;
    this.#now = options.now ?? Date.now;
  }

  /** The cached addresses of `name` (empty: it did not resolve), or `undefined` when not known. */
  cached(name: string): readonly string[] | undefined {
    const key = name.toLowerCase();
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresMs <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.ips;
  }

  /** Resolves `name` (one lookup in flight per name); never rejects: a failure gives `[]`. */
  resolve(name: string): Promise<readonly string[]> {
    const key = name.toLowerCase();
    const known = this.cached(key);
    if (known !== undefined) return Promise.resolve(known);
    let running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    this.lookups++;
    running = this.#lookup(key).then((ips) => {
      this.#inFlight.delete(key);
      this.#store(key, ips);
      return ips;
    });
    this.#inFlight.set(key, running);
    return running;
  }

  /** Settles when every lookup in flight has. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#verifying.size > 0)
      await Promise.all([...this.#inFlight.values(), ...this.#verifying.values()]);
  }

  /**
   * The cached answer of {@link verify} for `ip` (true: it has a reverse name matching `accept`
   * that resolves back to it), or `undefined` when not known. `key` names the test (one regex).
   */
  verified(ip: string, key: string): boolean | undefined {
    const entry = this.#verdicts.get(`${key} ${ip}`);
    if (entry === undefined) return undefined;
    if (entry.expiresMs <= this.#now()) {
      this.#verdicts.delete(`${key} ${ip}`);
      return undefined;
    }
    return entry.ok;
  }

  /**
   * Forward-confirmed reverse DNS: does `ip` have a PTR name that `accept` matches and whose
   * addresses include `ip`? A PTR record alone proves nothing (its owner writes it); the forward
   * lookup of a name in the accepted domain is under that domain's control. Never rejects.
   */
  verify(ip: string, key: string, accept: (name: string) => boolean): Promise<boolean> {
    const known = this.verified(ip, key);
    if (known !== undefined) return Promise.resolve(known);
    const id = `${key} ${ip}`;
    let running = this.#verifying.get(id);
    if (running !== undefined) return running;
    this.lookups++;
    running = (async () => {
      const names = await this.#withTimeout(this.#reverser(ip));
      for (const name of names.slice(0, 8)) {
        const bare = name.endsWith('.') ? name.slice(0, -1) : name;
        if (!accept(bare)) continue;
        if ((await this.resolve(bare)).includes(ip)) return true;
      }
      return false;
    })().then((ok) => {
      this.#verifying.delete(id);
      if (this.#verdicts.size >= this.#max)
        this.#verdicts.delete(this.#verdicts.keys().next().value as string);
      this.#verdicts.set(id, { ok, expiresMs: this.#now() + this.#cacheMs });
      return ok;
    });
    this.#verifying.set(id, running);
    return running;
  }

  /** A lookup's answer, or `[]` when it fails or takes longer than the timeout. */
  async #withTimeout(pending: Promise<readonly string[]>): Promise<readonly string[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<readonly string[]>((resolve) => {
      timer = setTimeout(() => resolve([]), this.#timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([pending.catch(() => [] as readonly string[]), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #lookup(name: string): Promise<readonly string[]> {
    {
      const ips = await this.#withTimeout(this.#resolver(name));
      const out: string[] = [];
      for (const text of ips) {
        const ip = normalizeIp(text);
        if (ip !== null && !out.includes(ip)) out.push(ip);
      }
      return out;
    }
  }

  #store(key: string, ips: readonly string[]): void {
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, {
      ips,
      expiresMs: this.#now() + (ips.length > 0 ? this.#cacheMs : this.#negativeMs),
    });
  }
}
