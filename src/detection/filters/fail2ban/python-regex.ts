import { rewritePythonIdioms } from './python-rewrite.js';

/**
 * Python `re` syntax (as fail2ban writes it, with its tags) to the RE2 syntax portcullis filters
 * use, keeping the meaning or refusing. Only constructs with the same meaning on both engines are
 * rewritten; what RE2 cannot run (back-references, look-around, conditionals, atomic groups,
 * possessive quantifiers, multi-line buffers) is refused with the reason, never approximated.
 *
 * Rewrites:
 *
 * | Python / fail2ban | RE2 / portcullis | why |
 * | --- | --- | --- |
 * | `((?i)x)`, `(?:(?i)x)` | `(?i:x)` | fail2ban itself turns these global flags into local ones |
 * | `\w` `\W` `\d` `\D` | Unicode classes | Python's are Unicode-aware for text, RE2's ASCII-only |
 * | `\s` `\S` | Python's whitespace set (Unicode: `\x1c`-`\x1f`, `\x85`, `\xa0`, `\u2000`-`\u200a`, ...) | RE2's `\s` is `[\t\n\f\r ]` only |
 * | `(?a)`, `(?a:...)` | ASCII classes: `[0-9A-Za-z_]`, `[0-9]`, `[\t\n\v\f\r ]` | Python's ASCII mode, honoured (not dropped) |
 * | `[\S.]`, `[\Wx]` | `(?:[^...]\|[x])` | a negated class inside a class |
 * | `\b` `\B` | kept (ASCII on RE2), with a note | Python's are Unicode: next to a non-ASCII letter RE2 sees a boundary Python does not |
 * | `\Z` | `\z` | end of text |
 * | `{,n}` | `{0,n}` | RE2 reads `{,n}` as literal text |
 * | `\uXXXX`, `\UXXXXXXXX` | `\x{...}` | |
 * | `[` inside a class | `\[` | RE2 would read `[[:alpha:]]` as a POSIX class |
 * | `(?#...)` | (removed) | a comment |
 * | `(?P<ip4>` `(?P<ip6>` `(?P<dns>` | `(?P<host>` | fail2ban's address groups |
 * | `(?P<host>` | `(?P<f2b_host>` | a plain field in fail2ban, the client's IP in portcullis |
 * | `(?P<_x>` | `(?:` | fail2ban's helper groups (only back-references use them) |
 * | `<F-MLFGAINED>` | `<F-NOFAIL>` | a successful login: no failure, forget the session |
 * | `<F-ID/>` `<F-PORT/>` `<F-IP4/>` ... | `<F-ID>\S+</F-ID>` ... | fail2ban's self-closing tags |
 * | `<IP4>` | `(?:::f{4,6}:)?(?P<host>(?:[0-9]{1,3}\.){3}[0-9]{1,3})` | fail2ban's: stops at the dotted quad |
 * | `<IP6>` | `(?P<host>(?:[0-9a-fA-F]{1,4}::?\|::){1,7}(?:[0-9a-fA-F]{1,4}\|:))` | fail2ban's (its look-behind always holds) |
 * | `<ADDR>` | `\[?(?:<IP4>\|<IP6>)\]?` | fail2ban's |
 * | `<HOST>` | `(?:<ADDR>\|<DNS>)` (`<ADDR>` with `usedns = no`) | fail2ban's: `<HOST>(?::\d+)?` leaves the port out |
 * | `<DNS>` | a host-name group | never an IP: such a match is a missed line (`bad host`) |
 * | other `<UPPER>` | `[<]UPPER[>]` | fail2ban leaves unknown tags as literal text |
 * | `(?P<g>x)? ... (?(g)y\|z)` | `(?:(?P<g>x) ... y\|... z)` | written out per choice (python-rewrite.ts) |
 * | `(?:(?! from ).)*?` before ` from ` or `$` | a regex of the texts ` from ` does not start in | the same texts (python-rewrite.ts) |
 */

/** Why a regex cannot be carried over. */
export class UnsupportedRegexError extends Error {}

