/**
 * The path of a request target in the form an application routes it, so that a jail's `^/login$`
 * sees `/login` however the client spelt it. The reverse proxy forwards {@link normalizeTarget}'s
 * result, so the upstream receives exactly the path the jails judged.
 *
 * What is normalised (RFC 3986 §6.2.2, and what the WHATWG URL parser — which http-proxy-3 and
 * most frameworks use — does to a path):
 *
 * - absolute-form (`http://host/login`) is reduced to its path; a target not starting with `/`
 *   is read under the root (`login` → `/login`); `*` (asterisk-form) stays `*`;
 * - the query (`?…`) and a fragment (`#…`) are not part of the path;
 * - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded (`%2e` → `.`,
 *   `%6C` → `l`), the hex digits of every other escape are upper-cased (`%2f` → `%2F`), and an
 *   invalid sequence (`%zz`, a lone `%`) is kept as sent;
 * - `\` is a `/` (as WHATWG and IIS read it);
 * - dot segments are removed (`/a/../login`, `/./login`, `/.%2e/login` → `/login`; `..` never
 *   climbs above the root) and duplicate slashes collapsed (`//login` → `/login`); a trailing
 *   slash is kept (`/login/.` → `/login/`: a directory and a file differ to a static server);
 * - characters the WHATWG parser would percent-encode in a path (controls, space, `"`, `<`, `>`,
 *   `` ` ``, `{`, `}`, non-ASCII) are encoded as it would, so the result is a fixed point.
 *
 * What is not: an encoded slash (`%2F`, `%5C`) is data, not a separator — `/a%2F..%2Flogin` stays
 * as it is (most routers, Express included, keep it distinct; an application that decodes the
 * path *before* splitting it would see `/a/../login`: match such paths on `url`). Case is kept
 * (HTTP filters match `path` case-insensitively instead).
 */
export function normalizePath(target: string): string {
  let end = target.length;
  const q = target.indexOf('?');
  if (q !== -1) end = q;
  const hash = target.indexOf('#');
  if (hash !== -1 && hash < end) end = hash;
  let path = end === target.length ? target : target.slice(0, end);
  if (path.charCodeAt(0) !== 47 /* / */) {
    if (path === '*') return path;
    const scheme = ABSOLUTE_FORM.exec(path);
    if (scheme !== null) {
      const slash = path.slice(scheme[0].length).search(/[/\\]/);
      path = slash === -1 ? '/' : path.slice(scheme[0].length + slash);
    } else {
      path = `/${path}`;
    }
  }
  if (!NEEDS_WORK.test(path)) return path;
  if (path.indexOf('%') !== -1) path = path.replace(ESCAPE, unescapeUnreserved);
  if (path.indexOf('\\') !== -1) path = path.replaceAll('\\', '/');
  if (TO_ENCODE.test(path)) path = path.replace(TO_ENCODE_ALL, encodeChar);
  return removeDotSegments(path);
}

/**
 * The request target to forward: {@link normalizePath}'s path, then the query exactly as sent
 * (with its `?`), without a fragment. The very string given when nothing needs normalising.
 */
export function normalizeTarget(target: string): string {
  const hash = target.indexOf('#');
  const q = target.indexOf('?');
  const path = normalizePath(target);
  const query = q === -1 || (hash !== -1 && hash < q) ? '' : target.slice(q, hash === -1 ? undefined : hash);
  if (hash === -1 && path.length + query.length === target.length && target.startsWith(path)) return target;
  return path + query;
}

/** `http:`, `https:`, `ws:`, ... followed by `//`. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** Anything {@link normalizePath} might change after its prefix handling. */
const NEEDS_WORK = /%|\/\.|\/\/|\\|[^\x21-\x7e]|["<>`{}]/;
const ESCAPE = /%([0-9A-Fa-f]{2})/g;
const TO_ENCODE = /[^\x21-\x7e]|["<>`{}]/;
const TO_ENCODE_ALL = /[^\x21-\x7e]|["<>`{}]/gu;

function unescapeUnreserved(sequence: string, hex: string): string {
  const c = Number.parseInt(hex, 16);
  const unreserved =
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e;
  return unreserved ? String.fromCharCode(c) : sequence.toUpperCase();
}

function encodeChar(c: string): string {
  try {
    return encodeURIComponent(c);
  } catch {
    return '%EF%BF%BD'; // a lone surrogate: U+FFFD, as WHATWG writes it
  }
}

/** RFC 3986 §5.2.4 on a path starting with `/`, empty segments dropped. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  let trailing = false;
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    trailing = segment === '' || segment === '.' || segment === '..';
    if (segment === '..') out.pop();
    else if (!trailing) out.push(segment);
  }
  if (out.length === 0) return '/';
  return trailing ? `/${out.join('/')}/` : `/${out.join('/')}`;
}
