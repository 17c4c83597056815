import { describe, expect, it } from 'vitest';
import { FailureWindows } from '../../../src/core/failure-windows.js';
import type { FailureInput } from '../../../src/core/types.js';

/**
 * The plain definition, written out the slow way: per key, every failure time and weight, the ones
 * at or before (newest − findtime) dropped, the rest added up oldest first; a window that reaches
 * maxretry is forgotten; past `maxKeys` keys the least recently seen goes.
 */
class Reference {
  readonly windows = new Map<string, { points: [number, number][]; lastMs: number }>();
  constructor(readonly maxKeys: number) {}

  add(input: FailureInput): { count: number; reached: boolean } {
    const id = `${input.jail}\u0000${input.key}`;
    let window = this.windows.get(id);
    if (window === undefined) {
      window = { points: [], lastMs: input.timeMs };
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value as string);
    } else this.windows.delete(id);
    window.lastMs = Math.max(window.lastMs, input.timeMs);
    window.points.push([input.timeMs, input.weight]);
    window.points.sort((a, b) => a[0] - b[0]);
    const cutoff = window.lastMs - input.findTimeMs;
    window.points = window.points.filter(([t]) => !(t <= cutoff));
    let count = 0;
    for (const [, weight] of window.points) count += weight;
    if (count >= input.maxRetry) return { count, reached: true };
    this.windows.set(id, window);
    return { count, reached: false };
  }
}

/** A small deterministic generator (the same sequence on every run). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Keys of every kind a window is kept under: IPv4 (kept by its number, high addresses included),
 * IPv6 networks and text that only looks like an address (`198.051.100.1` is not `198.51.100.1`).
 */
function keyFor(n: number): string {
  if (n < 5) return `198.51.100.${n}`;
  if (n < 7) return `255.255.255.${n}`;
  if (n < 9) return `2001:db8::${n}/64`;
  if (n < 11) return `198.051.100.${n - 9}`;
  return 'user:bob';
}

