import { setFlagsFromString } from 'node:v8';
import { RE2 } from '../re2-cache.js';
import { type Token, tokenize } from './regex-syntax.js';

/**
 * A V8 twin of an RE2 pattern: the same language and the same captures, run by V8's own regex
 * engine on the JS string. RE2 stays the judge of what a pattern means and whether it compiles;
 * the twin exists because filling captures is where RE2 is slow from JavaScript: each call copies
 * the line to UTF-8, and its capture pass costs ~3 µs on a short line (its DFA alone says "match"
 * in ~0.2 µs) and ~100 µs on a 3 KB one, where V8 takes a few hundred nanoseconds.
 *
 * V8's engine backtracks, so a twin is only made when it is safe to run on any line:
 *
 * - V8 is told once, for the whole process, to re-run a match that backtracks more than 50,000
 *   times on its linear-time engine (`--enable-experimental-regexp-engine-on-excessive-backtracks`);
 *   a twin is only made of a pattern that engine can run (checked by compiling it with the `l`
 *   flag), so no twin can stall the process whatever the line. That engine cannot run
 *   case-insensitive patterns, back-references or look-arounds; a pattern with a flag group is
 *   not translated at all, and the RE2 program does the work.
 * - Only constructs whose meaning is the same in both engines are translated: `.` becomes
 *   `[^\n]`, `\s` RE2's `[\t\n\f\r ]` (V8's `\s` has Unicode spaces), `\A` `^`, `\z` `$`;
 *   Unicode classes (`\pL`, `\p{Nd}`, inside a class too) become the BMP characters RE2 puts in
 *   them (asked of RE2, see propertyRanges); anything else (POSIX classes, octal escapes, `\C`)
 *   leaves the pattern to RE2.
 * - RE2 works on code points, V8 (without the `u` flag, which its linear engine refuses) on UTF-16
 *   units. They agree on every text without surrogate pairs; {@link JsTwin.wide} says whether the
 *   pattern has a part (`.`, a negated class, `\S`, `\W`, `\D`, a Unicode class) that could
 *   match half of one or that holds characters outside the BMP, and then lines holding a
 *   surrogate go to RE2.
 *
 * Both engines pick the same match (leftmost, alternatives and repetitions in the order written:
 * RE2's "leftmost-first", which is Perl's and JavaScript's), so the captures agree; a differential
 * test holds every bundled filter's twins to that.
 */
