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
 * | `<DNS>` | a host-name group | never an IP: such a match is a missed line (`bad host`) |
 * | other `<UPPER>` | `[<]UPPER[>]` | fail2ban leaves unknown tags as literal text |
 */

/** Why a regex cannot be carried over. */
export class UnsupportedRegexError extends Error {}

const HOST_TAGS = new Set(['HOST', 'ADDR', 'IP4', 'IP6']);
const SELF_CLOSING: Record<string, string> = {
  'F-ID/': '<F-ID>\\S+</F-ID>',
  'F-PORT/': '<F-PORT>\\w+</F-PORT>',
  'F-IP4/': '<IP4>',
  'F-IP6/': '<IP6>',
  'F-ADDR/': '<ADDR>',
};
const DNS = '(?P<host>[\\p{L}\\p{N}_\\-.^]*[\\p{L}\\p{N}_])';

const WORD = '\\p{L}\\p{N}_';

/**
 * Translates one fail2ban regex (tags already interpolated, fail2ban tags like `<HOST>` left) to
 * portcullis syntax. Throws {@link UnsupportedRegexError} with the reason.
 */
export function translatePythonRegex(source: string): string {
  const tagged = translateTags(source);
  return translateSyntax(tagged);
}

function translateTags(source: string): string {
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
      if (name === 'DNS' || name === 'F-DNS/') return DNS;
      if (name === 'F-MLFGAINED') return `<${slash}F-NOFAIL>`;
      if (slash === '' && HOST_TAGS.has(name)) return whole;
      if (/^F-[A-Z0-9_-]+$/.test(name)) return whole;
      if (/^[A-Z][A-Z0-9_-]*$/.test(name) || name.endsWith('/')) return `[<]${slash}${name}[>]`;
      // Lower-case text in angle brackets: a tag fail2ban could not resolve stays literal text.
      return `[<]${slash}${name}[>]`;
    },
  );
}

function translateSyntax(pattern: string): string {
  let out = '';
  let i = 0;
  const n = pattern.length;
  let atStart = true;
  while (i < n) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const [text, used] = escapeAt(pattern, i, false);
      out += text;
      i += used;
    } else if (c === '[') {
      const [text, used] = characterClass(pattern, i);
      out += text;
      i += used;
    } else if (c === '(') {
      const [text, used] = group(pattern, i, atStart);
      out += text;
      i += used;
      if (text === '') {
        // A removed comment keeps the start-of-pattern state.
        continue;
      }
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

/** An escape at `i`; returns [RE2 text, characters used]. */
function escapeAt(pattern: string, i: number, inClass: boolean): [string, number] {
  const next = pattern[i + 1];
  if (next === undefined) throw new UnsupportedRegexError('the pattern ends with a lone backslash');
  switch (next) {
    case 'w':
      return [inClass ? WORD : `[${WORD}]`, 2];
    case 'W':
      if (inClass) throw new UnsupportedRegexError('\\W inside a character class has no RE2 equivalent');
      return [`[^${WORD}]`, 2];
    case 'd':
      return ['\\p{Nd}', 2];
    case 'D':
      return ['\\P{Nd}', 2];
    case 'Z':
      return ['\\z', 2];
    case 'b':
      return [inClass ? '\\x08' : '\\b', 2];
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
    case 'P': {
      // Not Python syntax: only the classes this module inserts (<DNS>) have it.
      const end = pattern.indexOf('}', i);
      if (pattern[i + 2] !== '{' || end === -1)
        throw new UnsupportedRegexError(`\\${next} is not Python syntax`);
      return [pattern.slice(i, end + 1), end + 1 - i];
    }
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
function characterClass(pattern: string, start: number): [string, number] {
  let i = start + 1;
  let out = '[';
  if (pattern[i] === '^') {
    out += '^';
    i++;
  }
  if (pattern[i] === ']') {
    out += '\\]';
    i++;
  }
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === ']') return [`${out}]`, i + 1 - start];
    if (c === '\\') {
      const [text, used] = escapeAt(pattern, i, true);
      out += text;
      i += used;
      continue;
    }
    out += c === '[' ? '\\[' : c;
    i++;
  }
  throw new UnsupportedRegexError('a character class is not closed by "]"');
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