// fail2ban's address tags, written in Python syntax (translated below like the rest of the regex):
// `ip4`, `ip6` and `dns` groups become portcullis's `host`. Exact token boundaries matter: with
// portcullis's own <HOST> (which takes ':' into the token) `<HOST>(?::\d+)?` would capture the port.
const IP4 = '(?:::f{4,6}:)?(?P<ip4>(?:[0-9]{1,3}\\.){3}[0-9]{1,3})';
const IP6 = '(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:))';
const ADDR = `\\[?(?:${IP4}|${IP6})\\]?`;
const DNS_PY = '(?P<dns>[\\w\\-.^_]*\\w)';
const HOST = `(?:${ADDR}|${DNS_PY})`;
const ADDRESS_TAGS: Record<string, string> = { HOST, ADDR, IP4, IP6 };
const SELF_CLOSING: Record<string, string> = {
  'F-ID/': '<F-ID>\\S+</F-ID>',
  'F-PORT/': '<F-PORT>\\w+</F-PORT>',
  'F-IP4/': IP4,
  'F-IP6/': IP6,
  'F-ADDR/': ADDR,
  'F-DNS/': DNS_PY,
};

const WORD = '\\p{L}\\p{N}_';

export interface TranslateOptions {
  /** The filter's `usedns`: with `no`, `<HOST>` is `<ADDR>` (as in fail2ban). */
  usedns?: string;
  /** Where differences in meaning that do not refuse the regex are told (one sentence each). */
  notes?: Set<string>;
}

/** Python's `\s` for text patterns (`str.isspace()`); RE2's `\s` has only `[\t\n\f\r ]`. */
const SPACE_UNICODE =
  '\\t\\n\\x0B\\f\\r \\x1C-\\x1F\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}';
const SPACE_ASCII = '\\t\\n\\x0B\\f\\r ';
const WORD_ASCII = '0-9A-Za-z_';

export const BOUNDARY_NOTE =
  '\\b and \\B are ASCII on RE2 and Unicode in Python: next to a non-ASCII letter (é, ß, я) RE2 sees a word boundary Python does not, so such a line may match here and not in fail2ban';

/**
 * Translates one fail2ban regex (tags already interpolated, fail2ban tags like `<HOST>` left) to
 * portcullis syntax. Throws {@link UnsupportedRegexError} with the reason.
 */
export function translatePythonRegex(source: string, options: TranslateOptions = {}): string {
  // Conditionals and `(?:(?!text).)*` where they can be written out exactly (python-rewrite.ts).
  const tagged = rewritePythonIdioms(translateTags(source, options.usedns === 'no'));
  const state: SyntaxState = { ascii: false, boundary: false };
  const out = translateSyntax(tagged, state);
  if (state.boundary) options.notes?.add(BOUNDARY_NOTE);
  return out;
}

interface SyntaxState {
  /** Python's ASCII mode (`(?a)`) where the translation is now. */
  ascii: boolean;
  /** A Unicode-mode `\b` or `\B` was kept. */
  boundary: boolean;
}

