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
  /** Requests from a trusted peer whose forwarding header was unusable; the peer was used. */
  malformed: number;
  /** Requests whose trusted chain ended in an obfuscated identifier (`for=unknown`, `for=_hidden`). */
  unknown: number;
}

/** Resolves the client address of a request. */
export interface ClientIpResolver {
  /**
   * The client of `req`, in canonical form (`192.0.2.7`, `2001:db8::1`), or `null` when it cannot
   * be known (no peer address: a destroyed socket; a trusted proxy said `for=unknown`). Never throws.
   */
  resolve(req: IncomingMessage): string | null;
  readonly stats: Readonly<ClientIpStats>;
}

/** At most this many hops are walked; a longer chain from a trusted proxy is treated as malformed. */
const MAX_HOPS = 64;
/** A forwarding header longer than this is not parsed at all (Node's own default limit is 16 KB). */
const MAX_HEADER_LENGTH = 16_384;

/** Marks a chain that cannot be used (the peer is the client) and one that names nobody. */
const MALFORMED = 0;
const UNKNOWN = 1;

/**
 * Builds the resolver: the socket peer is the client unless it is a trusted proxy; then the
 * configured header is walked from the right, skipping trusted hops, and the first untrusted hop
 * is the client (when every hop is trusted, the leftmost). A header sent by an untrusted peer is
 * never read. A malformed header from a trusted peer falls back to the peer and is counted.
 */
export function createClientIpResolver(options: ClientIpOptions = {}): ClientIpResolver {
  const trusted = new CidrSet(options.trustedProxies ?? []);
  const header = options.forwardedHeader ?? 'x-forwarded-for';
  const stats: ClientIpStats = { malformed: 0, unknown: 0 };
  const anyTrusted = trusted.size > 0;

  const walk =
    header === 'forwarded'
      ? (value: string) => walkForwarded(value, trusted)
      : header === 'x-real-ip'
        ? (value: string) => realIp(value)
        : (value: string) => walkXForwardedFor(value, trusted);

  return {
    stats,
    resolve(req: IncomingMessage): string | null {
      const socket = req.socket as Socket | undefined;
      const original = socket === undefined ? undefined : originalClientAddress.get(socket);
      const peer = canonical(original ?? socket?.remoteAddress);
      if (peer === null || !anyTrusted || !trusted.has(peer)) return peer;
      const raw = req.headers[header];
      if (raw === undefined) return peer;
      const value = Array.isArray(raw) ? raw.join(',') : raw;
      if (value.length > MAX_HEADER_LENGTH) {
        stats.malformed++;
        return peer;
      }
      const found = walk(value);
      if (typeof found === 'string') return found;
      if (found === UNKNOWN) {
        stats.unknown++;
        return null;
      }
      stats.malformed++;
      return peer;
    },
  };
}

/** Canonical text of an address; dotted quads (the common case) are returned as they are. */
function canonical(address: string | undefined): string | null {
  if (address === undefined) return null;
  if (parseIPv4(address) >= 0) return address;
  return normalizeIp(address);
}

/** `X-Forwarded-For: client, proxy1, proxy2` — entries may carry a port or brackets. */
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

/** `X-Real-IP: client` — exactly one address, set (not appended) by the proxy. */
function realIp(value: string): string | typeof MALFORMED {
  if (value.indexOf(',') !== -1) return MALFORMED;
  return hostOf(value.trim()) ?? MALFORMED;
}

/**
 * RFC 7239: `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`. Elements are
 * walked from the right; each needs a `for=` naming an address, or an obfuscated identifier
 * (`unknown`, `_hidden`), which ends the walk with no client.
 */
function walkForwarded(value: string, trusted: CidrSet): string | typeof MALFORMED | typeof UNKNOWN {
  const elements = splitElements(value);
  if (elements === null || elements.length > MAX_HOPS) return MALFORMED;
  let leftmost: string | null = null;
  for (let i = elements.length - 1; i >= 0; i--) {
    const element = elements[i] as string;
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

/** Splits on commas outside quoted strings; `null` for an unterminated quote. */
function splitElements(value: string): string[] | null {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) quoted = false;
    } else if (c === 34) {
      quoted = true;
    } else if (c === 44 /* , */) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted) return null;
  out.push(value.slice(start));
  return out;
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
