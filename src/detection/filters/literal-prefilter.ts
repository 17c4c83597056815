import { type Token, tokenize } from './regex/regex-syntax.js';

/**
 * A cheap test that must pass for an RE2 pattern to have any chance of matching: the literal
 * text every match contains, found by reading the pattern. `union(?:\s|%20)+select` cannot
 * match a text without "union" in it; `(?:'|"|%27|%22)\s*(?:or|and)` not one without a quote;
 * so a benign request skips the native call (and its UTF-8 copy of the text) altogether.
 *
 * The requirement is a conjunction of clauses, each a set of literals of which a match contains
 * at least one as a substring, compared case-insensitively (a superset of what a case-sensitive
 * pattern needs, so never wrong). Whatever the reader does not understand (a large or negated
 * class, `\pL`, an optional part, a non-ASCII literal) requires nothing, which is always true;
 * so the prefilter can only let too much through, never reject a text the pattern matches.
 */
export type Prefilter = (text: string) => boolean;

/** Prefilters by pattern: a jail set compiles the same pattern for several fields and jails. */
const built = new Map<string, Prefilter | null>();
const MAX_BUILT = 10_000;

/** The prefilter of `pattern`, or `undefined` when no useful requirement can be proven. */
export function literalPrefilter(pattern: string): Prefilter | undefined {
  let prefilter = built.get(pattern);
  if (prefilter === undefined) {
    if (built.size >= MAX_BUILT) built.clear();
    prefilter = buildPrefilter(pattern) ?? null;
    built.set(pattern, prefilter);
  }
  return prefilter ?? undefined;
}

function buildPrefilter(pattern: string): Prefilter | undefined {
  const clauses = requiredClauses(pattern);
  if (clauses.length === 0) return undefined;
  const tests = clauses.map(clauseTest);
  if (tests.length === 1) return tests[0];
  return (text) => {
    for (const test of tests) if (!test(text)) return false;
    return true;
  };
}

/**
 * The strongest clauses (at most `limit`) every match of `pattern` satisfies: lowercased
 * literals, one of which occurs in any matching text. `[]` when nothing useful is proven.
 */
export function requiredClauses(pattern: string, limit = 3, caseSensitive = false): string[][] {
  let info: Info;
  try {
    const tokens = tokenize(pattern);
    // Case-sensitive literals are only proven for a pattern that never ignores case.
    if (
      caseSensitive &&
      tokens.some((t) => (t.kind === 'flags' || t.kind === 'open') && t.flags.includes('i'))
    )
      return [];
    const parser = new Parser(tokens, caseSensitive);
    info = parser.alternation();
    if (!parser.done()) return []; // an unbalanced `)`: RE2 refused it already; prove nothing
  } catch {
    return [];
  }
  const clauses = [...info.clauses];
  if (info.exact !== null && validClause(info.exact)) clauses.push(info.exact);
  const unique = new Map<string, string[]>();
  for (const clause of clauses) {
    const sorted = [...new Set(clause)].sort();
    if (strength(sorted) >= MIN_STRENGTH) unique.set(sorted.join('\0'), sorted);
  }
  return [...unique.values()]
    .sort((a, b) => strength(b) - strength(a) || a.length - b.length)
    .slice(0, limit);
}

/** What a part of a pattern is known to match. */
interface Info {
  /** Every string it can match (lowercased), when that is a short list; else `null`. */
  exact: string[] | null;
  /** Clauses (sets of literals) that every match satisfies. */
  clauses: string[][];
}

const MAX_EXACT = 32;
/** A clause as weak as one letter costs more to test than it saves; one common mark does not. */
const MIN_STRENGTH = 1.5;
/** Characters of a small class listed one by one (`[sS]`, `[\t\n\r]`, `['"]`). */
const MAX_CLASS = 8;
const NOTHING: Info = { exact: null, clauses: [] };
/** RE2's `\s`: `[\t\n\f\r ]` (no `\v`). */
const PERL_SPACE = ['\t', '\n', '\f', '\r', ' '];
const EMPTY: Info = { exact: [''], clauses: [] };

