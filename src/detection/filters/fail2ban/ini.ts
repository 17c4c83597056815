/**
 * fail2ban's INI dialect, read the way Python's `configparser` reads it for fail2ban: `[section]`
 * headers, `key = value` or `key: value` (split at the first `=` or `:`), keys lower-cased, values
 * stripped; a line indented deeper than its key continues the value (joined with `\n`); blank lines
 * inside a value are kept, trailing ones dropped; whole-line comments start with `#` or `;` (also
 * inside a multi-line value), inline comments with whitespace then `;`. `#` in a value is data
 * (regexes use it). Nothing is interpolated here.
 */

/** One file's sections, in file order; the `DEFAULT` section is kept apart. */
export interface IniFile {
  readonly path: string;
  readonly defaults: Map<string, string>;
  readonly sections: Map<string, Map<string, string>>;
}

/** A line the reader cannot place (`file:line: reason`). */
export class IniSyntaxError extends Error {
  constructor(
    readonly path: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${path}:${line}: ${reason}`);
  }
}

const SECTION = /^\[([^\]]+)\]$/;
const OPTION = /^(.*?)\s*([=:])\s*(.*)$/;

/** Parses INI text. Throws {@link IniSyntaxError} for a line that is neither header nor option. */
export function parseIni(text: string, path: string): IniFile {
  const defaults = new Map<string, string>();
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  let key: string | undefined;
  let parts: string[] | undefined;
  let indent = Number.MAX_SAFE_INTEGER;
  const flush = () => {
    if (current !== undefined && key !== undefined && parts !== undefined)
      current.set(key, parts.join('\n').replace(/\s+$/, ''));
  };
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const value = stripInlineComment(raw).trim();
    if (value === '') {
      if (parts !== undefined) parts.push('');
      return;
    }
    const lead = raw.search(/\S/);
    if (parts !== undefined && lead > indent) {
      parts.push(value);
      return;
    }
    indent = lead;
    const header = SECTION.exec(value);
    if (header !== null) {
      flush();
      key = undefined;
      parts = undefined;
      const name = header[1] as string;
      if (name === 'DEFAULT') current = defaults;
      else {
        current = sections.get(name) ?? new Map<string, string>();
        sections.set(name, current);
      }
      return;
    }
    if (current === undefined) throw new IniSyntaxError(path, index + 1, 'an option before any [section]');
    const option = OPTION.exec(value);
    if (option === null || (option[1] as string).trim() === '')
      throw new IniSyntaxError(path, index + 1, `expected "key = value", got ${JSON.stringify(value)}`);
    flush();
    key = (option[1] as string).trimEnd().toLowerCase();
    parts = [(option[3] as string).trim()];
  });
  flush();
  return { path, defaults, sections };
}

/** configparser's inline comments: `;` preceded by whitespace. */
function stripInlineComment(line: string): string {
  const at = line.search(/\s;/);
  return at === -1 ? line : line.slice(0, at);
}
