import { createRequire } from 'node:module';
import type RE2Class from 're2';

/**
 * The RE2 class. re2 is CommonJS: `require` skips the scan of its exports that an `import` costs
 * (~5 ms of every CLI call's start-up); it is the same module instance either way.
 */
export const RE2 = createRequire(import.meta.url)('re2') as typeof RE2Class;
/** An RE2 program. */
export type RE2 = RE2Class;

/**
 * Every RE2 program of the filters, compiled once per process: the config check compiles a
 * pattern to validate it, and the jail built from that config gets the same program back instead
 * of compiling it again (so does a reload that keeps the pattern). RE2 objects without the `g`
 * or `y` flag keep no state between matches, so sharing them is safe.
 */
const programs = new Map<string, RE2 | Error>();
/** Distinct patterns kept; past it the oldest are forgotten (and compiled again if used). */
const MAX_PROGRAMS = 8_192;

/** The RE2 program of `pattern`; throws RE2's own error (a `SyntaxError`) when it cannot compile. */
export function re2Program(pattern: string): RE2 {
  let program = programs.get(pattern);
  if (program === undefined) {
    try {
      program = new RE2(pattern);
    } catch (error) {
      program = error instanceof Error ? error : new Error(String(error));
    }
    if (programs.size >= MAX_PROGRAMS) {
      const oldest = programs.keys().next().value as string;
      programs.delete(oldest);
      costs.delete(oldest);
    }
    programs.set(pattern, program);
  }
  if (program instanceof Error) throw program;
  return program;
}

/** How many programs are cached (for tests). */
export function re2ProgramCount(): number {
  return programs.size;
}

/**
 * Matching cost, in ns per KiB of input, above which a pattern is refused at load. RE2 is linear,
 * but its constant depends on the program: a counted repetition after a star (`[ab]*a[ab]{20}K`)
 * makes the DFA's states exponential; RE2 thrashes its DFA cache, then falls back to the NFA.
 * Measured on the 2-core machine these were chosen on: ~400 000 ns/KiB for that pattern, against
 * 300-45 000 for the bundled rules. At this limit a 4 KiB header (the scan limit) costs a jail
 * 1.2 ms.
 */
export const RE2_HARD_LIMIT_NS_PER_KIB = 300_000;
/** Cost above which a pattern is accepted with a config warning: over twice a bundled rule's. */
export const RE2_SOFT_LIMIT_NS_PER_KIB = 100_000;

/** The limits {@link re2Cost} judges by. */
export interface Re2BudgetLimits {
  /** ns per KiB above which a pattern is accepted with a warning. */
  readonly softNsPerKiB: number;
  /** ns per KiB above which a pattern is refused. */
  readonly hardNsPerKiB: number;
}

let limits: Re2BudgetLimits = {
  softNsPerKiB: RE2_SOFT_LIMIT_NS_PER_KIB,
  hardNsPerKiB: RE2_HARD_LIMIT_NS_PER_KIB,
};

/**
 * Replaces the limits for this process and returns the previous ones: for tests and benchmarks
 * (a cost is a timing, so a test that needs a verdict sets limits far from the figure). The
 * configuration does not expose them. Verdicts of patterns already measured follow at once.
 */
export function setRe2BudgetLimits(next: Re2BudgetLimits): Re2BudgetLimits {
  const previous = limits;
  limits = { ...next };
  return previous;
}

/** What the probe found about a pattern (see {@link re2Cost}). */
export interface Re2Cost {
  /** Estimated ns per KiB of a worst-case-ish input (the slowest alphabet's cheapest warm run). */
  readonly nsPerKiB: number;
  /** `refused` above the hard limit ({@link RE2_HARD_LIMIT_NS_PER_KIB}), `slow` above the soft one. */
  readonly verdict: 'ok' | 'slow' | 'refused';
}

/** Measured ns per KiB, by pattern (forgotten with the program). */
const costs = new Map<string, number>();

/** Bytes of one probe input: small enough that even a refused pattern costs < 1 ms per run. */
const PROBE_BYTES = 1_024;
/**
 * Timed runs per probe alphabet after the warm-up, at most; the cheapest counts (noise only adds).
 * A DFA that fits RE2's cache gets cheaper run after run (the states it built stay), one that
 * does not stays as slow: a few runs tell them apart.
 */
const PROBE_RUNS = 6;
/** Wall-clock budget of the whole probe of one pattern; past it, what was measured stands. */
const PROBE_BUDGET_NS = 3_000_000;
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

