import { formatIPv4, parseIPv4 } from './ip.js';
import type { FailureInput, FailureResult } from './types.js';

/**
 * A key as kept in a map: an IPv4 address (written canonically, as jails' keys are) as its 32 bits
 * (a small integer: hashed without reading a string, no string kept), anything else as it is.
 */
type Id = string | number;

function idOf(key: string): Id {
  const v4 = parseIPv4(key);
  return v4 < 0 ? key : v4 | 0;
}

function keyOf(id: Id): string {
  return typeof id === 'number' ? formatIPv4(id >>> 0) : id;
}

interface Window {
  /**
   * Failure times and weights, oldest first: [t0, w0, t1, w1, ...]; `null` while the window holds
   * one failure only, kept in `firstMs` and `firstWeight` (most clients fail once: no array).
   */
  points: number[] | null;
  firstMs: number;
  firstWeight: number;
  findTimeMs: number;
  lastMs: number;
  /** The sum of the weights in the window, added up oldest first. */
  count: number;
  /** When it was last added to (a sequence number): the least recently seen is forgotten first. */
  seen: number;
}

/** The windows of one jail, least recently seen first, and where eviction goes on in them. */
interface JailWindows {
  readonly windows: Map<Id, Window>;
  /**
   * A live iterator over `windows`: everything before it was evicted or re-inserted behind it
   * (except `head`), so its next entry is the least recently seen. A fresh `entries()` would step
   * over every deleted slot left at the front each time: O(n) per eviction under a flood.
   */
  cursor: IterableIterator<[Id, Window]> | undefined;
  /** The least recently seen entry, read from the cursor but not evicted yet; `seen` as read. */
  head: [Id, Window] | undefined;
  headSeen: number;
}

/**
 * Sliding failure windows kept in process memory: the counter for the SQLite and memory stores,
 * and the fallback while Redis is away. A ban fires when `maxretry` failures fall within any
 * `findtime` span (a failure exactly `findtime` older than the newest one no longer counts).
 *
 * Memory is bounded: past `maxKeys` clients (of all jails together) the least recently seen is
 * forgotten, so a flood of spoofed addresses costs a bounded amount of memory, not an unbounded one.
 *
 * Cost: a failure newer than the window's others (log lines and HTTP events nearly always are)
 * that pushes none out is O(1); otherwise O(failures in the window). Windows are kept per jail,
 * keyed by the client key itself (no `jail + key` string built per failure), an IPv4 key by its
 * number (see idOf).
 */
export class FailureWindows {
  readonly #jails = new Map<string, JailWindows>();
  readonly #maxKeys: number;
  #size = 0;
  #seen = 0;
  #lastJail: string | undefined;
  #last: JailWindows | undefined;

  constructor(maxKeys = 200_000) {
    this.#maxKeys = maxKeys;
  }

  get size(): number {
    return this.#size;
  }

  add(input: FailureInput): FailureResult {
    const count = this.count(
      input.jail,
      input.key,
      input.timeMs,
      input.weight,
      input.findTimeMs,
      input.maxRetry,
    );
    return { count, reached: count >= input.maxRetry };
  }

