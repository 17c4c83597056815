import type { Clock } from '../core/clock.js';
import { type ParsedIp, parseCidr, parseIPv4, parseIp } from '../core/ip.js';
import { PrefixTrie } from '../core/prefix-trie.js';
import type { BanEntry } from '../core/types.js';

export type { BanEntry } from '../core/types.js';

/** IPv6 networks at least this long are hashed per prefix length; shorter ones go in the trie. */
const V6_HASHED_MIN_PREFIX = 48;
const INITIAL_CAPACITY = 1024;

/**
 * The local ban table: answers "is this address banned?" synchronously with no I/O.
 *
 * - single IPv4 addresses: a `Map` keyed by the address as a 32-bit integer (a small integer
 *   key; no string per ban in the index);
 * - IPv6 clients (/48 .. /128, which covers the per-/64 client keys): one `Map` per prefix length
 *   in use, keyed by the masked address in hex; a lookup masks once per length in use;
 * - every other network (IPv4 ranges, short IPv6 prefixes): a {@link PrefixTrie}.
 *
 * Per-ban data lives in slots (struct of arrays) so a million bans are a million slots, not a
 * million objects; expiry is tracked by a min-heap of slots so expiring bans cost O(log n).
 */
export class BanTable {
  readonly #clock: Clock;
  readonly #v4 = new Map<number, number>();
  readonly #v6 = new Map<number, Map<string, number>>();
  #ranges = new PrefixTrie<number>();
  readonly #byTarget = new Map<string, number>();
  readonly #jailIds = new Map<string, number>();
  readonly #jailNames: string[] = [];

  #targets: (string | undefined)[] = [];
  #expires = new Float64Array(INITIAL_CAPACITY);
  #jails = new Uint16Array(INITIAL_CAPACITY);
  #free: number[] = [];
  #next = 0;
  #size = 0;
  #heap = new Int32Array(INITIAL_CAPACITY);
  #heapExpiry = new Float64Array(INITIAL_CAPACITY);
  #heapSize = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of banned targets (addresses and networks). */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds or replaces the ban of `target` (canonical address or CIDR text). `expiresAt` is ms since
   * the epoch, `null` or `Infinity` for permanent. Returns false for a target that does not parse.
   */
  add(target: string, jail: string, expiresAt: number | null): boolean {
    const expiry = expiresAt === null ? Number.POSITIVE_INFINITY : expiresAt;
    const existing = this.#byTarget.get(target) ?? this.#lookupExact(target);
    if (existing !== undefined) {
      this.#expires[existing] = expiry;
      this.#jails[existing] = this.#jailId(jail);
      this.#pushHeap(existing, expiry);
      return true;
    }
    const slot = this.#allocate();
    const v4 = parseIPv4(target);
    if (v4 >= 0) {
      this.#v4.set(v4 | 0, slot);
    } else {
      const cidr = parseCidr(target);
      if (cidr === null) {
        this.#release(slot);
        return false;
      }
      if (cidr.family === 4 && cidr.prefix === 32) {
        this.#v4.set(cidr.v4 | 0, slot);
      } else if (cidr.family === 6 && cidr.prefix >= V6_HASHED_MIN_PREFIX) {
        let byKey = this.#v6.get(cidr.prefix);
        if (byKey === undefined) {
          byKey = new Map();
          this.#v6.set(cidr.prefix, byKey);
        }
        byKey.set(v6Key(cidr.bytes, cidr.prefix), slot);
      } else {
        this.#ranges.set(cidr, slot);
      }
      // Only non-IPv4 targets need the text index: an IPv4 target is its own key.
      this.#byTarget.set(target, slot);
    }
    this.#targets[slot] = target;
    this.#expires[slot] = expiry;
    this.#jails[slot] = this.#jailId(jail);
    this.#pushHeap(slot, expiry);
    return true;
  }

  /** Removes the ban of exactly `target`. Returns whether there was one. */
  remove(target: string): boolean {
    const slot = this.#byTarget.get(target) ?? this.#lookupExact(target);
    if (slot === undefined) return false;
    this.#unindex(slot);
    return true;
  }