/**
 * How selective a clause is: its weakest literal. Letters and digits count least, then the marks
 * every benign request is full of (`/`, `.`, `=`, `&`, `;`, `(`: URLs, cookies, user agents),
 * then the rare ones (`'`, `"`, `<`, `%`, `|`, `` ` ``, `$`).
 */
function strength(clause: readonly string[]): number {
  let weakest = Number.POSITIVE_INFINITY;
  for (const literal of clause) {
    let score = 0;
    for (let i = 0; i < literal.length; i++) {
      const code = literal.charCodeAt(i);
      const alphanumeric =
        (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57);
      score += alphanumeric ? 1 : COMMON_MARKS.includes(literal[i] as string) ? 1.5 : 4;
    }
    weakest = Math.min(weakest, score);
  }
  return weakest;
}

const COMMON_MARKS = '/.=&?-_();:, +';

/** Selectivity against cost: a clause of a hundred literals costs more to look for than two. */
function worth(clause: readonly string[]): number {
  return strength(clause) - 0.5 * Math.log2(clause.length);
}

function validClause(clause: readonly string[]): boolean {
  return clause.length > 0 && !clause.includes('');
}

function bestClause(info: Info): string[] | undefined {
  const candidates = [...info.clauses];
  if (info.exact !== null && validClause(info.exact)) candidates.push(info.exact);
  let best: string[] | undefined;
  for (const clause of candidates) {
    if (best === undefined || strength(clause) > strength(best)) best = clause;
  }
  return best;
}

/**
 * The clause an alternation satisfies: one clause of each branch, united. Which one of each is
 * chosen for the strongest union (tried exhaustively while the choices are few): the union is
 * as weak as its weakest literal, so a branch's best clause alone is not always the best pick.
 */
function unionClause(branches: readonly Info[]): string[][] {
  const options: string[][][] = [];
  let combinations = 1;
  for (const branch of branches) {
    const own = [...branch.clauses];
    if (branch.exact !== null && validClause(branch.exact)) own.push(branch.exact);
    if (own.length === 0) return [];
    options.push(own);
    combinations *= own.length;
  }
  if (combinations > 256) {
    const union = new Set<string>();
    for (const branch of branches) for (const literal of bestClause(branch) as string[]) union.add(literal);
    return [[...union]];
  }
  const unions = new Map<string, string[]>();
  const pick = (at: number, union: readonly string[]): void => {
    if (at === options.length) {
      const clause = [...new Set(union)].sort();
      unions.set(clause.join('\0'), clause);
      return;
    }
    for (const clause of options[at] as string[][]) pick(at + 1, [...union, ...clause]);
  };
  pick(0, []);
  // Every union holds; the two strongest are kept (the conjunction is what the prefilter tests).
  return [...unions.values()].sort((a, b) => worth(b) - worth(a)).slice(0, 2);
}

function cross(left: readonly string[], right: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of left) for (const b of right) out.push(a + b);
  return [...new Set(out)];
}

/** Recursive descent over RE2 tokens; throws on anything it does not expect. */
class Parser {
  readonly #tokens: readonly Token[];
  readonly #caseSensitive: boolean;
  #at = 0;

  constructor(tokens: readonly Token[], caseSensitive: boolean) {
    this.#tokens = tokens;
    this.#caseSensitive = caseSensitive;
  }

  done(): boolean {
    return this.#at === this.#tokens.length;
  }

  alternation(): Info {
    const branches = [this.sequence()];
    while (this.#tokens[this.#at]?.kind === 'alt') {
      this.#at++;
      branches.push(this.sequence());
    }
    if (branches.length === 1) return branches[0] as Info;
    let exact: string[] | null = [];
    for (const branch of branches) {
      if (exact === null || branch.exact === null) exact = null;
      else exact = [...new Set([...exact, ...branch.exact])];
      if (exact !== null && exact.length > MAX_EXACT) exact = null;
    }
    return { exact, clauses: unionClause(branches) };
  }