function translateTags(source: string, noDns: boolean): string {
  return source.replace(
    /(\(\?P)?<(\/?)([A-Za-z][\w-]*\/?)>/g,
    (whole, group: string | undefined, slash: string, name: string) => {
      if (group !== undefined) return whole; // `(?P<name>`: a Python named group
      if (name === 'SKIPLINES')
        throw new UnsupportedRegexError(
          '<SKIPLINES> matches across several buffered lines (maxlines); portcullis matches one line at a time and links lines only by <F-MLFID>',
        );
      if (name === 'SUBNET' || name === 'CIDR' || name === 'F-SUBNET/' || name === 'F-CIDR/')
        throw new UnsupportedRegexError(`<${name}> (a subnet) has no portcullis equivalent`);
      if (slash === '' && SELF_CLOSING[name] !== undefined) return SELF_CLOSING[name] as string;
      if (slash === '' && name === 'DNS') return DNS_PY;
      if (name === 'F-MLFGAINED') return `<${slash}F-NOFAIL>`;
      if (slash === '' && name === 'HOST' && noDns) return ADDR;
      if (slash === '' && ADDRESS_TAGS[name] !== undefined) return ADDRESS_TAGS[name] as string;
      if (/^F-[A-Z0-9_-]+$/.test(name)) return whole;
      if (/^[A-Z][A-Z0-9_-]*$/.test(name) || name.endsWith('/')) return `[<]${slash}${name}[>]`;
      // Lower-case text in angle brackets: a tag fail2ban could not resolve stays literal text.
      return `[<]${slash}${name}[>]`;
    },
  );
}

function translateSyntax(pattern: string, state: SyntaxState): string {
  let out = '';
  let i = 0;
  const n = pattern.length;
  let atStart = true;
  // The ASCII mode outside each open group, restored at its ")".
  const outer: boolean[] = [];
  while (i < n) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const [text, used] = escapeAt(pattern, i, false, state);
      out += text;
      i += used;
    } else if (c === '[') {
      const [text, used] = characterClass(pattern, i, state);
      out += text;
      i += used;
    } else if (c === '(') {
      const rest = pattern.slice(i, i + 64);
      if (rest.startsWith('(?#')) {
        // A removed comment keeps the start-of-pattern state.
        const [, used] = group(pattern, i, atStart);
        i += used;
        continue;
      }
      const [text, used] = group(pattern, i, atStart);
      const inline = /^\(\?([a-zA-Z]+)\)/.exec(rest);
      if (inline !== null) {
        // Global flags at the start: no group opened; (?a) holds for the whole pattern.
        if ((inline[1] as string).includes('a')) state.ascii = true;
      } else {
        outer.push(state.ascii);
        const scoped =
          /^\((?:\?:)?\(\?([a-zA-Z]+)\)/.exec(rest) ?? /^\(\?([a-zA-Z]*)(?:-[a-zA-Z]+)?:/.exec(rest);
        if (scoped !== null && (scoped[1] as string).includes('a')) state.ascii = true;
      }
      out += text;
      i += used;
    } else if (c === ')') {
      if (outer.length > 0) state.ascii = outer.pop() as boolean;
      out += c;
      i++;
    } else if (c === '{') {
      const rep =
        /^\{(\d*),(\d*)\}/.exec(pattern.slice(i, i + 24)) ?? /^\{(\d+)\}/.exec(pattern.slice(i, i + 24));
      if (rep !== null) {
        const text = rep[0].startsWith('{,') ? `{0${rep[0].slice(1)}` : rep[0];
        out += text;
        i += rep[0].length;
      } else {
        out += '\\{';
        i++;
      }
      if (pattern[i] === '+' && rep !== null) throw possessive();
    } else if ((c === '*' || c === '+' || c === '?') && pattern[i + 1] === '+') {
      throw possessive();
    } else {
      out += c;
      i++;
    }
    atStart = false;
  }
  return out;
}

function possessive(): UnsupportedRegexError {
  return new UnsupportedRegexError(
    'possessive quantifiers (*+, ++, ?+) need backtracking control RE2 has not',
  );
}

/**
 * An escape at `i`; returns [RE2 text, characters used]. Inside a class, a negated class (`\S`,
 * `\W`) comes back as `[^...]`, which {@link characterClass} turns into an alternative.
 */
function escapeAt(pattern: string, i: number, inClass: boolean, state: SyntaxState): [string, number] {
  const next = pattern[i + 1];
  if (next === undefined) throw new UnsupportedRegexError('the pattern ends with a lone backslash');
  const ascii = state.ascii;
  const word = ascii ? WORD_ASCII : WORD;
  const space = ascii ? SPACE_ASCII : SPACE_UNICODE;
  switch (next) {
    case 'w':
      return [inClass ? word : `[${word}]`, 2];
    case 'W':
      return [`[^${word}]`, 2];
    case 'd':
      if (ascii) return [inClass ? '0-9' : '[0-9]', 2];
      return ['\\p{Nd}', 2];
    case 'D':
      if (ascii) return ['[^0-9]', 2];
      return ['\\P{Nd}', 2];
    case 's':
      return [inClass ? space : `[${space}]`, 2];
    case 'S':
      return [`[^${space}]`, 2];
    case 'Z':
      return ['\\z', 2];
    case 'b':
      if (inClass) return ['\\x08', 2];
      if (!ascii) state.boundary = true;
      return ['\\b', 2];
    case 'B':
      if (!ascii) state.boundary = true;
      return ['\\B', 2];
    case 'u':
    case 'U': {
      const digits = next === 'u' ? 4 : 8;
      const hex = pattern.slice(i + 2, i + 2 + digits);
      if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex))
        throw new UnsupportedRegexError(`\\${next} needs ${digits} hex digits`);
      return [`\\x{${hex}}`, 2 + digits];
    }
    case 'N':
      throw new UnsupportedRegexError('\\N{name} (a character by name) has no RE2 equivalent');
    case 'p':
    case 'P':
      throw new UnsupportedRegexError(`\\${next} is not Python syntax`);
    default:
      break;
  }
  if (next >= '1' && next <= '9' && !inClass)
    throw new UnsupportedRegexError(
      `back-reference \\${next}: RE2 cannot match what an earlier group captured`,
    );
  if (next === '0' || (inClass && next >= '1' && next <= '7')) {
    const octal = /^[0-7]{1,3}/.exec(pattern.slice(i + 1)) as RegExpExecArray;
    return [`\\x{${Number.parseInt(octal[0], 8).toString(16)}}`, 1 + octal[0].length];
  }
  return [`\\${next}`, 2];
}

