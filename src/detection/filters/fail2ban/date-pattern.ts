/**
 * A fail2ban `datepattern` in terms of portcullis dates: an strftime-style pattern our date code
 * compiles (`^%Y-%m-%d %H:%M:%S`), or `undefined` for our date detection, with a note saying why.
 *
 * fail2ban's patterns are regexes with `%` directives; ours are literal text with directives. A
 * pattern that is literal text around directives is carried over (`%Ex*` directives become their
 * plain forms, `\[` becomes `[`). Anything else — regex syntax around the date, `{DATE}`,
 * `Epoch`, `TAI64N` — falls back to detection, which knows the common formats (syslog, ISO 8601,
 * epoch at the line start, Apache, nginx, ...). Several patterns (one a line) stay alternatives,
 * one a line of the result, detection (`{DEFAULT}`) standing for those that fall back. Dates
 * only decide a line's time (and so findtime); what matches is decided by the regexes.
 */
export interface DatePatternTranslation {
  /** For the date code; `undefined`: detection. */
  pattern: string | undefined;
  /** Set when the pattern was not carried over as written. */
  note?: string;
}

const EXTENDED = /%E?x?([YymdHMSbBaAIpfjzZTFDRse])/g;

export function translateDatePattern(value: string | undefined): DatePatternTranslation {
  if (value === undefined) return { pattern: undefined };
  const lines = value
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (lines.length === 0) return { pattern: undefined };
  if (lines.length > 1) {
    // Alternatives: each carried over, or the built-in detection in its place.
    const parts = lines.map((line) => translateDatePattern(line));
    if (parts.some((part) => part.pattern === '{NONE}'))
      return {
        pattern: undefined,
        note: `datepattern lists ${lines.length} patterns, one of them {NONE}: dates are detected instead, and lines without one are missed`,
      };
    const patterns = [...new Set(parts.map((part) => part.pattern ?? '{DEFAULT}'))];
    const notes = parts.flatMap((part) => (part.note === undefined ? [] : [part.note]));
    if (patterns.every((pattern) => pattern === '{DEFAULT}'))
      return notes.length === 0 ? { pattern: undefined } : { pattern: undefined, note: notes.join('; ') };
    return {
      pattern: patterns.join('\n'),
      ...(notes.length === 0 ? {} : { note: notes.join('; ') }),
    };
  }
  let text = lines[0] as string;
  let anchored = '';
  if (text.startsWith('{^LN-BEG}')) {
    anchored = '^';
    text = text.slice('{^LN-BEG}'.length);
  } else if (text.startsWith('^')) {
    anchored = '^';
    text = text.slice(1);
  }
  if (text === '' || text === '{DEFAULT}') return { pattern: undefined };
  if (/^(epoch|tai64n|lepoch|{nodate}|{none})$/i.test(text)) {
    if (/^\{?(nodate|none)\}?$/i.test(text)) return { pattern: '{NONE}' };
    return {
      pattern: undefined,
      note: `datepattern ${JSON.stringify(lines[0])}: dates are detected instead (epoch seconds at the line start are among the detected formats)`,
    };
  }
  // Literal escapes of punctuation are plain text for our patterns.
  const unescaped = text.replace(/\\([^A-Za-z0-9])/g, '$1');
  const withoutDirectives = text
    .replace(/\\[^A-Za-z0-9]/g, '')
    .replace(/%%/g, '')
    .replace(EXTENDED, '');
  if (/[\\()[\]{}|?*+.^$]/.test(withoutDirectives)) {
    return {
      pattern: undefined,
      note: `datepattern ${JSON.stringify(lines[0])} uses regex syntax around the date: dates are detected instead`,
    };
  }
  if (!/%E?x?[YymdHMSbBaAIpfjzZTFDRse]/.test(unescaped)) {
    return {
      pattern: undefined,
      note: `datepattern ${JSON.stringify(lines[0])} has no date directive portcullis knows: dates are detected instead`,
    };
  }
  return { pattern: anchored + unescaped.replace(EXTENDED, '%$1') };
}
