import type { DateCut } from '../../../sources/log/dates.js';
import { literalPrefilter, requiredClauses } from '../literal-prefilter.js';
import { escapeRegex } from './regex-syntax.js';

/**
 * The cheap test a log line must pass before a regex runs on it: the literal text every match of
 * the regex contains, proven from the pattern (see literal-prefilter.ts), as a conjunction of
 * clauses each naming literals one of which must occur. Log regexes rarely ignore case, so the
 * literals are compared exactly (`includes`), which is stronger and cheaper than the
 * case-insensitive test the HTTP rules need; a pattern with `(?i)` gets that one instead.
 * Like every prefilter it can only let too much through: a line it rejects cannot match.
 */
export interface LinePrefilter {
  /** True unless the text certainly cannot match. */
  readonly test: (text: string) => boolean;
  /**
   * The strongest clause's literals when compared exactly: a text without any of them cannot
   * match (a filter finds several regexes' keys in one scan, see {@link KeyScanner}). `null`
   * when the prefilter ignores case.
   */
  readonly key: readonly string[] | null;
  /** The clauses other than `key`, for a text known to hold one of `key`'s literals. */
  readonly rest: (text: string) => boolean;
}

/** Texts longer than this are searched for keys around their blanks only (when every key has one). */
const SPACED_MIN_LENGTH = 512;
/** Clauses with more literals than this are tested by one regex (fixed strings) instead of a loop. */
const LOOP_MAX = 4;
const ALWAYS = (): boolean => true;

/** The prefilter of an RE2 pattern, or `null` when nothing useful is proven (every line passes). */
export function linePrefilter(pattern: string): LinePrefilter | null {
  const clauses = requiredClauses(pattern, 3, true);
  if (clauses.length === 0) {
    const folded = literalPrefilter(pattern);
    return folded === undefined ? null : { test: folded, key: null, rest: folded };
  }
  // A literal holding another of its clause adds nothing ("for " covers "for invalid user ");
  // clauses stay strongest first.
  const minimal = clauses.map((clause) =>
    clause.filter((literal) => !clause.some((other) => other !== literal && literal.includes(other))),
  );
  const test = allOf(minimal.map(anyLiteral));
  const rest = minimal.length === 1 ? ALWAYS : allOf(minimal.slice(1).map(anyLiteral));
  return { test, key: minimal[0] as string[], rest };
}

function allOf(tests: ((text: string) => boolean)[]): (text: string) => boolean {
  if (tests.length === 1) return tests[0] as (text: string) => boolean;
  return (text) => {
    for (let i = 0; i < tests.length; i++) if (!(tests[i] as (text: string) => boolean)(text)) return false;
    return true;
  };
}

/**
 * Which of several regexes can match a text, from their keys in one pass: a regex whose key
 * literals are all absent cannot match. The keys form one alternation of fixed strings, longest
 * first, searched from each position a key starts at (so overlapping keys are all seen: at one
 * position the longest key is reported, and it stands for every key it contains).
 */
export class KeyScanner {
  readonly #re: RegExp;
  /** Key literal → indexes (into the owners' list) of the owners it proves possible. */
  readonly #owners = new Map<string, number[]>();
  readonly #unkeyed: number[];
  readonly #seen: Uint32Array;
  #generation = 0;
  #sorted = true;
  /** Every key holds a blank (see candidates), and the longest key's length. */
  readonly #spaced: boolean;
  readonly #longest: number;
  /**
   * Each pair of adjacent characters of a key literal (`c1 << 16 | c2`) → where it occurs in which
   * literal: a key created by cutting a date out of a line holds the pair of characters at the join.
   */
  readonly #pairs = new Map<number, { literal: string; at: number; owners: number[] }[]>();
  /** 1 where some pair of #pairs has these low bytes (`(c1 & 255) << 8 | c2 & 255`): most joins miss it. */
  readonly #pairBytes = new Uint8Array(65536);
  /** Owners of a one-character key that is a blank (a cut joined by a blank creates one). */
  readonly #blankOwners: number[];

  /** `keys[i]`: the key of owner `i`, `null` for an owner that is always a candidate. */
  constructor(keys: readonly (readonly string[] | null)[]) {
    const literals = [...new Set(keys.flatMap((key) => key ?? []))];
    for (const literal of literals) {
      const owners: number[] = [];
      keys.forEach((key, i) => {
        if (key?.some((k) => literal.includes(k))) owners.push(i);
      });
      this.#owners.set(literal, owners);
    }
    this.#unkeyed = keys.flatMap((key, i) => (key === null ? [i] : []));
    this.#spaced = literals.length > 0 && literals.every((literal) => literal.includes(' '));
    this.#longest = Math.max(0, ...literals.map((literal) => literal.length));
    this.#seen = new Uint32Array(keys.length);
    for (const literal of literals) {
      const owners = this.#owners.get(literal) as number[];
      for (let at = 0; at + 1 < literal.length; at++) {
        const pair = (literal.charCodeAt(at) << 16) | literal.charCodeAt(at + 1);
        const entries = this.#pairs.get(pair) ?? [];
        if (entries.length === 0) this.#pairs.set(pair, entries);
        this.#pairBytes[pairByteIndex(pair)] = 1;
        entries.push({ literal, at, owners });
      }
    }
    this.#blankOwners = this.#owners.get(' ') ?? [];
    this.#re =
      literals.length === 0
        ? /$^/g
        : new RegExp(
            [...literals]
              .sort((a, b) => b.length - a.length)
              .map(escapeRegex)
              .join('|'),
            'g',
          );
  }

