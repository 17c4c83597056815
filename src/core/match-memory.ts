import { detach } from './detach.js';

/**
 * What a client was seen doing, kept per jail and client key until a ban needs it: fail2ban's
 * `<matches>`, the log lines (or requests, or connection events) that led to a ban, for the mail,
 * the webhook and the command action. No I/O.
 *
 * Every part is bounded, since every byte of it comes from the attacker: each match is cut to
 * {@link MATCH_LIMITS.chars} characters, each key keeps its last {@link MATCH_LIMITS.perKey}
 * matches inside the jail's `findtime`, at most {@link MATCH_LIMITS.keys} keys are kept (the least
 * recently seen goes first) and no more than {@link MATCH_LIMITS.totalChars} characters in all.
 */

/** The bounds of a {@link MatchMemory}; the defaults. */
export interface MatchLimits {
  /** Matches kept per client key, the newest. Default 10. */
  perKey: number;
  /** Characters kept per match (a longer one is cut, ending with `…`). Default 1024. */
  chars: number;
  /** Client keys kept; past it, the least recently seen is forgotten. Default 10,000. */
  keys: number;
  /** Characters kept in all (about twice as many bytes at most); oldest keys go first. Default 4 Mi. */
  totalChars: number;
}

export const MATCH_LIMITS: Readonly<MatchLimits> = Object.freeze({
  perKey: 10,
  chars: 1024,
  keys: 10_000,
  totalChars: 4 * 1024 * 1024,
});

/** Action kinds that show the matches (`sms` stays short; firewalls have no use for them). */
const SHOWS_MATCHES: ReadonlySet<string> = new Set(['command', 'email', 'webhook']);

/**
 * True when some action of the jail shows the matches: only then are they worth keeping (or, for a
 * source, building). Takes any jail config (`JailConfig`): only its action kinds are read.
 */
export function keepsMatches(jail: { readonly actions: readonly { readonly kind: string }[] }): boolean {
  for (const action of jail.actions) if (SHOWS_MATCHES.has(action.kind)) return true;
  return false;
}

interface Entry {
  /** Oldest first, as given (cut); made safe to show when taken. */
  lines: string[];
  times: number[];
  chars: number;
  findTimeMs: number;
  lastMs: number;
}

/** Per (jail, client key), the last matches within findtime. See the module comment. */
export class MatchMemory {
  readonly #entries = new Map<string, Entry>();
  readonly #limits: MatchLimits;
  #chars = 0;
  /**
   * Where eviction goes on: a live iterator over the map. Everything before it was evicted or
   * re-inserted behind it, so its next key is the least recently seen. A fresh `keys()` would
   * step over every deleted slot left at the front each time: O(n) per eviction under a flood.
   */
  #cursor: IterableIterator<string> | undefined;

  constructor(limits: Partial<MatchLimits> = {}) {
    this.#limits = { ...MATCH_LIMITS, ...limits };
  }

  /** Keys held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Characters held in all. */
  get chars(): number {
    return this.#chars;
  }

  /** Keeps `line` as the newest match of `key` in `jail`, seen at `timeMs`. */
  add(jail: string, key: string, line: string, timeMs: number, findTimeMs: number): void {
    const id = `${jail}\u0000${key}`;
    const limits = this.#limits;
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      entry = { lines: [], times: [], chars: 0, findTimeMs, lastMs: timeMs };
    } else {
      // Re-inserted below: Map order stays "least recently seen first".
      this.#entries.delete(id);
    }
    entry.findTimeMs = findTimeMs;
    entry.lastMs = Math.max(entry.lastMs, timeMs);
    const kept = copyCut(line, limits.chars);
    entry.lines.push(kept);
    entry.times.push(timeMs);
    entry.chars += kept.length;
    this.#chars += kept.length;
    const cutoff = entry.lastMs - findTimeMs;
    let drop = 0;
    while (
      drop < entry.lines.length &&
      (entry.lines.length - drop > limits.perKey || (entry.times[drop] as number) <= cutoff)
    )
      drop++;
    if (drop > 0) this.#drop(entry, drop);
    this.#entries.set(id, entry);
    while (this.#entries.size > limits.keys || this.#chars > limits.totalChars) {
      const oldest = this.#oldest();
      if (oldest === id && this.#entries.size === 1) {
        // One key over the whole budget (a tiny `totalChars`): keep its newest match only.
        if (entry.lines.length > 1) this.#drop(entry, entry.lines.length - 1);
        break;
      }
      this.#forget(oldest);
    }
  }

  /**
   * Removes and returns the matches of `key` in `jail` still inside findtime (of the newest one),
   * oldest first, each made safe to show ({@link showableMatch}); `undefined` when none.
   */
  take(jail: string, key: string): string[] | undefined {
    const id = `${jail}\u0000${key}`;
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    this.#forget(id);
    const cutoff = entry.lastMs - entry.findTimeMs;
    const out: string[] = [];
    for (let i = 0; i < entry.lines.length; i++)
      if ((entry.times[i] as number) > cutoff) out.push(showableMatch(entry.lines[i] as string));
    return out.length === 0 ? undefined : out;
  }

  /** Forgets the matches of `key` in `jail`. */
  clear(jail: string, key: string): void {
    this.#forget(`${jail}\u0000${key}`);
  }

  /** Forgets keys with no match inside their findtime at `nowMs`. */
  prune(nowMs: number): void {
    for (const [id, entry] of this.#entries) if (entry.lastMs <= nowMs - entry.findTimeMs) this.#forget(id);
  }

  clearAll(): void {
    this.#entries.clear();
    this.#chars = 0;
    this.#cursor = undefined;
  }

  /** The least recently seen key (the map is not empty). */
  #oldest(): string {
    let next = this.#cursor?.next();
    if (next === undefined || next.done === true) {
      this.#cursor = this.#entries.keys();
      next = this.#cursor.next();
    }
    return next.value as string;
  }

  #drop(entry: Entry, count: number): void {
    let chars = 0;
    // `shift` on these short arrays allocates nothing (`splice` returns a new array).
    for (let i = 0; i < count; i++) {
      chars += (entry.lines.shift() as string).length;
      entry.times.shift();
    }
    entry.chars -= chars;
    this.#chars -= chars;
  }

  #forget(id: string): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    this.#chars -= entry.chars;
  }
}

/**
 * `line` cut to `max` characters (`…` last when cut, never half a surrogate pair), as a string of
 * its own: a line split from a large read shares that read's memory, which keeping it would keep.
 */
function copyCut(line: string, max: number): string {
  let text = line;
  if (text.length > max) {
    let end = max - 1;
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    text = `${text.slice(0, end)}…`;
  }
  return detach(text);
}

/**
 * Characters that could break a message's layout or hide text: C0 controls (newline, CR, ESC, ...),
 * DEL, C1 controls, Unicode line and paragraph separators and the bidirectional overrides.
 */
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r' };

/**
 * One match as it may be shown anywhere: one line, every control or layout character written as a
 * visible escape (`\n`, `\r`, `\x1b`, `\u2028`). Escaping for a format (HTML, Slack) is the
 * renderer's job; this makes sure a match is exactly one line of plain characters.
 */
export function showableMatch(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named !== undefined) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