/** A character class at `i`; returns [RE2 text, characters used]. */
function characterClass(pattern: string, start: number, state: SyntaxState): [string, number] {
  let i = start + 1;
  let out = '';
  let negated = false;
  // `\S`, `\W` inside: negated classes, which RE2 cannot nest; `[\S.]` is `(?:[^space]|[.])`.
  const negatedParts: string[] = [];
  if (pattern[i] === '^') {
    negated = true;
    i++;
  }
  if (pattern[i] === ']') {
    out += '\\]';
    i++;
  }
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === ']') {
      const used = i + 1 - start;
      if (negatedParts.length === 0) return [`[${negated ? '^' : ''}${out}]`, used];
      // `[^\Wf]`: a word character other than the ASCII ones listed (fail2ban's rewritten
      // "a word other than `found`", see python-rewrite.ts), written without class subtraction.
      if (
        negated &&
        negatedParts.length === 1 &&
        negatedParts[0] === `[^${state.ascii ? WORD_ASCII : WORD}]`
      ) {
        const except = wordExcept(out, state.ascii);
        if (except !== null) return [except, used];
      }
      if (negated)
        throw new UnsupportedRegexError(
          `${pattern.slice(start, i + 1)}: \\S or \\W inside a negated class has no RE2 equivalent`,
        );
      return [`(?:${[...negatedParts, ...(out === '' ? [] : [`[${out}]`])].join('|')})`, used];
    }
    if (c === '\\') {
      const [text, used] = escapeAt(pattern, i, true, state);
      if (text.startsWith('[^')) negatedParts.push(text);
      else out += text;
      i += used;
      continue;
    }
    out += c === '[' ? '\\[' : c;
    i++;
  }
  throw new UnsupportedRegexError('a character class is not closed by "]"');
}

/**
 * The word characters (`\w`) other than `chars`, ASCII letters, digits and `_` only (else null):
 * in ASCII mode the class of the rest; otherwise letters but those (`[^\P{L}f]`: neither a
 * non-letter nor `f`), numbers but those, and `_` unless listed.
 */
function wordExcept(chars: string, ascii: boolean): string | null {
  if (!/^[0-9A-Za-z_]+$/.test(chars)) return null;
  if (ascii) {
    let rest = '';
    for (const c of '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_')
      if (!chars.includes(c)) rest += c;
    return rest === '' ? null : `[${rest}]`;
  }
  const letters = chars.replace(/[^A-Za-z]/g, '');
  const digits = chars.replace(/[^0-9]/g, '');
  const parts = [
    letters === '' ? '\\p{L}' : `[^\\P{L}${letters}]`,
    digits === '' ? '\\p{N}' : `[^\\P{N}${digits}]`,
    ...(chars.includes('_') ? [] : ['_']),
  ];
  return `(?:${parts.join('|')})`;
}