  /** True when `ip` (any textual form) is covered by a ban that has not expired. Never throws. */
  has(ip: string): boolean {
    if (this.#size === 0) return false;
    const v4 = parseIPv4(ip);
    if (v4 >= 0) return this.#findV4(v4, this.#clock.now()) !== -1;
    const parsed = parseIp(ip);
    return parsed !== null && this.#find(parsed, this.#clock.now()) !== -1;
  }

  /** Like {@link has} for an already parsed address. */
  hasParsed(ip: ParsedIp): boolean {
    if (this.#size === 0) return false;
    return this.#find(ip, this.#clock.now()) !== -1;
  }

  /** The ban covering `ip`, if any (for `Retry-After` and logs). */
  lookup(ip: string | ParsedIp): BanEntry | undefined {
    if (this.#size === 0) return undefined;
    const parsed = typeof ip === 'string' ? parseIp(ip) : ip;
    if (parsed === null) return undefined;
    const slot = this.#find(parsed, this.#clock.now());
    return slot === -1 ? undefined : this.#entry(slot);
  }

  /** The entry for exactly `target`, expired or not. */
  get(target: string): BanEntry | undefined {
    const slot = this.#byTarget.get(target) ?? this.#lookupExact(target);
    return slot === undefined ? undefined : this.#entry(slot);
  }

  /** Removes and returns up to `limit` bans whose expiry is at or before `nowMs`. */
  takeExpired(nowMs: number, limit = 10_000): BanEntry[] {
    const out: BanEntry[] = [];
    while (this.#heapSize > 0 && out.length < limit) {
      const expiry = this.#heapExpiry[0] as number;
      if (expiry > nowMs) break;
      const slot = this.#heap[0] as number;
      this.#popHeap();
      // Stale heap entries (ban extended, removed, or slot reused) are skipped.
      if (this.#targets[slot] === undefined || this.#expires[slot] !== expiry) continue;
      out.push(this.#entry(slot));
      this.#unindex(slot);
    }
    return out;
  }

  /** The earliest expiry in the table, `Infinity` if none. */
  nextExpiry(): number {
    while (this.#heapSize > 0) {
      const slot = this.#heap[0] as number;
      const expiry = this.#heapExpiry[0] as number;
      if (this.#targets[slot] !== undefined && this.#expires[slot] === expiry) return expiry;
      this.#popHeap();
    }
    return Number.POSITIVE_INFINITY;
  }

  clear(): void {
    this.#v4.clear();
    this.#v6.clear();
    this.#ranges = new PrefixTrie<number>();
    this.#byTarget.clear();
    this.#targets = [];
    this.#free = [];
    this.#next = 0;
    this.#size = 0;
    this.#heapSize = 0;
  }

  *entries(): IterableIterator<BanEntry> {
    for (let slot = 0; slot < this.#next; slot++) {
      if (this.#targets[slot] !== undefined) yield this.#entry(slot);
    }
  }

  #findV4(v4: number, nowMs: number): number {
    const slot = this.#v4.get(v4 | 0);
    if (slot !== undefined && (this.#expires[slot] as number) > nowMs) return slot;
    if (this.#ranges.isEmpty(4)) return -1;
    return this.#ranges.findV4(v4, (s) => (this.#expires[s] as number) > nowMs) ?? -1;
  }

  #find(ip: ParsedIp, nowMs: number): number {
    if (ip.family === 4) return this.#findV4(ip.v4, nowMs);
    for (const [prefix, byKey] of this.#v6) {
      const slot = byKey.get(v6Key(ip.bytes, prefix));
      if (slot !== undefined && (this.#expires[slot] as number) > nowMs) return slot;
    }
    if (this.#ranges.isEmpty(6)) return -1;
    return this.#ranges.findV6(ip.bytes, (s) => (this.#expires[s] as number) > nowMs) ?? -1;
  }

  #lookupExact(target: string): number | undefined {
    const v4 = parseIPv4(target);
    if (v4 >= 0) return this.#v4.get(v4 | 0);
    const cidr = parseCidr(target);
    if (cidr === null) return undefined;
    if (cidr.family === 4 && cidr.prefix === 32) return this.#v4.get(cidr.v4 | 0);
    if (cidr.family === 6 && cidr.prefix >= V6_HASHED_MIN_PREFIX) {
      return this.#v6.get(cidr.prefix)?.get(v6Key(cidr.bytes, cidr.prefix));
    }
    return this.#ranges.get(cidr);
  }

  #unindex(slot: number): void {
    const target = this.#targets[slot] as string;
    const v4 = parseIPv4(target);
    if (v4 >= 0) {
      this.#v4.delete(v4 | 0);
    } else {
      this.#byTarget.delete(target);
      const cidr = parseCidr(target);
      if (cidr !== null) {
        if (cidr.family === 4 && cidr.prefix === 32) this.#v4.delete(cidr.v4 | 0);
        else if (cidr.family === 6 && cidr.prefix >= V6_HASHED_MIN_PREFIX) {
          const byKey = this.#v6.get(cidr.prefix);
          byKey?.delete(v6Key(cidr.bytes, cidr.prefix));
          if (byKey?.size === 0) this.#v6.delete(cidr.prefix);
        } else this.#ranges.delete(cidr);
      }
    }
    this.#release(slot);
  }

  #entry(slot: number): BanEntry {
    return {
      target: this.#targets[slot] as string,
      jail: this.#jailNames[this.#jails[slot] as number] as string,
      expiresAt: this.#expires[slot] as number,
    };
  }

  #jailId(jail: string): number {
    let id = this.#jailIds.get(jail);
    if (id === undefined) {
      id = this.#jailNames.length;
      this.#jailNames.push(jail);
      this.#jailIds.set(jail, id);
    }
    return id;
  }

  #allocate(): number {
    this.#size++;
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#next++;
    if (slot >= this.#expires.length) {
      const expires = new Float64Array(this.#expires.length * 2);
      expires.set(this.#expires);
      this.#expires = expires;
      const jails = new Uint16Array(this.#jails.length * 2);
      jails.set(this.#jails);
      this.#jails = jails;
    }
    return slot;
  }

  #release(slot: number): void {
    this.#targets[slot] = undefined;
    this.#expires[slot] = 0;
    this.#free.push(slot);
    this.#size--;
  }

  #pushHeap(slot: number, expiry: number): void {
    if (expiry === Number.POSITIVE_INFINITY) return;
    if (this.#heapSize === this.#heap.length) {
      const heap = new Int32Array(this.#heap.length * 2);
      heap.set(this.#heap);
      this.#heap = heap;
      const heapExpiry = new Float64Array(this.#heapExpiry.length * 2);
      heapExpiry.set(this.#heapExpiry);
      this.#heapExpiry = heapExpiry;
    }
    let i = this.#heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.#heapExpiry[parent] as number) <= expiry) break;
      this.#heap[i] = this.#heap[parent] as number;
      this.#heapExpiry[i] = this.#heapExpiry[parent] as number;
      i = parent;
    }
    this.#heap[i] = slot;
    this.#heapExpiry[i] = expiry;
  }

  #popHeap(): void {
    const last = --this.#heapSize;
    if (last <= 0) return;
    const slot = this.#heap[last] as number;
    const expiry = this.#heapExpiry[last] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      if (child + 1 < last && (this.#heapExpiry[child + 1] as number) < (this.#heapExpiry[child] as number))
        child++;
      if ((this.#heapExpiry[child] as number) >= expiry) break;
      this.#heap[i] = this.#heap[child] as number;
      this.#heapExpiry[i] = this.#heapExpiry[child] as number;
      i = child;
    }
    this.#heap[i] = slot;
    this.#heapExpiry[i] = expiry;
  }
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Hex of the first `prefix` bits of `bytes` (host bits zeroed): a compact hash key. */
function v6Key(bytes: Uint8Array, prefix: number): string {
  const full = prefix >> 3;
  let key = '';
  for (let i = 0; i < full; i++) key += HEX[bytes[i] as number];
  const rest = prefix & 7;
  if (rest !== 0) key += HEX[(bytes[full] as number) & (0xff << (8 - rest))];
  return key;
}
