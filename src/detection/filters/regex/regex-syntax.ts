/**
 * Just enough of RE2's syntax to rewrite and analyse a pattern RE2 has already accepted: which
 * groups capture (and their names), where the anchors are, where a top-level alternation splits,
 * and which literal text every match must contain (the prefilter that keeps most lines away from
 * RE2 altogether). The tokenizer never decides validity; RE2 does.
 */

export type Token =
  /** One literal character (`ch`), however it was written (`a`, `\.`, `\x41`, inside `\Q...\E`). */
  | { kind: 'char'; raw: string; ch: string }
  /** Something that matches one character from a set: `.`, `\d`, `[a-z]`, `\pL`. */
  | { kind: 'set'; raw: string }
  /** A zero-width assertion: `^`, `$`, `\A`, `\z`, `\b`, `\B`. */
  | { kind: 'assert'; raw: string }
  /** `(`, `(?:`, `(?i:`, `(?P<name>`, `(?<name>`. */
  | { kind: 'open'; raw: string; capture: boolean; name: string | undefined; flags: string }
  /** `(?i)`: flags for the rest of the enclosing group. */
  | { kind: 'flags'; raw: string; flags: string }
  | { kind: 'close'; raw: string }
  | { kind: 'alt'; raw: string }
  /** `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, each optionally lazy; `min` is the least repetitions. */
  | { kind: 'quant'; raw: string; min: number };

const SET_ESCAPES = new Set(['d', 'D', 's', 'S', 'w', 'W', 'C']);
const ASSERT_ESCAPES = new Set(['A', 'z', 'b', 'B']);
const CONTROL_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', a: '\x07' };

/** Splits a pattern into tokens. Unbalanced or odd input yields best-effort tokens, never throws. */
export function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const length = pattern.length;
  while (i < length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) {
        tokens.push({ kind: 'char', raw: '\\', ch: '\\' });
        i++;
      } else if (next === 'Q') {
        let end = pattern.indexOf('\\E', i + 2);
        if (end === -1) end = length;
        for (const ch of pattern.slice(i + 2, end)) tokens.push({ kind: 'char', raw: escapeLiteral(ch), ch });
        i = Math.min(end + 2, length);
      } else if (next === 'p' || next === 'P') {
        const end = pattern[i + 2] === '{' ? pattern.indexOf('}', i + 2) + 1 || length : i + 3;
        tokens.push({ kind: 'set', raw: pattern.slice(i, end) });
        i = end;
      } else if (next === 'x') {
        let end: number;
        let hex: string;
        if (pattern[i + 2] === '{') {
          end = pattern.indexOf('}', i + 2) + 1 || length;
          hex = pattern.slice(i + 3, end - 1);
        } else {
          end = i + 4;
          hex = pattern.slice(i + 2, end);
        }
        const code = Number.parseInt(hex, 16);
        const raw = pattern.slice(i, end);
        if (Number.isFinite(code)) tokens.push({ kind: 'char', raw, ch: String.fromCodePoint(code) });
        else tokens.push({ kind: 'set', raw });
        i = end;
      } else if (SET_ESCAPES.has(next)) {
        tokens.push({ kind: 'set', raw: `\\${next}` });
        i += 2;
      } else if (ASSERT_ESCAPES.has(next)) {
        tokens.push({ kind: 'assert', raw: `\\${next}` });
        i += 2;
      } else if (next in CONTROL_ESCAPES) {
        tokens.push({ kind: 'char', raw: `\\${next}`, ch: CONTROL_ESCAPES[next] as string });
        i += 2;
      } else if (next >= '0' && next <= '9') {
        // Octal escapes (and back-references, which RE2 has already refused).
        let end = i + 2;
        while (end < length && end < i + 4 && /[0-7]/.test(pattern[end] as string)) end++;
        tokens.push({ kind: 'set', raw: pattern.slice(i, end) });
        i = end;
      } else {
        tokens.push({ kind: 'char', raw: `\\${next}`, ch: next });
        i += 2;
      }
    } else if (c === '[') {
      const end = classEnd(pattern, i);
      tokens.push({ kind: 'set', raw: pattern.slice(i, end) });
      i = end;
    } else if (c === '(') {
      if (pattern[i + 1] !== '?') {
        tokens.push({ kind: 'open', raw: '(', capture: true, name: undefined, flags: '' });
        i++;
        continue;
      }
      const named = /^\(\?P?<([A-Za-z0-9_]+)>/.exec(pattern.slice(i, i + 80));
      if (named !== null) {
        tokens.push({ kind: 'open', raw: named[0], capture: true, name: named[1], flags: '' });
        i += named[0].length;
        continue;
      }
      const flags = /^\(\?([A-Za-z-]*)([:)])/.exec(pattern.slice(i, i + 20));
      if (flags !== null) {
        const raw = flags[0];
        if (flags[2] === ')') tokens.push({ kind: 'flags', raw, flags: flags[1] as string });
        else tokens.push({ kind: 'open', raw, capture: false, name: undefined, flags: flags[1] as string });
        i += raw.length;
        continue;
      }
      // Look-around and other constructs RE2 refuses; keep the text for error messages.
      tokens.push({ kind: 'open', raw: '(?', capture: false, name: undefined, flags: '' });
      i += 2;
    } else if (c === ')') {
      tokens.push({ kind: 'close', raw: ')' });
      i++;
    } else if (c === '|') {
      tokens.push({ kind: 'alt', raw: '|' });
      i++;
    } else if (c === '*' || c === '+' || c === '?') {
      const lazy = pattern[i + 1] === '?' ? '?' : '';
      tokens.push({ kind: 'quant', raw: c + lazy, min: c === '+' ? 1 : 0 });
      i += 1 + lazy.length;
    } else if (c === '{') {
      const rep = /^\{(\d+)(?:,(\d*))?\}\??/.exec(pattern.slice(i, i + 24));
      if (rep !== null) {
        tokens.push({ kind: 'quant', raw: rep[0], min: Number(rep[1]) });
        i += rep[0].length;
      } else {
        tokens.push({ kind: 'char', raw: '\\{', ch: '{' });
        i++;
      }
    } else if (c === '^' || c === '$') {
      tokens.push({ kind: 'assert', raw: c });
      i++;
    } else if (c === '.') {
      tokens.push({ kind: 'set', raw: '.' });
      i++;
    } else {
      const ch = String.fromCodePoint(pattern.codePointAt(i) as number);
      tokens.push({ kind: 'char', raw: ch, ch });
      i += ch.length;
    }
  }
  return tokens;
}