/** A group opening at `i`; returns [RE2 text, characters used]. */
function group(pattern: string, i: number, atStart: boolean): [string, number] {
  const rest = pattern.slice(i, i + 64);
  // fail2ban's own rewrite of ((?i)...) and (?:(?i)...) into (?i:...).
  const global = /^\((?:\?:)?\(\?([a-zA-Z]+)\)/.exec(rest);
  if (global !== null) return [`(?${flags(global[1] as string)}:`, global[0].length];
  if (pattern[i + 1] !== '?') return ['(', 1];
  const named = /^\(\?P<([A-Za-z_]\w*)>/.exec(rest);
  if (named !== null) return [namedGroup(named[1] as string), named[0].length];
  if (rest.startsWith('(?P=')) {
    const name = /^\(\?P=(\w+)\)/.exec(rest)?.[1] ?? '';
    throw new UnsupportedRegexError(
      `back-reference (?P=${name}): RE2 cannot match what an earlier group captured`,
    );
  }
  if (rest.startsWith('(?=') || rest.startsWith('(?!'))
    throw new UnsupportedRegexError(
      `look-ahead ${rest.slice(0, 3)}...): RE2 has no look-around; dropping it would change what matches`,
    );
  if (rest.startsWith('(?<=') || rest.startsWith('(?<!'))
    throw new UnsupportedRegexError(
      `look-behind ${rest.slice(0, 4)}...): RE2 has no look-around; dropping it would change what matches`,
    );
  if (rest.startsWith('(?('))
    throw new UnsupportedRegexError('conditional group (?(name)yes|no): RE2 has no conditionals');
  if (rest.startsWith('(?>'))
    throw new UnsupportedRegexError('atomic group (?>...): RE2 has no backtracking control');
  if (rest.startsWith('(?#')) {
    const end = pattern.indexOf(')', i);
    if (end === -1) throw new UnsupportedRegexError('a (?#comment) is not closed');
    return ['', end + 1 - i];
  }
  if (rest.startsWith('(?<')) {
    const name = /^\(\?<([A-Za-z_]\w*)>/.exec(rest);
    if (name !== null)
      throw new UnsupportedRegexError('(?<name>...) is not Python syntax (use (?P<name>...))');
  }
  const scoped = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]+))?:/.exec(rest);
  if (scoped !== null) {
    const on = flags(scoped[1] as string);
    const off = scoped[2] === undefined ? '' : flags(scoped[2]);
    return [on === '' && off === '' ? '(?:' : `(?${on}${off === '' ? '' : `-${off}`}:`, scoped[0].length];
  }
  const inline = /^\(\?([a-zA-Z]+)\)/.exec(rest);
  if (inline !== null) {
    if (!atStart)
      throw new UnsupportedRegexError(
        `global flags ${inline[0]} not at the start of the pattern (Python 3.11 refuses them too)`,
      );
    const on = flags(inline[1] as string);
    return [on === '' ? '' : `(?${on})`, inline[0].length];
  }
  throw new UnsupportedRegexError(`unknown group syntax ${JSON.stringify(rest.slice(0, 6))}`);
}

function flags(text: string): string {
  let out = '';
  for (const flag of text) {
    if (flag === 'i' || flag === 's' || flag === 'm') out += flag;
    else if (flag === 'a' || flag === 'u' || flag === 'L') continue;
    else if (flag === 'x') throw new UnsupportedRegexError('verbose mode (?x) is not supported by RE2');
    else throw new UnsupportedRegexError(`unknown flag "${flag}"`);
  }
  return out;
}

function namedGroup(name: string): string {
  if (name === 'ip4' || name === 'ip6' || name === 'dns') return '(?P<host>';
  if (name === 'host') return '(?P<f2b_host>';
  if (name.startsWith('_')) return '(?:';
  return `(?P<${name}>`;
}