/**
 * Measures how much matching `pattern` costs, once per pattern (cached with the program). Each
 * probe input is 1 KiB drawn from one alphabet taken from the pattern: the members of each of its
 * character classes (`[ab]`, `\w`, `.`), its literal characters, both together, and printable
 * ASCII. The DFA is slowest on text that keeps it inside the pattern's classes, so the slowest of
 * those is the estimate. Each alphabet gets a warm-up run (RE2 builds DFA states on first use, a
 * cost paid once) and then the cheapest of three to six fresh inputs counts. The probe stops as
 * soon as the verdict is `refused` or its 3 ms budget is spent (three runs past it at most); an input
 * that matches stops RE2 early, so the figure is then a lower bound. It is a timing: a pattern near
 * a limit may land on either side of it from one start to the next. Throws as {@link re2Program}.
 */
export function re2Cost(pattern: string): Re2Cost {
  const nsPerKiB = costs.get(pattern) ?? measure(pattern);
  const verdict = nsPerKiB > limits.hardNsPerKiB ? 'refused' : nsPerKiB > limits.softNsPerKiB ? 'slow' : 'ok';
  return { nsPerKiB, verdict };
}

/**
 * A pattern every machine runs cheaply, timed next to a slow verdict: on a loaded machine (CI, a
 * busy host) every timing is inflated, and a bundled rule must not be refused because the probe
 * was descheduled. ~7-15 µs per KiB on the machine the limits were chosen on.
 */
const REFERENCE_PATTERN = '[ab]*a[ab]{2}K';
const REFERENCE_NOMINAL_NS_PER_KIB = 12_000;
/** Extra probes of a pattern whose first figure was over the soft limit. */
const CONFIRM_ROUNDS = 3;

function measure(pattern: string): number {
  let nsPerKiB = measureOnce(pattern);
  // Over a limit: confirm, scaled down by how much slower than nominal the machine runs right now
  // (never scaled up: an idle fast machine keeps the absolute figure). The cheapest round counts.
  for (let round = 0; round < CONFIRM_ROUNDS && nsPerKiB > limits.softNsPerKiB; round++) {
    // Fresh texts each round: RE2 keeps the DFA states it built, so repeating the same inputs
    // would measure a warm cache, not what new attacker input costs.
    const seed = 0x9e3779b9 + 7919 * (round + 1);
    const reference = measureOnce(REFERENCE_PATTERN, seed);
    const slowdown = Math.max(1, reference / REFERENCE_NOMINAL_NS_PER_KIB);
    nsPerKiB = Math.min(nsPerKiB, Math.round(measureOnce(pattern, seed) / slowdown));
  }
  costs.set(pattern, nsPerKiB);
  return nsPerKiB;
}

function measureOnce(pattern: string, seed = 0x9e3779b9): number {
  const re = re2Program(pattern);
  const started = process.hrtime.bigint();
  const random = prng(seed);
  let worst = 0;
  const spent = (): boolean => Number(process.hrtime.bigint() - started) > PROBE_BUDGET_NS;
  for (const [i, alphabet] of probeAlphabets(pattern).entries()) {
    if (i > 0 && spent()) break; // a pause before the first run must not leave nothing measured
    re.test(probeText(alphabet, random));
    let best = Number.POSITIVE_INFINITY;
    // At least three runs unless one is cheap: a pause (GC, another process) inflates only some.
    for (let run = 0; run < PROBE_RUNS && !(run >= 3 && spent()); run++) {
      const text = probeText(alphabet, random);
      const t0 = process.hrtime.bigint();
      re.test(text);
      best = Math.min(best, Number(process.hrtime.bigint() - t0));
      // Far below the soft limit: more runs cannot change the verdict.
      if (best < limits.softNsPerKiB / 4) break;
    }
    worst = Math.max(worst, (best * 1_024) / PROBE_BYTES);
    if (worst > limits.hardNsPerKiB) break;
  }
  return Math.round(worst);
}

/**
 * The budget's word on `pattern`: `undefined` within the soft limit, else a message naming the
 * pattern and the figure (`level` says whether it is a config error or a warning). Throws as
 * {@link re2Program} does.
 */
export function re2BudgetProblem(
  pattern: string,
): { readonly level: 'error' | 'warning'; readonly message: string } | undefined {
  const cost = re2Cost(pattern);
  if (cost.verdict === 'ok') return undefined;
  const perKiB = `${(cost.nsPerKiB / 1_000).toFixed(0)} µs per KiB of input`;
  if (cost.verdict === 'refused') {
    return {
      level: 'error',
      message:
        `regex ${JSON.stringify(pattern)} is too slow to run on every request: ${perKiB} ` +
        `(limit ${limits.hardNsPerKiB / 1_000} µs); a counted repetition after a star or an ` +
        `open class (like "[ab]*a[ab]{20}") makes RE2 fall back to its slow engine: anchor it, ` +
        `or shorten the count`,
    };
  }
  return {
    level: 'warning',
    message: `regex ${JSON.stringify(pattern)} is slow: ${perKiB} (bundled rules take under 50; refused above ${limits.hardNsPerKiB / 1_000})`,
  };
}

