import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { normalizeIp, parseIPv4 } from '../../core/ip.js';
import { CidrSet } from '../../core/prefix-trie.js';

/** Which request header a trusted proxy uses to name the client. */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded' | 'x-real-ip';

/**
 * The original client address of a connection, set by whoever learnt it below HTTP (the proxy's
 * PROXY protocol v1/v2 parser). The resolver consults it before anything else: the socket peer
 * is then the load balancer, and the address it announced is the peer as far as HTTP is concerned
 * (it is still subject to `trusted_proxies` for forwarding headers). Values are any textual
 * address; entries go away with their socket.
 */
export const originalClientAddress = new WeakMap<Socket, string>();

export interface ClientIpOptions {
  /** Peers whose forwarding header is believed (CIDRs or addresses). Default none: the peer is the client. */
  trustedProxies?: readonly string[];
  /** The header a trusted peer names the client in. Default `x-forwarded-for`. */
  forwardedHeader?: ForwardedHeader;
}

export interface ClientIpStats {
  /**
   * Requests from a trusted peer whose forwarding header named no usable client: judged as an
   * unknown client (`null`), never as the peer — the proxy is not to blame for what a client
   * behind it sent.
   */
  malformed: number;
  /** Requests whose trusted chain ended in an obfuscated identifier (`for=unknown`, `for=_hidden`). */
  unknown: number;
}

/** Resolves the client address of a request. */
export interface ClientIpResolver {
  /**
   * The client of `req`, in canonical form (`192.0.2.7`, `2001:db8::1`), or `null` when it cannot
   * be known (no peer address: a destroyed socket; a trusted proxy said `for=unknown`; its header
   * held no well-formed address to the right of a trusted hop). Never the address of a trusted
   * peer that sent a forwarding header. Never throws.
   */
  resolve(req: IncomingMessage): string | null;
  readonly stats: Readonly<ClientIpStats>;
}

/**
 * At most this many elements are walked, from the right. A client behind an appending proxy can
 * make the header as long as it likes; the elements trusted proxies added are on the right.
 */
const MAX_HOPS = 64;

/** Marks a chain that names no usable client, and one that names nobody on purpose. */
const MALFORMED = 0;
const UNKNOWN = 1;

/**
 * Builds the resolver: the socket peer is the client unless it is a trusted proxy; then the
 * configured header is walked from the right, skipping trusted hops, and the first untrusted hop
 * is the client (when every hop is trusted, the leftmost). A header sent by an untrusted peer is
 * never read. Only the elements on the right of the answer are read, so whatever a client put on
 * the left (an unterminated `for="`, 100 elements, junk, a forged copy of `X-Real-IP` its proxy
 * did not strip) cannot change it. When no element gives an answer, the request's client is
 * unknown (`null`, counted in `malformed`): a trusted peer is never judged for what a client
 * behind it sent. So is a request from a trusted peer without the header whose head reached
 * Node's `maxHeadersCount` (1,000 pairs by default; the rest are dropped, the header perhaps
 * among them).
 */
export function createClientIpResolver(options: ClientIpOptions = {}): ClientIpResolver {
  const trusted = new CidrSet(options.trustedProxies ?? []);
  const header = options.forwardedHeader ?? 'x-forwarded-for';
  const stats: ClientIpStats = { malformed: 0, unknown: 0 };
  const anyTrusted = trusted.size > 0;

  // `X-Real-IP` is one address set by the proxy; a proxy that adds its own without removing the
  // client's sends two (Node joins them with a comma): the proxy's is the last, as in X-F-F.
  const walk =
    header === 'forwarded'
      ? (value: string) => walkForwarded(value, trusted)
      : (value: string) => walkXForwardedFor(value, trusted);

  return {
    stats,
    resolve(req: IncomingMessage): string | null {
      const socket = req.socket as Socket | undefined;
      const original = socket === undefined ? undefined : originalClientAddress.get(socket);
      const peer = canonical(original ?? socket?.remoteAddress);
      if (peer === null || !anyTrusted || !trusted.has(peer)) return peer;
      const raw = req.headers[header];
      if (raw === undefined) {
        if (!headersCut(req)) return peer;
        // Node kept only the first headers: the proxy's forwarding header may be among the rest.
        stats.malformed++;
        return null;
      }
      const found = walk(Array.isArray(raw) ? raw.join(',') : raw);
      if (typeof found === 'string') return found;
      if (found === UNKNOWN) stats.unknown++;
      else stats.malformed++;
      return null;
    },
  };
}

/** Node's default `maxHeadersCount`: header pairs it keeps (it drops the rest silently). */
const NODE_MAX_HEADERS = 2_000 / 2;