/** The index just past the `]` closing the class that opens at `start`. */
function classEnd(pattern: string, start: number): number {
  let i = start + 1;
  if (pattern[i] === '^') i++;
  if (pattern[i] === ']') i++; // a leading ] is literal
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') i += 2;
    else if (c === '[' && pattern[i + 1] === ':') {
      const end = pattern.indexOf(':]', i + 2);
      i = end === -1 ? i + 1 : end + 2;
    } else if (c === ']') return i + 1;
    else i++;
  }
  return pattern.length;
}

/** Escapes one character for use as a literal in RE2 syntax. */
export function escapeLiteral(ch: string): string {
  return /[\\^$.|?*+()[\]{}]/.test(ch) ? `\\${ch}` : ch;
}

/** Escapes a string for use as a literal in RE2 syntax. */
export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

export function render(tokens: readonly Token[]): string {
  let out = '';
  for (const token of tokens) out += token.raw;
  return out;
}

/** The index of the `close` token matching the `open` at `openIndex` (or `tokens.length`). */
export function matchingClose(tokens: readonly Token[], openIndex: number): number {
  let depth = 0;
  for (let i = openIndex; i < tokens.length; i++) {
    const kind = (tokens[i] as Token).kind;
    if (kind === 'open') depth++;
    else if (kind === 'close' && --depth === 0) return i;
  }
  return tokens.length;
}

/** Splits at `|` tokens that are not inside a group. */
export function splitTopLevel(tokens: readonly Token[]): Token[][] {
  const parts: Token[][] = [[]];
  let depth = 0;
  for (const token of tokens) {
    if (token.kind === 'open') depth++;
    else if (token.kind === 'close') depth--;
    if (token.kind === 'alt' && depth === 0) parts.push([]);
    else (parts[parts.length - 1] as Token[]).push(token);
  }
  return parts;
}

/**
 * Literal strings every match must contain, longest first (at most `limit`), or `[]` when none
 * can be proven (a case-insensitive flag, a top-level alternation, ...). Used only to skip lines
 * before RE2 sees them, so being conservative only costs speed.
 */
export function requiredLiterals(tokens: readonly Token[], limit = 2): string[] {
  if (
    tokens.some(
      (t) => (t.kind === 'flags' || t.kind === 'open') && t.flags.includes('i') && !t.flags.startsWith('-'),
    )
  ) {
    return [];
  }
  const runs: string[] = [];
  collect(tokens, 0, tokens.length, runs);
  return [...new Set(runs)]
    .filter((run) => run.length >= 2)
    .sort((a, b) => b.length - a.length)
    .slice(0, limit);
}

function collect(tokens: readonly Token[], from: number, to: number, runs: string[]): void {
  // An alternation at this level: no single literal is required (a common one could be, but is rare).
  let depth = 0;
  for (let i = from; i < to; i++) {
    const kind = (tokens[i] as Token).kind;
    if (kind === 'open') depth++;
    else if (kind === 'close') depth--;
    else if (kind === 'alt' && depth === 0) return;
  }
  let run = '';
  const flush = () => {
    if (run !== '') runs.push(run);
    run = '';
  };
  for (let i = from; i < to; i++) {
    const token = tokens[i] as Token;
    if (token.kind === 'open') {
      const close = Math.min(matchingClose(tokens, i), to);
      const quant = tokens[close + 1];
      flush();
      const optional = quant?.kind === 'quant' && quant.min === 0;
      if (!optional) collect(tokens, i + 1, close, runs);
      i = close + (quant?.kind === 'quant' ? 1 : 0);
      continue;
    }
    const quant = tokens[i + 1];
    const quantified = quant?.kind === 'quant';
    if (token.kind === 'char') {
      if (quantified && quant.min === 0) {
        flush();
      } else {
        run += token.ch;
        if (quantified) flush();
      }
    } else {
      flush();
    }
    if (quantified) i++;
  }
  flush();
}