  sequence(): Info {
    const clauses: string[][] = [];
    let run: string[] = [''];
    let allExact = true;
    for (;;) {
      const token = this.#tokens[this.#at];
      if (token === undefined || token.kind === 'alt' || token.kind === 'close') break;
      const item = this.quantified();
      clauses.push(...item.clauses);
      if (item.exact !== null && run.length * item.exact.length <= MAX_EXACT) {
        run = cross(run, item.exact);
        continue;
      }
      allExact = false;
      if (validClause(run)) clauses.push(run);
      run = item.exact ?? [''];
    }
    if (allExact) return { exact: run, clauses };
    if (validClause(run)) clauses.push(run);
    return { exact: null, clauses };
  }

  quantified(): Info {
    let info = this.atom();
    for (;;) {
      const token = this.#tokens[this.#at];
      if (token?.kind !== 'quant') return info;
      this.#at++;
      if (token.min === 0) {
        const optional = token.raw === '?' || token.raw === '??';
        info =
          optional && info.exact !== null && info.exact.length < MAX_EXACT
            ? { exact: [...new Set([...info.exact, ''])], clauses: [] }
            : NOTHING;
      } else {
        // At least once: whatever one repetition needs, the whole needs.
        const clauses = [...info.clauses];
        if (info.exact !== null && validClause(info.exact)) clauses.push(info.exact);
        info = { exact: null, clauses };
      }
    }
  }