/** True when Node's parser may have dropped headers of `req` (it reached `maxHeadersCount`). */
function headersCut(req: IncomingMessage): boolean {
  const server = (req.socket as (Socket & { server?: { maxHeadersCount?: number | null } }) | undefined)
    ?.server;
  const max = server?.maxHeadersCount ?? NODE_MAX_HEADERS;
  const raw = req.rawHeaders as string[] | undefined; // absent on a request built by hand
  return max > 0 && raw !== undefined && raw.length >= 2 * max;
}

/** Canonical text of an address; dotted quads (the common case) are returned as they are. */
function canonical(address: string | undefined): string | null {
  if (address === undefined) return null;
  if (parseIPv4(address) >= 0) return address;
  return normalizeIp(address);
}

/**
 * `X-Forwarded-For: client, proxy1, proxy2` (and `X-Real-IP`) — entries may carry a port or
 * brackets. Walked from the right; an entry that is not an address ends the walk.
 */
function walkXForwardedFor(value: string, trusted: CidrSet): string | typeof MALFORMED {
  let end = value.length;
  let leftmost: string | null = null;
  for (let hops = 0; ; hops++) {
    if (hops >= MAX_HOPS) return MALFORMED;
    const comma = end === 0 ? -1 : value.lastIndexOf(',', end - 1);
    const entry = value.slice(comma + 1, end).trim();
    end = comma;
    if (entry.length > 0) {
      const ip = hostOf(entry);
      if (ip === null) return MALFORMED;
      if (!trusted.has(ip)) return ip;
      leftmost = ip;
    }
    if (comma === -1) break;
  }
  return leftmost ?? MALFORMED;
}

/**
 * RFC 7239: `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`. Elements are
 * split and walked from the right (quotes are balanced from the right, so an unterminated quote
 * on the left swallows nothing the proxies appended); each needs a `for=` naming an address, or
 * an obfuscated identifier (`unknown`, `_hidden`), which ends the walk with no client.
 */
function walkForwarded(value: string, trusted: CidrSet): string | typeof MALFORMED | typeof UNKNOWN {
  let end = value.length;
  let leftmost: string | null = null;
  for (let hops = 0; end >= 0; hops++) {
    if (hops >= MAX_HOPS) return MALFORMED;
    const start = elementStart(value, end);
    if (start === -1) return MALFORMED;
    const element = value.slice(start, end);
    end = start - 1;
    if (element.trim().length === 0) continue;
    const node = forOf(element);
    if (node === null) return MALFORMED;
    if (node === 'unknown' || node.startsWith('_')) return UNKNOWN;
    const ip = hostOf(node);
    if (ip === null) return MALFORMED;
    if (!trusted.has(ip)) return ip;
    leftmost = ip;
  }
  return leftmost ?? MALFORMED;
}

/**
 * Where the element ending at `end` (exclusive) starts: after the nearest comma on its left that
 * is outside a quoted string, or 0. `-1` when a quote opened on its left is never closed.
 */
function elementStart(value: string, end: number): number {
  let quoted = false;
  for (let i = end - 1; i >= 0; i--) {
    const c = value.charCodeAt(i);
    if (c === 34 /* " */) {
      if (!quoted) quoted = true;
      else if (!escaped(value, i)) quoted = false;
    } else if (c === 44 /* , */ && !quoted) {
      return i + 1;
    }
  }
  return quoted ? -1 : 0;
}

/** True when the character at `i` is preceded by an odd number of backslashes. */
function escaped(value: string, i: number): boolean {
  let n = 0;
  while (i - n - 1 >= 0 && value.charCodeAt(i - n - 1) === 92 /* \ */) n++;
  return n % 2 === 1;
}

/** The `for` parameter of one element, unquoted and lower-cased; `null` when absent or twice. */
function forOf(element: string): string | null {
  let found: string | null = null;
  for (const pair of element.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) {
      if (pair.trim().length === 0) continue;
      return null;
    }
    if (pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    if (found !== null) return null;
    let text = pair.slice(eq + 1).trim();
    if (text.length >= 2 && text.startsWith('"') && text.endsWith('"'))
      text = text.slice(1, -1).replace(/\\(.)/g, '$1');
    found = text.toLowerCase();
  }
  return found;
}

/** An address with an optional port: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:443`, `2001:db8::1`. */
function hostOf(text: string): string | null {
  if (text.length === 0 || text.length > 64) return null;
  if (text.charCodeAt(0) === 91 /* [ */) {
    const close = text.indexOf(']');
    if (close === -1) return null;
    const rest = text.slice(close + 1);
    if (rest.length > 0 && !/^:\d{1,5}$/.test(rest)) return null;
    return normalizeIp(text.slice(1, close));
  }
  const colon = text.indexOf(':');
  if (colon !== -1 && colon === text.lastIndexOf(':')) {
    // `a.b.c.d:port`; a lone colon cannot be IPv6.
    if (!/^\d{1,5}$/.test(text.slice(colon + 1))) return null;
    text = text.slice(0, colon);
  }
  return canonical(text);
}
