import type { FailureInput, FailureResult } from './types.js';

interface Window {
  /** Failure times and weights, oldest first: [t0, w0, t1, w1, ...]. */
  points: number[];
  findTimeMs: number;
  lastMs: number;
}

/**
 * Sliding failure windows kept in process memory: the counter for the SQLite and memory stores,
 * and the fallback while Redis is away. A ban fires when `maxretry` failures fall within any
 * `findtime` span (a failure exactly `findtime` older than the newest one no longer counts).
 *
 * Memory is bounded: past `maxKeys` clients the least recently seen is forgotten, so a flood of
 * spoofed addresses costs a bounded amount of memory, not an unbounded one.
 */
export class FailureWindows {
  readonly #windows = new Map<string, Window>();
  readonly #maxKeys: number;

  constructor(maxKeys = 200_000) {
    this.#maxKeys = maxKeys;
  }

  get size(): number {
    return this.#windows.size;
  }

  add(input: FailureInput): FailureResult {
    const id = windowId(input.jail, input.key);
    let window = this.#windows.get(id);
    if (window === undefined) {
      window = { points: [], findTimeMs: input.findTimeMs, lastMs: input.timeMs };
      if (this.#windows.size >= this.#maxKeys) {
        const oldest = this.#windows.keys().next().value;
        if (oldest !== undefined) this.#windows.delete(oldest);
      }
    } else {
      // Re-insert so Map order stays "least recently seen first" for eviction.
      this.#windows.delete(id);
    }
    window.findTimeMs = input.findTimeMs;
    window.lastMs = Math.max(window.lastMs, input.timeMs);
    insertSorted(window.points, input.timeMs, input.weight);
    const cutoff = window.lastMs - input.findTimeMs;
    let drop = 0;
    while (drop < window.points.length && (window.points[drop] as number) <= cutoff) drop += 2;
    if (drop > 0) window.points.splice(0, drop);
    let count = 0;
    for (let i = 1; i < window.points.length; i += 2) count += window.points[i] as number;
    if (count >= input.maxRetry) return { count, reached: true };
    this.#windows.set(id, window);
    return { count, reached: false };
  }

  clear(jail: string, key: string): void {
    this.#windows.delete(windowId(jail, key));
  }

  /** Forgets windows with no failure inside their `findtime` at `nowMs`. */
  prune(nowMs: number): void {
    for (const [id, window] of this.#windows) {
      if (window.lastMs <= nowMs - window.findTimeMs) this.#windows.delete(id);
    }
  }

  /** Per jail, the clients with a failure inside their `findtime` at `nowMs` (`portcullis status`). */
  liveByJail(nowMs: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, window] of this.#windows) {
      if (window.lastMs <= nowMs - window.findTimeMs) continue;
      const jail = id.slice(0, id.indexOf('\u0000'));
      out.set(jail, (out.get(jail) ?? 0) + 1);
    }
    return out;
  }

  /** Every live window, for writing back to a store that returns from an outage. */
  *entries(): IterableIterator<{ jail: string; key: string; points: readonly number[]; findTimeMs: number }> {
    for (const [id, window] of this.#windows) {
      const split = id.indexOf('\u0000');
      yield {
        jail: id.slice(0, split),
        key: id.slice(split + 1),
        points: window.points,
        findTimeMs: window.findTimeMs,
      };
    }
  }

  clearAll(): void {
    this.#windows.clear();
  }
}

function windowId(jail: string, key: string): string {
  return `${jail}\u0000${key}`;
}

function insertSorted(points: number[], timeMs: number, weight: number): void {
  let at = points.length;
  // Log lines and HTTP events arrive almost always in order: scan from the end.
  while (at > 0 && (points[at - 2] as number) > timeMs) at -= 2;
  points.splice(at, 0, timeMs, weight);
}