  atom(): Info {
    const token = this.#tokens[this.#at++];
    if (token === undefined) throw new Error('unexpected end');
    switch (token.kind) {
      case 'char':
        return literal(token.ch, this.#caseSensitive);
      case 'set':
        return token.raw === '\\s'
          ? { exact: [...PERL_SPACE], clauses: [] }
          : classInfo(token.raw, this.#caseSensitive);
      case 'assert':
      case 'flags':
        return EMPTY;
      case 'open': {
        if (token.raw === '(?') throw new Error('unsupported group');
        const inner = this.alternation();
        if (this.#tokens[this.#at]?.kind !== 'close') throw new Error('unbalanced group');
        this.#at++;
        return inner;
      }
      default:
        throw new Error(`unexpected ${token.kind}`);
    }
  }
}

function literal(ch: string, caseSensitive: boolean): Info {
  // Non-ASCII letters fold in ways not worth proving equal in RE2 and V8: require nothing.
  if (ch.length !== 1 || ch.charCodeAt(0) > 0x7e || ch.charCodeAt(0) < 0x09) return NOTHING;
  return { exact: [caseSensitive ? ch : ch.toLowerCase()], clauses: [] };
}

/** A short class of plain ASCII characters (`[sS]`, `['"]`, `[\t\n\r]`, `[a-c]`), else nothing. */
function classInfo(raw: string, caseSensitive: boolean): Info {
  if (!raw.startsWith('[') || raw.startsWith('[^') || !raw.endsWith(']')) return NOTHING;
  const body = raw.slice(1, -1);
  const chars = new Set<string>();
  let spaces = false;
  let i = 0;
  const next = (): string | undefined => {
    const c = body[i];
    if (c === undefined) return undefined;
    if (c !== '\\') {
      i++;
      return c;
    }
    const escaped = body[i + 1];
    i += 2;
    if (escaped === undefined) return undefined;
    const control: Record<string, string> = { n: '\n', t: '\t', r: '\r', f: '\f', v: '\v' };
    if (escaped in control) return control[escaped];
    // A class escape (\d, \pL), hex or octal: not listed here.
    if (/[A-Za-z0-9]/.test(escaped)) return undefined;
    return escaped;
  };
  if (body.length === 0 || body.includes('[:')) return NOTHING;
  while (i < body.length) {
    if (body.startsWith('\\s', i) && body[i + 2] !== '-') {
      spaces = true;
      i += 2;
      continue;
    }
    const from = next();
    if (from === undefined) return NOTHING;
    if (body[i] === '-' && i + 1 < body.length) {
      i++;
      const to = next();
      if (to === undefined) return NOTHING;
      const lo = from.charCodeAt(0);
      const hi = to.charCodeAt(0);
      if (hi < lo || hi - lo > MAX_CLASS) return NOTHING;
      for (let code = lo; code <= hi; code++) chars.add(String.fromCharCode(code));
    } else chars.add(from);
    if (chars.size > MAX_CLASS * 2) return NOTHING;
  }
  if (spaces) for (const ch of PERL_SPACE) chars.add(ch);
  const lowered = new Set<string>();
  for (const ch of chars) {
    if (ch.length !== 1 || ch.charCodeAt(0) > 0x7e || ch.charCodeAt(0) < 0x09) return NOTHING;
    lowered.add(caseSensitive ? ch : ch.toLowerCase());
  }
  if (lowered.size > MAX_CLASS + PERL_SPACE.length) return NOTHING;
  return { exact: [...lowered], clauses: [] };
}

/**
 * What a text holds, worked out once for all the clauses that test it (an event's URL is tested
 * by every payload rule's patterns): which characters and which pairs of adjacent characters
 * occur, folded as RE2's `(?i)` folds them (ASCII letters to lowercase, the Kelvin sign to `k`,
 * the long s to `s`), and the text lowercased for the literals longer than a pair. A clause then
 * costs a table lookup per literal, whatever the length of the text.
 */
interface TextFacts {
  text: string | undefined;
  generation: number;
  /** `generation` at index `a * 128 + b` for each pair `ab`, at `PAIRS + a` for each character. */
  readonly seen: Uint32Array;
  lowered: string | undefined;
}

const PAIRS = 128 * 128;
const SLOTS = 4;
const slots: TextFacts[] = Array.from({ length: SLOTS }, () => ({
  text: undefined,
  generation: 0,
  seen: new Uint32Array(PAIRS + 128),
  lowered: undefined,
}));
let nextSlot = 0;

function factsOf(text: string): TextFacts {
  for (const slot of slots) if (slot.text === text) return slot;
  const slot = slots[nextSlot] as TextFacts;
  nextSlot = (nextSlot + 1) % SLOTS;
  if (slot.generation === 0xffffffff) {
    slot.seen.fill(0);
    slot.generation = 0;
  }
  const generation = ++slot.generation;
  const seen = slot.seen;
  slot.text = text;
  slot.lowered = undefined;
  let previous = -1;
  for (let i = 0; i < text.length; i++) {
    const current = folded(text.charCodeAt(i));
    seen[PAIRS + current] = generation;
    if (previous !== -1) seen[previous * 128 + current] = generation;
    previous = current;
  }
  return slot;
}

/** The text lowercased, the long s as `s` (`toLowerCase` keeps every ASCII occurrence). */
function loweredOf(facts: TextFacts): string {
  if (facts.lowered === undefined) {
    const lowered = (facts.text as string).toLowerCase();
    facts.lowered = lowered.includes('\u017f') ? lowered.replaceAll('\u017f', 's') : lowered;
  }
  return facts.lowered;
}

/**
 * Whether a text contains one of a clause's literals, ignoring case as RE2's `(?i)` does: a
 * lookup of each literal's first character or first pair in the text's facts, then (for a
 * longer literal whose pair occurs) a search of the lowercased text.
 */
function clauseTest(clause: readonly string[]): Prefilter {
  const keys = Int32Array.from(clause, (literal) =>
    literal.length === 1
      ? PAIRS + literal.charCodeAt(0)
      : literal.charCodeAt(0) * 128 + literal.charCodeAt(1),
  );
  const longer = clause.map((literal) => (literal.length > 2 ? literal : undefined));
  return (text) => {
    const facts = factsOf(text);
    const { seen, generation } = facts;
    for (let i = 0; i < keys.length; i++) {
      if (seen[keys[i] as number] !== generation) continue;
      const literal = longer[i];
      if (literal === undefined || loweredOf(facts).includes(literal)) return true;
    }
    return false;
  };
}

/** A UTF-16 unit as the lowercase ASCII character it matches case-insensitively; 0 for none. */
function folded(code: number): number {
  if (code < 128) return code >= 65 && code <= 90 ? code + 32 : code;
  if (code === 0x212a) return 107; // KELVIN SIGN folds to k
  if (code === 0x017f) return 115; // LATIN SMALL LETTER LONG S folds to s
  return 0;
}
