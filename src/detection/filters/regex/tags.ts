/**
 * fail2ban-style tags in filter regexes, expanded to RE2 syntax before compiling.
 *
 * | tag | matches | becomes |
 * | --- | --- | --- |
 * | `<HOST>` | IPv4, IPv6, `[IPv6]`, or a DNS name | the event's IP; a DNS name is **not resolved**: the line counts as missed (`bad host`) |
 * | `<ADDR>` | IPv4 or IPv6 (no brackets, no names) | the event's IP |
 * | `<IP4>` / `<IP6>` | dotted quad / text with a colon | the event's IP |
 * | `<CIDR>` | `address/length` | the event's IP is the address; field `cidr` is the canonical range |
 * | `<F-NAME>...</F-NAME>` | what is between | field `name` (lower case; `F-USER` → `user`, `F-ALT_USER1` → `user`) |
 * | `<F-ID>...</F-ID>` | | field `id` |
 * | `<F-CONTENT>...</F-CONTENT>` | in `prefregex` only | the text `failregex` and `ignoreregex` are matched against |
 * | `<F-MLFID>...</F-MLFID>` | | the session a line belongs to (e.g. `sshd[1234]`) |
 * | `<F-NOFAIL>` | marker (or `<F-NOFAIL>...</F-NOFAIL>`) | the line is not a failure; its fields feed its session |
 * | `<F-MLFFORGET>` | marker (or a pair) | the session ends after this line |
 * | `<name>` | a key of the filter's `vars` | its value (which may use tags) |
 *
 * Plain RE2 named groups `(?P<name>...)` become fields too; `(?P<host>...)` is the IP. Several
 * groups may share a name (in different branches of an alternation): the first that took part in
 * the match gives the value.
 */

// Tags match an address-shaped *token* and portcullis then validates it strictly with parseIp
// (so `1.2.3.999` or a DNS name is a missed line, counted as a bad host). Token classes instead of
// exact IPv6 grammar keep RE2's capture step cheap (the exact grammar doubled the cost of a
// match); where the token ends is decided by the text around the tag, as with any regex.
const IP4 = '(?:[0-9]{1,3}\\.){3}[0-9]{1,3}';
const ZONE = '(?:%[0-9A-Za-z_.-]{1,32})?';
// Never ends in a dot: `from 192.0.2.7.` at the end of a sentence gives 192.0.2.7.
const ADDR = `[0-9A-Fa-f:.]*[0-9A-Fa-f:]${ZONE}`;
const IP6 = `[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*${ZONE}`;
const HOST_NAME = '[0-9A-Za-z:](?:[0-9A-Za-z.:_%-]*[0-9A-Za-z:])?';

/** Internal group names (user group names may not start with `__`). */
export const GROUP = {
  host: '__host',
  cidr: '__cidr',
  content: '__content',
  mlfid: '__mlfid',
  nofail: '__nofail',
  forget: '__forget',
} as const;

const HOST_TAGS: Record<string, string> = {
  HOST: `(?P<${GROUP.host}>\\[${ADDR}\\]|${HOST_NAME})`,
  ADDR: `(?P<${GROUP.host}>${ADDR})`,
  IP4: `(?P<${GROUP.host}>${IP4})`,
  IP6: `(?P<${GROUP.host}>${IP6})`,
  CIDR: `(?P<${GROUP.cidr}>[0-9A-Fa-f:.]*[0-9A-Fa-f:]/[0-9]{1,3})`,
};

const SPECIAL_FIELDS: Record<string, string> = {
  CONTENT: GROUP.content,
  MLFID: GROUP.mlfid,
  NOFAIL: GROUP.nofail,
  MLFFORGET: GROUP.forget,
};

const MARKERS = new Set(['NOFAIL', 'MLFFORGET']);

/** Thrown for a malformed tag; the caller adds where it is. */
export class TagError extends Error {}

/** Tags and vars replaced; plain RE2 syntax out. Throws {@link TagError}. */
export function expandTags(source: string, vars: Readonly<Record<string, string>> = {}): string {
  const substituted = substituteVars(source, vars, 0);
  checkBalanced(substituted);
  return substituted.replace(
    /(\(\?P?)?<(\/?)([A-Za-z][A-Za-z0-9_-]*)>/g,
    (whole, groupStart: string | undefined, slash: string, name: string) => {
      if (groupStart !== undefined) return whole; // `(?P<name>`: RE2's own named group
      if (name.startsWith('F-')) {
        const field = name.slice(2);
        if (slash === '/') return ')';
        const group = fieldGroupName(field);
        if (MARKERS.has(field) && !substituted.includes(`</F-${field}>`)) return `(?P<${group}>)`;
        return `(?P<${group}>`;
      }
      if (slash === '/') throw new TagError(`unknown closing tag </${name}>`);
      const host = HOST_TAGS[name];
      if (host !== undefined) return host;
      if (/^[A-Z][A-Z0-9_-]*$/.test(name)) {
        throw new TagError(
          `unknown tag <${name}> (known: <HOST> <ADDR> <IP4> <IP6> <CIDR> <F-NAME>...</F-NAME>)`,
        );
      }
      return whole; // lower-case text in angle brackets that is not a var: literal
    },
  );
}

/** `USER` → `user`, `ALT_USER2` → `user`, `MY-FIELD` → `my_field`, special names → internal groups. */
export function fieldGroupName(tagName: string): string {
  const special = SPECIAL_FIELDS[tagName];
  if (special !== undefined) return special;
  if (/^ALT_USER\d*$/.test(tagName)) return 'user';
  const name = tagName.toLowerCase().replace(/-/g, '_');
  if (!/^[a-z][a-z0-9_]*$/.test(name))
    throw new TagError(`<F-${tagName}>: field names are letters, digits, "-" and "_"`);
  return name;
}

function substituteVars(source: string, vars: Readonly<Record<string, string>>, depth: number): string {
  if (depth > 10) throw new TagError('vars refer to each other in a loop (more than 10 levels)');
  let changed = false;
  const out = source.replace(
    /(\(\?P?)?<([a-z_][A-Za-z0-9_]*)>/g,
    (whole, groupStart: string | undefined, name: string) => {
      if (groupStart !== undefined) return whole;
      const value = vars[name];
      if (value === undefined) return whole;
      changed = true;
      return value;
    },
  );
  return changed ? substituteVars(out, vars, depth + 1) : out;
}

function checkBalanced(source: string): void {
  const counts = new Map<string, number>();
  for (const m of source.matchAll(/<(\/?)F-([A-Za-z][A-Za-z0-9_-]*)>/g)) {
    const name = m[2] as string;
    counts.set(name, (counts.get(name) ?? 0) + (m[1] === '/' ? -1 : 1));
  }
  for (const [name, count] of counts) {
    if (count === 0) continue;
    if (MARKERS.has(name) && !source.includes(`</F-${name}>`)) continue;
    throw new TagError(
      count > 0
        ? `<F-${name}> is not closed by </F-${name}>`
        : `</F-${name}> closes a tag that was not opened`,
    );
  }
}