describe('FailureWindows', () => {
  it('counts exactly like the plain definition: out-of-order times, fractional weights, findtime edges', () => {
    const next = random(7);
    const windows = new FailureWindows(20);
    const reference = new Reference(20);
    let reached = 0;
    let now = 1_000_000;
    for (let i = 0; i < 40_000; i++) {
      // Mostly in order, sometimes late (an HTTP event, a merged log), sometimes exactly findtime apart.
      now += Math.floor(next() * 10);
      const late = next() < 0.1 ? Math.floor(next() * 400) : 0;
      const findTimeMs = next() < 0.5 ? 500 : 2000;
      const input: FailureInput = {
        jail: next() < 0.5 ? 'sshd' : 'web',
        key: keyFor(Math.floor(next() * 12)),
        timeMs: next() < 0.02 ? now - findTimeMs : now - late,
        weight: next() < 0.3 ? 0.1 : next() < 0.5 ? 0.7 : 1,
        findTimeMs,
        maxRetry: next() < 0.5 ? 5 : 12,
      };
      const got = windows.add(input);
      expect(got, `failure ${i}: ${JSON.stringify(input)}`).toEqual(reference.add(input));
      if (got.reached) reached++;
    }
    // The sequence did reach thresholds and did evict (12 keys × 2 jails > 20).
    expect(reached).toBeGreaterThan(100);
    expect(windows.size).toBe(reference.windows.size);
    expect(windows.size).toBeLessThanOrEqual(20);
    // What a store returning from an outage is given back: the same failures, oldest first.
    const byId = (a: [string, number[]], b: [string, number[]]) => (a[0] < b[0] ? -1 : 1);
    const given = [...windows.entries()]
      .map((entry): [string, number[]] => [`${entry.jail}\u0000${entry.key}`, [...entry.points]])
      .sort(byId);
    const expected = [...reference.windows]
      .map(([id, window]): [string, number[]] => [id, window.points.flat()])
      .sort(byId);
    expect(given).toEqual(expected);
  });

  it('ten failures of weight 0.1 are not one failure (floating point sums are not rounded up)', () => {
    const windows = new FailureWindows();
    let last = { count: 0, reached: false };
    for (let i = 0; i < 10; i++) {
      last = windows.add({
        jail: 'j',
        key: 'k',
        timeMs: 1000 + i,
        weight: 0.1,
        findTimeMs: 60_000,
        maxRetry: 1,
      });
    }
    // 0.1 added ten times is 0.9999999999999999 in binary floating point.
    expect(last).toEqual({ count: 0.9999999999999999, reached: false });
  });

  it('forgets the least recently seen client first, also after many re-inserts and evictions', () => {
    const next = random(11);
    const windows = new FailureWindows(100);
    const reference = new Reference(100);
    for (let i = 0; i < 30_000; i++) {
      // Half the failures come from a small set of returning clients, half from a flood of new ones.
      const key = next() < 0.5 ? `returning-${Math.floor(next() * 60)}` : `flood-${i}`;
      const input: FailureInput = { jail: 'j', key, timeMs: i, weight: 1, findTimeMs: 1e9, maxRetry: 1e9 };
      expect(windows.add(input)).toEqual(reference.add(input));
    }
    const kept = [...windows.entries()].map((entry) => entry.key);
    expect(kept).toEqual([...reference.windows.keys()].map((id) => id.slice(id.indexOf('\u0000') + 1)));
    expect(kept).toHaveLength(100);
  });

  it('forgets the least recently seen client of all jails together', () => {
    const windows = new FailureWindows(3);
    const add = (jail: string, key: string, timeMs: number) =>
      windows.add({ jail, key, timeMs, weight: 1, findTimeMs: 1e9, maxRetry: 1e9 });
    add('sshd', 'a', 1);
    add('web', 'b', 2);
    add('sshd', 'c', 3);
    add('sshd', 'a', 4);
    add('web', 'd', 5); // forgets web/b, the least recently seen
    expect(windows.size).toBe(3);
    expect([...windows.entries()].map((entry) => `${entry.jail}/${entry.key}`).sort()).toEqual([
      'sshd/a',
      'sshd/c',
      'web/d',
    ]);
    add('web', 'e', 6); // forgets sshd/c
    add('web', 'd', 7);
    add('sshd', 'f', 8); // forgets sshd/a
    expect([...windows.entries()].map((entry) => `${entry.jail}/${entry.key}`).sort()).toEqual([
      'sshd/f',
      'web/d',
      'web/e',
    ]);
    expect(add('web', 'e', 9).count).toBe(2);
    expect(add('sshd', 'a', 10).count).toBe(1); // forgotten: counted from scratch (forgets web/d)
    expect(add('web', 'd', 11).count).toBe(1);
  });

  it('under a flood over several jails keeps exactly the most recently seen clients', () => {
    const next = random(13);
    const windows = new FailureWindows(150);
    const reference = new Reference(150);
    for (let i = 0; i < 30_000; i++) {
      const jail = ['sshd', 'web', 'smtp'][Math.floor(next() * 3)] as string;
      const key = next() < 0.6 ? `returning-${Math.floor(next() * 90)}` : `flood-${i}`;
      const maxRetry = next() < 0.1 ? 3 : 1e9;
      const input: FailureInput = { jail, key, timeMs: i, weight: 1, findTimeMs: 1e9, maxRetry };
      expect(windows.add(input), `failure ${i}`).toEqual(reference.add(input));
      expect(windows.size).toBe(reference.windows.size);
    }
    const kept = [...windows.entries()].map((entry) => `${entry.jail}\u0000${entry.key}`).sort();
    expect(kept).toEqual([...reference.windows.keys()].sort());
    windows.clear('web', 'returning-1');
    reference.windows.delete('web\u0000returning-1');
    expect(windows.size).toBe(reference.windows.size);
  });

  it('a flood of IPv4 clients over several jails: same counts and survivors as the plain definition', () => {
    // IPv4 keys (kept by their numbers) next to IPv6 networks and other keys, with evictions,
    // reached thresholds and clears.
    const next = random(17);
    const windows = new FailureWindows(3000);
    const reference = new Reference(3000);
    const address = (n: number) => `${10 + (n >>> 16)}.${(n >>> 8) & 255}.${n & 255}.${n % 7}`;
    for (let i = 0; i < 60_000; i++) {
      const jail = ['sshd', 'web', 'smtp'][Math.floor(next() * 3)] as string;
      const r = next();
      const key =
        r < 0.3
          ? address(Math.floor(next() * 2000))
          : r < 0.8
            ? address(5000 + i)
            : r < 0.9
              ? `2001:db8:${Math.floor(next() * 500).toString(16)}::/64`
              : `returning-${Math.floor(next() * 200)}`;
      const maxRetry = next() < 0.1 ? 3 : 1e9;
      const input: FailureInput = { jail, key, timeMs: i, weight: 1, findTimeMs: 1e9, maxRetry };
      expect(windows.add(input), `failure ${i}`).toEqual(reference.add(input));
      if (next() < 0.01) {
        windows.clear(jail, key);
        reference.windows.delete(`${jail}\u0000${key}`);
      }
      if (i % 1000 === 0) expect(windows.size).toBe(reference.windows.size);
    }
    const kept = [...windows.entries()].map((entry) => `${entry.jail}\u0000${entry.key}`).sort();
    expect(kept).toEqual([...reference.windows.keys()].sort());
    expect(kept.length).toBe(3000);
  });

  it('prune and liveByJail see every jail; clearAll forgets everything', () => {
    const windows = new FailureWindows();
    windows.add({ jail: 'sshd', key: 'a', timeMs: 1000, weight: 1, findTimeMs: 500, maxRetry: 5 });
    windows.add({ jail: 'sshd', key: 'b', timeMs: 1400, weight: 1, findTimeMs: 500, maxRetry: 5 });
    windows.add({ jail: 'web', key: 'a', timeMs: 1400, weight: 1, findTimeMs: 100, maxRetry: 5 });
    expect(windows.liveByJail(1450)).toEqual(
      new Map([
        ['sshd', 2],
        ['web', 1],
      ]),
    );
    expect(windows.liveByJail(1600)).toEqual(new Map([['sshd', 1]]));
    windows.prune(1600);
    expect(windows.size).toBe(1);
    expect([...windows.entries()]).toEqual([{ jail: 'sshd', key: 'b', points: [1400, 1], findTimeMs: 500 }]);
    windows.clearAll();
    expect(windows.size).toBe(0);
    expect(
      windows.add({ jail: 'sshd', key: 'b', timeMs: 1700, weight: 1, findTimeMs: 500, maxRetry: 5 }).count,
    ).toBe(1);
  });

  it('a threshold reached starts a new count for that client only', () => {
    const windows = new FailureWindows();
    const add = (key: string, timeMs: number) =>
      windows.add({ jail: 'j', key, timeMs, weight: 1, findTimeMs: 600_000, maxRetry: 3 });
    expect(add('a', 1).count).toBe(1);
    expect(add('b', 2).count).toBe(1);
    expect(add('a', 3).count).toBe(2);
    expect(add('a', 4)).toEqual({ count: 3, reached: true });
    expect(add('a', 5)).toEqual({ count: 1, reached: false });
    expect(add('b', 6)).toEqual({ count: 2, reached: false });
  });
});