  /** Indexes of the owners that may match `text`, ascending; reuses `into`. */
  candidates(text: string, into: number[]): number[] {
    this.#begin(into);
    this.#search(text, into);
    return this.#finish(into);
  }

  /**
   * {@link candidates} of the text `cut` makes of `line` (its date cut out), without making it: a
   * key in that text lies in one side (so in `line`, searched whole: a key found only in the date
   * is a harmless extra candidate) or across the join, where its characters are compared one by one.
   */
  candidatesOfCut(line: string, cut: DateCut, into: number[]): number[] {
    this.#begin(into);
    this.#search(line, into);
    const { before, sep, after } = cut;
    if (before > 0 && after < line.length) {
      // A key across the join holds the pair of characters on each side of it (with a blank
      // between them: one of the two pairs the blank makes, or the blank alone).
      const first = line.charCodeAt(after);
      const last = line.charCodeAt(before - 1);
      if (sep === '') this.#acrossAt(line, cut, (last << 16) | first, before - 1, into);
      else {
        this.#acrossAt(line, cut, (last << 16) | 32, before - 1, into);
        this.#acrossAt(line, cut, (32 << 16) | first, before, into);
        this.#add(this.#blankOwners, into);
      }
    }
    return this.#finish(into);
  }

  /** Adds the owners of keys holding `pair` where their occurrence would cross the join. */
  #acrossAt(line: string, cut: DateCut, pair: number, pairAt: number, into: number[]): void {
    if (this.#pairBytes[pairByteIndex(pair)] === 0) return;
    const entries = this.#pairs.get(pair);
    if (entries === undefined) return;
    const { before, sep, after } = cut;
    // Positions in the cut text: [0, before) is the line's, then `sep`, then the line from `after`.
    const sideEnd = before + sep.length;
    const length = line.length - after + sideEnd;
    for (const { literal, at, owners } of entries) {
      const start = pairAt - at;
      if (start < 0 || start + literal.length > length) continue;
      let same = true;
      for (let k = 0; k < literal.length && same; k++) {
        const p = start + k;
        const code =
          p < before ? line.charCodeAt(p) : p < sideEnd ? 32 : line.charCodeAt(after + p - sideEnd);
        same = code === literal.charCodeAt(k);
      }
      if (same) this.#add(owners, into);
    }
  }

  #begin(into: number[]): void {
    // Emptied by `pop` (inlined): setting `length` is a call into the runtime, even to 0.
    while (into.length !== 0) into.pop();
    if (this.#generation === 0xffffffff) {
      this.#seen.fill(0);
      this.#generation = 0;
    }
    this.#generation++;
    this.#sorted = true;
  }

  #finish(into: number[]): number[] {
    if (this.#unkeyed.length > 0) {
      for (const owner of this.#unkeyed) into.push(owner);
      this.#sorted = false;
    }
    if (!this.#sorted) into.sort((a, b) => a - b);
    return into;
  }

  #search(text: string, into: number[]): void {
    if (this.#spaced && text.length > SPACED_MIN_LENGTH) {
      // Every key holds a blank, so an occurrence lies within a key's length of a blank: only the
      // text around the blanks is searched (a long line is mostly one blob without any).
      const reach = this.#longest - 1;
      // Blanks every few characters (free text) would put the whole line in windows anyway: past
      // this many, one search of the whole line costs less than the search for each blank.
      let budget = text.length >> 4;
      let from = -1;
      let to = -1;
      for (let blank = text.indexOf(' '); blank !== -1; blank = text.indexOf(' ', blank + 1)) {
        if (--budget < 0) {
          // Start again over the whole line; owners already seen are not added twice.
          this.#scan(text, into);
          from = -1;
          break;
        }
        const start = blank - reach;
        if (from !== -1 && start > to) {
          this.#scan(text.slice(Math.max(0, from), to), into);
          from = -1;
        }
        if (from === -1) from = start;
        to = blank + reach + 1;
      }
      if (from !== -1) this.#scan(text.slice(Math.max(0, from), Math.min(text.length, to)), into);
    } else this.#scan(text, into);
  }

  /** Adds `owners` to `into`, those already there excepted. */
  #add(owners: readonly number[], into: number[]): void {
    const generation = this.#generation;
    const seen = this.#seen;
    for (const owner of owners) {
      if (seen[owner] === generation) continue;
      seen[owner] = generation;
      if (into.length > 0 && (into[into.length - 1] as number) > owner) this.#sorted = false;
      into.push(owner);
    }
  }

  /** Adds the owners of every key that starts anywhere in `text` to `into` (once each). */
  #scan(text: string, into: number[]): void {
    const re = this.#re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      re.lastIndex = m.index + 1;
      this.#add(this.#owners.get(m[0]) as number[], into);
    }
  }
}

/** Where a pair of characters (`c1 << 16 | c2`) falls in KeyScanner's table of pairs' low bytes. */
function pairByteIndex(pair: number): number {
  return ((pair >>> 8) & 0xff00) | (pair & 0xff);
}

/** A test for "the text contains one of these literals". */
export function anyLiteral(literals: readonly string[]): (text: string) => boolean {
  if (literals.length === 1) {
    const only = literals[0] as string;
    return (text) => text.includes(only);
  }
  if (literals.length <= LOOP_MAX) {
    return (text) => {
      for (let i = 0; i < literals.length; i++) if (text.includes(literals[i] as string)) return true;
      return false;
    };
  }
  // Fixed strings only: the engine's work is bounded by the text's length times the literals'.
  const re = new RegExp(
    [...literals]
      .sort((a, b) => b.length - a.length)
      .map(escapeRegex)
      .join('|'),
  );
  return (text) => re.test(text);
}