  /**
   * {@link add} without the objects: adds one failure and returns the weight within findtime.
   * When it reaches `maxRetry` the window is forgotten (the ban starts a new count).
   */
  count(
    jail: string,
    key: string,
    timeMs: number,
    weight: number,
    findTimeMs: number,
    maxRetry: number,
  ): number {
    // Failures come in runs of one jail (a log jail's batch): the last one's windows first.
    let ofJail = jail === this.#lastJail ? this.#last : this.#jails.get(jail);
    if (ofJail === undefined) {
      ofJail = { windows: new Map(), cursor: undefined, head: undefined, headSeen: 0 };
      this.#jails.set(jail, ofJail);
    }
    this.#lastJail = jail;
    this.#last = ofJail;
    const windows = ofJail.windows;
    const id = idOf(key);
    const window = windows.get(id);
    if (window === undefined) {
      if (this.#size >= this.#maxKeys) this.#evictOne();
      // `timeMs <= timeMs - findTimeMs`: findtime 0, nothing stays in the window.
      const kept = !(timeMs <= timeMs - findTimeMs);
      const count = kept ? 0 + weight : 0;
      if (count >= maxRetry) return count;
      windows.set(id, {
        points: kept ? null : [],
        firstMs: timeMs,
        firstWeight: weight,
        findTimeMs,
        lastMs: timeMs,
        count,
        seen: ++this.#seen,
      });
      this.#size++;
      return count;
    }
    // Re-inserted below so Map order stays "least recently seen first" for eviction.
    windows.delete(id);
    window.seen = ++this.#seen;
    window.findTimeMs = findTimeMs;
    window.lastMs = Math.max(window.lastMs, timeMs);
    let count: number;
    let points = window.points;
    if (points === null) {
      // The second failure: the window gets its array (a late one goes first).
      const late = window.firstMs > timeMs;
      points = late
        ? [timeMs, weight, window.firstMs, window.firstWeight]
        : [window.firstMs, window.firstWeight, timeMs, weight];
      window.points = points;
      count = late ? Number.NaN : window.count + weight;
    } else if (points.length === 0 || !((points[points.length - 2] as number) > timeMs)) {
      points.push(timeMs, weight);
      count = window.count + weight;
    } else {
      insertSorted(points, timeMs, weight);
      count = Number.NaN;
    }
    const cutoff = window.lastMs - findTimeMs;
    let drop = 0;
    while (drop < points.length && (points[drop] as number) <= cutoff) drop += 2;
    if (drop > 0) points.splice(0, drop);
    // Added up oldest first, as always: the same sum to the last bit (weights need not be whole).
    if (drop > 0 || Number.isNaN(count)) {
      count = 0;
      for (let i = 1; i < points.length; i += 2) count += points[i] as number;
    }
    window.count = count;
    if (count >= maxRetry) {
      this.#size--;
      return count;
    }
    windows.set(id, window);
    return count;
  }

  /** Forgets the least recently seen window of all jails. */
  #evictOne(): void {
    let oldest: JailWindows | undefined;
    for (const ofJail of this.#jails.values()) {
      const head = headOf(ofJail);
      if (head !== undefined && (oldest === undefined || ofJail.headSeen < oldest.headSeen)) oldest = ofJail;
    }
    if (oldest === undefined) return;
    oldest.windows.delete((oldest.head as [Id, Window])[0]);
    oldest.head = undefined;
    this.#size--;
  }

  clear(jail: string, key: string): void {
    if (this.#jails.get(jail)?.windows.delete(idOf(key)) === true) this.#size--;
  }

  /** Forgets windows with no failure inside their `findtime` at `nowMs`. */
  prune(nowMs: number): void {
    for (const { windows } of this.#jails.values()) {
      for (const [id, window] of windows) {
        if (window.lastMs <= nowMs - window.findTimeMs) {
          windows.delete(id);
          this.#size--;
        }
      }
    }
  }

  /** Per jail, the clients with a failure inside their `findtime` at `nowMs` (`portcullis status`). */
  liveByJail(nowMs: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [jail, { windows }] of this.#jails) {
      let live = 0;
      for (const window of windows.values()) if (window.lastMs > nowMs - window.findTimeMs) live++;
      if (live > 0) out.set(jail, live);
    }
    return out;
  }

  /** Every live window, for writing back to a store that returns from an outage. */
  *entries(): IterableIterator<{ jail: string; key: string; points: readonly number[]; findTimeMs: number }> {
    for (const [jail, { windows }] of this.#jails) {
      for (const [id, window] of windows) {
        yield {
          jail,
          key: keyOf(id),
          points: window.points ?? [window.firstMs, window.firstWeight],
          findTimeMs: window.findTimeMs,
        };
      }
    }
  }

  clearAll(): void {
    this.#jails.clear();
    this.#size = 0;
    this.#lastJail = undefined;
    this.#last = undefined;
  }
}

/** The least recently seen window of one jail (read ahead from its cursor), if it has any. */
function headOf(ofJail: JailWindows): [Id, Window] | undefined {
  for (;;) {
    const head = ofJail.head;
    // Still where it was read: not added to since (that moved it to the back), nor removed.
    if (head !== undefined && ofJail.windows.get(head[0]) === head[1] && head[1].seen === ofJail.headSeen)
      return head;
    let next = ofJail.cursor?.next();
    if (next === undefined || next.done === true) {
      ofJail.cursor = ofJail.windows.entries();
      next = ofJail.cursor.next();
      if (next.done === true) {
        ofJail.head = undefined;
        return undefined;
      }
    }
    ofJail.head = next.value;
    ofJail.headSeen = next.value[1].seen;
  }
}

function insertSorted(points: number[], timeMs: number, weight: number): void {
  let at = points.length;
  // Log lines and HTTP events arrive almost always in order: scan from the end.
  while (at > 0 && (points[at - 2] as number) > timeMs) at -= 2;
  points.splice(at, 0, timeMs, weight);
}