export interface JsTwin {
  readonly re: RegExp;
  /** True when a line holding a surrogate pair must go to RE2 instead (see above). */
  readonly wide: boolean;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** True when `text` holds a UTF-16 surrogate (a character outside the BMP, or half of one). */
export function hasSurrogate(text: string): boolean {
  return SURROGATE.test(text);
}

let fallbackState: boolean | undefined;

/**
 * Turns on V8's fallback to its linear-time engine for matches that backtrack too much (for every
 * regex of the process: the fallback gives the same results, only in bounded time). False when
 * this V8 does not have it; then no twins are made.
 */
export function enableLinearFallback(): boolean {
  if (fallbackState !== undefined) return fallbackState;
  try {
    setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
    setFlagsFromString('--enable-experimental-regexp-engine');
    // Both flags took: the `l` flag is recognised only under the second one.
    // biome-ignore lint/complexity/useRegexLiterals: a literal with the `l` flag would not even parse without it
    new RegExp('a', 'l');
    fallbackState = true;
  } catch {
    fallbackState = false;
  }
  return fallbackState;
}

/** The twin of an RE2 `pattern` already accepted by RE2, or `null` when none can safely be made. */
export function jsTwin(pattern: string): JsTwin | null {
  if (process.env.PORTCULLIS_NO_JS_TWIN === '1' || !enableLinearFallback()) return null;
  const translated = translate(tokenize(pattern));
  // Copies (nested counted groups written out) of big classes (Unicode ones) multiply: past this
  // size compiling the twin would cost more than RE2 ever does.
  if (translated === null || translated.source.length > MAX_TWIN_SOURCE) return null;
  try {
    new RegExp(translated.source, 'l'); // throws unless the linear engine can run it
    return { re: new RegExp(translated.source), wide: translated.wide };
  } catch {
    return null;
  }
}

/** The longest twin made, in characters of source. */
const MAX_TWIN_SOURCE = 256 * 1024;

const JS_SPECIAL = new Set([...'\\^$.|?*+()[]{}/']);
const PERL_SPACE = '\\t\\n\\f\\r ';

/** One character as a JS literal outside a class. */
function jsChar(ch: string): string | null {
  if (ch.length !== 1) {
    // A character outside the BMP: two UTF-16 units, grouped so a quantifier takes both.
    if (ch.length !== 2) return null;
    return `(?:${unitEscape(ch.charCodeAt(0))}${unitEscape(ch.charCodeAt(1))})`;
  }
  const code = ch.charCodeAt(0);
  if (code < 0x20 || code > 0x7e) return unitEscape(code);
  return JS_SPECIAL.has(ch) ? `\\${ch}` : ch;
}

function unitEscape(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/** The largest repetition count V8's linear engine takes (`x{1,17}` it refuses). */
const MAX_COUNT = 16;

function translate(tokens: readonly Token[]): { source: string; wide: boolean } | null {
  let source = '';
  let wide = false;
  // The last atom written: where its text starts in `source`, and whether each repetition of it
  // consumes a fixed run of single characters (a char, a set, or a group of those), so that
  // `x{1,32}` can be written `x{1,16}x{0,16}` without changing what matches or is captured.
  let atomStart = -1;
  let atomFixed = false;
  // The last atom is a group closed just now: whether it holds a capture, a counted repetition.
  let atomGroup: { captures: boolean; counted: boolean } | null = null;
  const opens: { at: number; fixed: boolean; captures: boolean; counted: boolean }[] = [];
  for (const token of tokens) {
    switch (token.kind) {
      case 'char': {
        const out = jsChar(token.ch);
        if (out === null) return null;
        atomStart = source.length;
        atomFixed = true;
        atomGroup = null;
        source += out;
        break;
      }
      case 'set': {
        const out = translateSet(token.raw);
        if (out === null) return null;
        atomStart = source.length;
        atomFixed = true;
        atomGroup = null;
        source += out.source;
        wide ||= out.wide;
        break;
      }
      case 'assert':
        if (token.raw === '^' || token.raw === '\\A') source += '^';
        else if (token.raw === '$' || token.raw === '\\z') source += '$';
        else if (token.raw === '\\b' || token.raw === '\\B') source += token.raw;
        else return null;
        atomStart = -1;
        markVariable(opens);
        break;
      case 'open':
        if (token.flags !== '' || token.raw === '(?') return null;
        opens.push({ at: source.length, fixed: !token.capture, captures: false, counted: false });
        if (token.capture) for (const open of opens) open.captures = true;
        source += token.capture ? '(' : '(?:';
        atomStart = -1;
        break;
      case 'flags':
        return null;
      case 'close': {
        const open = opens.pop();
        if (open === undefined) return null;
        source += ')';
        atomStart = open.at;
        atomFixed = open.fixed;
        atomGroup = { captures: open.captures, counted: open.counted };
        if (!open.fixed) markVariable(opens);
        break;
      }
      case 'alt':
        source += '|';
        atomStart = -1;
        markVariable(opens);
        break;
      case 'quant': {
        const q = /^(?:([*+?])|\{(\d+)(?:(,)(\d*))?\})(\??)$/.exec(token.raw);
        if (q === null || atomStart < 0) return null;
        markVariable(opens);
        const lazy = q[5] as string;
        if (q[1] !== undefined) {
          source += token.raw;
          atomStart = -1;
          break;
        }
        const min = Number(q[2]);
        const max = q[3] === undefined ? min : q[4] === '' ? Number.POSITIVE_INFINITY : Number(q[4]);
        for (const open of opens) open.counted = true;
        if (max <= MAX_COUNT) {
          // A counted group inside a counted group (fail2ban's IPv6 `(?:[0-9a-f]{1,4}::?|::){1,7}`):
          // V8's linear engine refuses the product of the counts past 16. Written out one copy a
          // time (`G{1,3}` → `G(?:G(?:G)?)?`, lazy `??`) it takes the same texts in the same order
          // of preference; only a group without captures (copies would renumber them).
          if (atomGroup !== null && atomGroup.counted && !atomGroup.captures && max > 1) {
            source = source.slice(0, atomStart) + unrolled(source.slice(atomStart), min, max, lazy);
          } else source += token.raw;
          atomStart = -1;
          atomGroup = null;
          break;
        }
        if (!atomFixed || min > 1000 || (max !== Number.POSITIVE_INFINITY && max > 1000)) return null;
        source = source.slice(0, atomStart) + repeated(source.slice(atomStart), min, max, lazy);
        atomStart = -1;
        break;
      }
    }
  }
  if (opens.length > 0) return null;
  return { source, wide };
}

/** `group{min,max}` (max finite) as `min` copies and `max - min` nested optional ones. */
function unrolled(group: string, min: number, max: number, lazy: string): string {
  let tail = '';
  for (let k = max - min; k > 0; k--) tail = `(?:${group}${tail})?${lazy}`;
  return group.repeat(min) + tail;
}

/** A group holding an alternation, an anchor or a repetition is not a fixed run of characters. */
function markVariable(opens: { fixed: boolean }[]): void {
  const innermost = opens[opens.length - 1];
  if (innermost !== undefined) innermost.fixed = false;
}

/**
 * `atom{min,max}` in pieces of at most {@link MAX_COUNT}: `x{40}` → `x{16}x{16}x{8}`,
 * `x{1,32}` → `x{1}x{0,15}x{0,16}` (greedy pieces take what the whole would, lazy ones what it
 * would leave: for a fixed-width atom every split of a count reaches the same position).
 */
function repeated(atom: string, min: number, max: number, lazy: string): string {
  const group = atom.startsWith('(') ? atom : `(?:${atom})`;
  let out = '';
  let left = min;
  while (left > 0) {
    const n = Math.min(left, MAX_COUNT);
    out += `${group}{${n}}`;
    left -= n;
  }
  if (max === Number.POSITIVE_INFINITY) return `${out}${group}*${lazy}`;
  let optional = max - min;
  while (optional > 0) {
    const n = Math.min(optional, MAX_COUNT);
    out += `${group}{0,${n}}${lazy}`;
    optional -= n;
  }
  return out;
}

function translateSet(raw: string): { source: string; wide: boolean } | null {
  const property = unicodeProperty(raw, 0);
  if (property !== null && property.length === raw.length) {
    // A Unicode class: its BMP characters, as RE2 itself classes them; a character outside the
    // BMP (which it may hold) is two units here, so lines with one go to RE2.
    const ranges = propertyRanges(property.name, property.negated);
    return ranges === null ? null : { source: `[${ranges}]`, wide: true };
  }
  switch (raw) {
    case '.':
      return { source: '[^\\n]', wide: true };
    case '\\d':
    case '\\w':
      return { source: raw, wide: false };
    case '\\D':
    case '\\W':
      return { source: raw, wide: true };
    case '\\s':
      return { source: `[${PERL_SPACE}]`, wide: false };
    case '\\S':
      return { source: `[^${PERL_SPACE}]`, wide: true };
  }
  if (raw.startsWith('[') && raw.endsWith(']')) return translateClass(raw);
  return null;
}

/** An RE2 class `[...]` as a JS class, or `null` for anything not certainly the same. */
function translateClass(raw: string): { source: string; wide: boolean } | null {
  let i = 1;
  const negated = raw[i] === '^';
  if (negated) i++;
  const end = raw.length - 1;
  let out = '';
  let wide = negated;
  while (i < end) {
    const c = raw[i] as string;
    let item: string | null;
    const property = c === '\\' ? unicodeProperty(raw, i) : null;
    if (property !== null) {
      item = propertyRanges(property.name, property.negated);
      if (item === null) return null;
      wide = true;
      i += property.length;
    } else if (c === '\\') {
      const next = raw[i + 1];
      if (next === undefined) return null;
      if (next === 'd' || next === 'w') {
        item = `\\${next}`;
        i += 2;
      } else if (next === 's') {
        item = PERL_SPACE;
        i += 2;
      } else if (next === 'x') {
        let hex: string;
        if (raw[i + 2] === '{') {
          const close = raw.indexOf('}', i + 3);
          if (close === -1) return null;
          hex = raw.slice(i + 3, close);
          i = close + 1;
        } else {
          hex = raw.slice(i + 2, i + 4);
          i += 4;
        }
        const code = Number.parseInt(hex, 16);
        if (!/^[0-9A-Fa-f]+$/.test(hex) || code > 0xffff || (code >= 0xd800 && code <= 0xdfff)) return null;
        item = unitEscape(code);
      } else if ('ntrfva'.includes(next)) {
        item = next === 'a' ? '\\u0007' : `\\${next}`;
        i += 2;
      } else if (/[A-Za-z0-9]/.test(next)) {
        return null; // \S, \D, \W, \pL, octal, ... inside a class: not translated
      } else {
        item = `\\${next}`;
        i += 2;
      }
    } else if (c === '[') {
      if (raw[i + 1] === ':') return null; // POSIX class
      item = '\\[';
      i++;
    } else {
      const code = raw.codePointAt(i) as number;
      if (code > 0xffff) return null; // a character outside the BMP in a class
      item =
        code < 0x20 || code > 0x7e ? unitEscape(code) : c === ']' || c === '^' || c === '\\' ? `\\${c}` : c;
      // A leading `]` is a literal in RE2; `-` keeps its meaning (range or literal) in both.
      i++;
    }
    out += item;
  }
  if (out === '') return null;
  return { source: `[${negated ? '^' : ''}${out}]`, wide };
}

/** `\pL`, `\p{Nd}`, `\PL`, `\P{Nd}`, `\p{^Nd}` at `at` in `raw`: its name, sense and length. */
function unicodeProperty(raw: string, at: number): { name: string; negated: boolean; length: number } | null {
  const m = /^\\([pP])(?:\{(\^?)([A-Za-z_]+)\}|([A-Za-z]))/.exec(raw.slice(at, at + 40));
  if (m === null) return null;
  return { name: (m[3] ?? m[4]) as string, negated: (m[1] === 'P') !== (m[2] === '^'), length: m[0].length };
}

const PROPERTY_RANGES = new Map<string, string | null>();

/**
 * The BMP characters (surrogates excepted) RE2 puts in Unicode class `name` — or, `negated`, not
 * in it — as the inside of a JS class (`\u0041-\u005a...`). Asked of RE2 itself, once per
 * class, with one replace over the 63,488 characters: the twin classes as the RE2 that runs next
 * to it does, whatever Unicode version either engine carries. `null` when RE2 refuses the name.
 */
function propertyRanges(name: string, negated: boolean): string | null {
  const key = `${negated ? '^' : ''}${name}`;
  const known = PROPERTY_RANGES.get(key);
  if (known !== undefined) return known;
  let ranges: string | null = null;
  try {
    const codes: number[] = [];
    for (let code = 1; code < 0x10000; code++) if (code < 0xd800 || code > 0xdfff) codes.push(code);
    let all = '';
    for (let i = 0; i < codes.length; i += 4096) all += String.fromCharCode(...codes.slice(i, i + 4096));
    // Every character in the class becomes NUL (itself tested alone: it is not in `all`).
    const marked = new RE2(`${negated ? '\\P' : '\\p'}{${name}}`, 'g').replace(all, '\u0000');
    if (marked.length !== all.length) return null;
    const inClass = (i: number) => marked.charCodeAt(i) === 0;
    const nul = new RE2(`^${negated ? '\\P' : '\\p'}{${name}}$`).test('\u0000');
    const parts: string[] = [];
    let from = -1;
    const flush = (to: number) => {
      parts.push(from === to ? unitEscape(from) : `${unitEscape(from)}-${unitEscape(to)}`);
      from = -1;
    };
    if (nul) parts.push(unitEscape(0));
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i] as number;
      if (inClass(i)) {
        if (from === -1) from = code;
        else if (code !== (codes[i - 1] as number) + 1) {
          flush(codes[i - 1] as number);
          from = code;
        }
      } else if (from !== -1) flush(codes[i - 1] as number);
    }
    if (from !== -1) flush(codes[codes.length - 1] as number);
    ranges = parts.length === 0 ? null : parts.join('');
  } catch {
    ranges = null;
  }
  PROPERTY_RANGES.set(key, ranges);
  return ranges;
}