/** xorshift32: probe inputs must be the same on every run, so the figures are comparable. */
function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

function probeText(alphabet: string, random: () => number): string {
  let text = '';
  for (let i = 0; i < PROBE_BYTES; i++) text += alphabet[Math.floor(random() * alphabet.length)];
  return text;
}

const CLASS_ESCAPES: Readonly<Record<string, string>> = {
  d: '0123456789',
  w: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_',
  s: ' \t',
};

/**
 * Alphabets to draw probe inputs from: each character class's members (ASCII only; negated
 * classes and `.` give printable ASCII), the literal characters, the two together, and printable
 * ASCII. A rough reading of the pattern, enough to find the text that keeps the DFA busy.
 */
function probeAlphabets(pattern: string): string[] {
  const classes = new Set<string>();
  const literals = new Set<string>();
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      const members = CLASS_ESCAPES[next.toLowerCase()];
      if (members !== undefined) classes.add(next === next.toLowerCase() ? members : PRINTABLE);
      else if (/^[^A-Za-z0-9]$/.test(next)) literals.add(next);
      i += 2;
    } else if (c === '[') {
      const end = classEnd(pattern, i);
      classes.add(classMembers(pattern.slice(i + 1, end)));
      i = end + 1;
    } else if (c === '{' && /^\{\d+(?:,\d*)?\}/.test(pattern.slice(i))) {
      i = pattern.indexOf('}', i) + 1;
    } else if (c === '(' && pattern[i + 1] === '?') {
      const group = /^\(\?(?:P?<[^>]*>|[a-zA-Z-]*[:)])/.exec(pattern.slice(i));
      i += group === null ? 2 : group[0].length;
    } else {
      if (c === '.') classes.add(PRINTABLE);
      else if (!'()|*+?^$'.includes(c)) literals.add(c);
      i++;
    }
  }
  const literal = [...literals];
  const members = [...new Set([...classes].join(''))];
  const alphabets = new Set<string>();
  // A match ends the search early; without its last literal (`K` of `[ab]*a[ab]{20}K`) the text
  // keeps the DFA in the pattern's middle, which is where counted repetitions explode. A filler
  // from the classes (or a space) keeps a one-letter remainder from being a single state.
  const filler = members.find((m) => !literals.has(m)) ?? ' ';
  for (const drop of literal.slice().reverse().slice(0, 4)) {
    alphabets.add([...new Set([...literal.filter((l) => l !== drop), filler])].join(''));
  }
  for (const members of classes) if (members.length > 0) alphabets.add(members);
  if (literal.length > 0) alphabets.add(literal.join(''));
  alphabets.add([...new Set([...members, ...literal])].join(''));
  alphabets.add(PRINTABLE);
  return [...alphabets].filter((a) => a.length > 0).slice(0, 10);
}

/** Index of the `]` closing the class opened at `open` (a leading `]` or `^]` is a member). */
function classEnd(pattern: string, open: number): number {
  let i = open + 1;
  if (pattern[i] === '^') i++;
  if (pattern[i] === ']') i++;
  while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
  return Math.min(i, pattern.length);
}

function classMembers(body: string): string {
  if (body.startsWith('^')) return PRINTABLE;
  const out = new Set<string>();
  for (let i = 0; i < body.length; i++) {
    let c = body[i] as string;
    if (c === '\\') {
      const next = body[++i] ?? '';
      const members = CLASS_ESCAPES[next.toLowerCase()];
      if (members !== undefined) {
        for (const m of next === next.toLowerCase() ? members : PRINTABLE) out.add(m);
        continue;
      }
      c = next;
    }
    const to = body[i + 2];
    if (body[i + 1] === '-' && to !== undefined && to !== ']') {
      const a = c.charCodeAt(0);
      const b = to.charCodeAt(0);
      for (let code = a; code <= Math.min(b, a + 94); code++) {
        if (code >= 32 && code < 127) out.add(String.fromCharCode(code));
      }
      i += 2;
    } else if (c.charCodeAt(0) >= 32 && c.charCodeAt(0) < 127) {
      out.add(c);
    }
  }
  return [...out].join('');
}
