import { formatIPv6 } from './ipv6-text.js';

/**
 * IP handling for every source. Addresses are parsed strictly (four-part decimal IPv4 only, so
 * `127.1` or `0x7f.0.0.1` from a header is garbage, not loopback), IPv4-mapped IPv6 becomes IPv4,
 * zone ids are dropped. Nothing here throws on bad input: parsers return `null`.
 */

export interface ParsedIPv4 {
  family: 4;
  /** The address as an unsigned 32-bit integer. */
  v4: number;
}

export interface ParsedIPv6 {
  family: 6;
  /** 16 bytes, network order. */
  bytes: Uint8Array;
}

export type ParsedIp = ParsedIPv4 | ParsedIPv6;

/** A network: an address with its prefix length, host bits zeroed. */
export type Cidr = (ParsedIPv4 | ParsedIPv6) & {
  prefix: number;
  /** Canonical text: `10.0.0.0/8`, `2001:db8::/64`, or a bare address for /32 and /128. */
  text: string;
};

/** Parses a strict dotted-quad IPv4 address to an unsigned integer, or -1. */
export function parseIPv4(text: string): number {
  const length = text.length;
  if (length < 7 || length > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero: ambiguous (octal in inet_aton)
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/**
 * Parses an IPv4 or IPv6 address. Accepts `[::1]`, zone ids (`fe80::1%eth0`, dropped) and
 * IPv4-mapped IPv6 (`::ffff:1.2.3.4`, returned as IPv4). Returns `null` for anything else.
 */
export function parseIp(input: string): ParsedIp | null {
  if (typeof input !== 'string') return null;
  const v4 = parseIPv4(input);
  if (v4 >= 0) return { family: 4, v4 };
  let text = input.trim();
  if (text.length === 0 || text.length > 64) return null;
  if (text.charCodeAt(0) === 91 /* [ */ && text.charCodeAt(text.length - 1) === 93) {
    text = text.slice(1, -1);
  }
  if (text.indexOf(':') === -1) {
    const trimmed = parseIPv4(text);
    return trimmed >= 0 ? { family: 4, v4: trimmed } : null;
  }
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const bytes = parseIPv6Bytes(text);
  if (bytes === null) return null;
  if (isMappedV4(bytes)) {
    return {
      family: 4,
      v4:
        (((bytes[12] as number) << 24) >>> 0) +
        ((bytes[13] as number) << 16) +
        ((bytes[14] as number) << 8) +
        (bytes[15] as number),
    };
  }
  return { family: 6, bytes };
}

function isMappedV4(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Parses RFC 4291 text (hex groups, at most one `::`, an optional dotted-quad tail) into 16 bytes,
 * or `null`. Hand-written because it runs on the request path; ipaddr.js costs microseconds here.
 */
export function parseIPv6Bytes(text: string): Uint8Array | null {
  const length = text.length;
  if (length < 2 || length > 45) return null;
  const groups = new Uint16Array(8);
  let count = 0;
  let gap = -1; // index of the group where `::` stands
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return null;
    gap = 0;
    i = 2;
    if (i === length) return new Uint8Array(16);
  }
  while (i < length) {
    if (count === 8) return null;
    let end = i;
    let dot = false;
    while (end < length && text.charCodeAt(end) !== 58) {
      if (text.charCodeAt(end) === 46) dot = true;
      end++;
    }
    if (dot) {
      // A dotted-quad tail fills the last two groups.
      if (end !== length || count > 6) return null;
      const v4 = parseIPv4(text.slice(i, end));
      if (v4 < 0) return null;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = end;
      break;
    }
    const digits = end - i;
    if (digits === 0 || digits > 4) return null;
    let value = 0;
    for (let j = i; j < end; j++) {
      const c = text.charCodeAt(j);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) return null;
      value = value * 16 + d;
    }
    groups[count++] = value;
    i = end;
    if (i === length) break;
    if (i + 1 < length && text.charCodeAt(i + 1) === 58) {
      if (gap !== -1) return null;
      gap = count;
      i += 2;
    } else {
      i += 1;
      if (i === length) return null;
    }
  }
  if (gap === -1 ? count !== 8 : count > 7) return null;
  const bytes = new Uint8Array(16);
  const tail = gap === -1 ? 0 : count - gap;
  for (let g = 0; g < count; g++) {
    const at = gap !== -1 && g >= gap ? 8 - tail + (g - gap) : g;
    bytes[at * 2] = (groups[g] as number) >> 8;
    bytes[at * 2 + 1] = (groups[g] as number) & 0xff;
  }
  return bytes;
}

/** The canonical text of an address: dotted quad, or RFC 5952 IPv6. `null` for garbage. */
export function normalizeIp(input: string): string | null {
  const parsed = parseIp(input);
  return parsed === null ? null : formatIp(parsed);
}

export function formatIp(ip: ParsedIp): string {
  return ip.family === 4 ? formatIPv4(ip.v4) : formatIPv6(ip.bytes);
}

/** What {@link checkCidr} makes of a range. */
export type CidrCheck =
  | {
      ok: true;
      cidr: Cidr;
      /** Set when the text has host bits set: `10.1.2.3/8 means 10.0.0.0/8`. */
      warning: string | undefined;
    }
  | {
      ok: false;
      /** Why, when there is more to say than "not an address or range". */
      reason: string | undefined;
    };

const NOT_A_CIDR: CidrCheck = { ok: false, reason: undefined };

/**
 * Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). Host bits are zeroed,
 * so `10.1.2.3/8` means `10.0.0.0/8`. IPv4-mapped ranges (`::ffff:10.0.0.0/104`) become IPv4; one
 * with host bits set is refused (`::ffff:1.2.3.4/96` would be all of IPv4). `null` for anything
 * else; {@link checkCidr} says why and warns about host bits.
 */
export function parseCidr(input: string): Cidr | null {
  const result = checkCidr(input);
  return result.ok ? result.cidr : null;
}

/**
 * {@link parseCidr} for configuration: also reports host bits set beyond the prefix (a warning:
 * the network is meant) and explains a refused IPv4-mapped range. A mapped range is refused rather
 * than masked because the likely typo, `::ffff:1.2.3.4/96` for one address, would mean every IPv4
 * address. Below /96 a mapped address is an IPv6 range like any other (`::ffff:0:0/64` is `::/64`).
 */
export function checkCidr(input: string): CidrCheck {
  if (typeof input !== 'string') return NOT_A_CIDR;
  const text = input.trim();
  const slash = text.indexOf('/');
  if (slash === -1) {
    const ip = parseIp(text);
    if (ip === null) return NOT_A_CIDR;
    return { ok: true, cidr: makeCidr(ip, ip.family === 4 ? 32 : 128), warning: undefined };
  }
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return NOT_A_CIDR;
  const prefix = Number(prefixText);
  if (prefix > 128) return NOT_A_CIDR;
  const addressText = text.slice(0, slash);
  const ip = parseIp(addressText);
  if (ip === null) return NOT_A_CIDR;
  if (ip.family === 4 && addressText.indexOf(':') === -1) {
    if (prefix > 32) return NOT_A_CIDR;
    return withHostBitsWarning(text, makeCidr(ip, prefix), maskV4(ip.v4, prefix) !== ip.v4);
  }
  if (ip.family === 4 && prefix >= 96) {
    // `::ffff:10.0.0.0/104`, or spelled in hex `::ffff:a00:0/104`
    const v4Prefix = prefix - 96;
    const cidr = makeCidr(ip, v4Prefix);
    if ((cidr as ParsedIPv4).v4 === ip.v4) return { ok: true, cidr, warning: undefined };
    const single = `${formatIPv4(ip.v4)}/32`;
    return {
      ok: false,
      reason:
        v4Prefix === 0
          ? `${text} would mean all of IPv4 (0.0.0.0/0); for the single address write ${single}`
          : `${text} would mean ${cidr.text}; write ${cidr.text} for that range, or ${single} for the single address`,
    };
  }
  const bytes = parseIPv6Bytes(bareIPv6(addressText));
  if (bytes === null) return NOT_A_CIDR;
  const cidr = makeCidr({ family: 6, bytes }, prefix);
  const masked = (cidr as ParsedIPv6).bytes;
  let hostBits = false;
  for (let i = 0; i < 16; i++) if (masked[i] !== bytes[i]) hostBits = true;
  return withHostBitsWarning(text, cidr, hostBits);
}

/** `[2001:db8::]` or `fe80::%eth0` as parseIPv6Bytes takes it (parseIp accepted it already). */
function bareIPv6(text: string): string {
  let bare = text.trim();
  if (bare.startsWith('[') && bare.endsWith(']')) bare = bare.slice(1, -1);
  const zone = bare.indexOf('%');
  return zone === -1 ? bare : bare.slice(0, zone);
}

function withHostBitsWarning(text: string, cidr: Cidr, hostBits: boolean): CidrCheck {
  return { ok: true, cidr, warning: hostBits ? `${text} means ${cidr.text}` : undefined };
}

function makeCidr(ip: ParsedIp, prefix: number): Cidr {
  if (ip.family === 4) {
    const v4 = maskV4(ip.v4, prefix);
    const text = prefix === 32 ? formatIPv4(v4) : `${formatIPv4(v4)}/${prefix}`;
    return { family: 4, v4, prefix, text };
  }
  const bytes = maskV6(ip.bytes, prefix);
  const address = formatIp({ family: 6, bytes });
  return { family: 6, bytes, prefix, text: prefix === 128 ? address : `${address}/${prefix}` };
}

export function maskV4(value: number, prefix: number): number {
  if (prefix <= 0) return 0;
  if (prefix >= 32) return value >>> 0;
  return (value & (~0 << (32 - prefix))) >>> 0;
}

export function maskV6(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(16);
  const full = prefix >> 3;
  for (let i = 0; i < full && i < 16; i++) out[i] = bytes[i] as number;
  const rest = prefix & 7;
  if (rest !== 0 && full < 16) out[full] = (bytes[full] as number) & (0xff << (8 - rest));
  return out;
}

/**
 * The unit a jail counts and bans: the address itself for IPv4, the `/ipv6Prefix` network for
 * IPv6 (default 64, because one host usually owns a whole /64). Returns canonical CIDR text.
 */
export function clientKey(ip: ParsedIp, ipv6Prefix = 64): string {
  if (ip.family === 4) return formatIPv4(ip.v4);
  return makeCidr(ip, ipv6Prefix).text;
}

/** True when `cidr` covers `ip`. */
export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  if (ip.family === 4) return maskV4(ip.v4, cidr.prefix) === (cidr as ParsedIPv4).v4;
  const masked = maskV6(ip.bytes, cidr.prefix);
  const base = (cidr as ParsedIPv6).bytes;
  for (let i = 0; i < 16; i++) if (masked[i] !== base[i]) return false;
  return true;
}

/** A `host:port` to bind: {@link parseHostPort}. */
export interface HostPort {
  /** An IP address or a host name; `undefined`: every interface. */
  host: string | undefined;
  /** 0..65535; 0 asks for a free port. */
  port: number;
}

const HOST_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Parses `0.0.0.0:8080`, `[::1]:0`, `localhost:8080`, `:8080` or `8080`; `null` for anything
 * else. A host that looks numeric must be a dotted-quad IPv4 address: `256.0.0.1` or `10.1` would
 * otherwise go to the resolver, which reads `10.1` as 10.0.0.1. An IPv6 address needs brackets.
 */
export function parseHostPort(text: string): HostPort | null {
  if (typeof text !== 'string') return null;
  let host: string | undefined;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') return null;
    host = text.slice(1, close);
    if (host.indexOf(':') === -1 || parseIp(host) === null) return null;
    portText = text.slice(close + 2);
  } else {
    const colon = text.indexOf(':');
    if (colon !== text.lastIndexOf(':')) return null;
    host = colon <= 0 ? undefined : text.slice(0, colon);
    portText = colon === -1 ? text : text.slice(colon + 1);
    if (host !== undefined && !isHostName(host)) return null;
  }
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  return port > 65_535 ? null : { host, port };
}

function isHostName(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.split('.');
  if (!labels.every((label) => HOST_LABEL_RE.test(label))) return false;
  // A last label of digits (or a 0x number) is no top-level domain: it must be an IPv4 address.
  return !/^(?:\d+|0x[0-9a-f]*)$/i.test(labels[labels.length - 1] as string) || parseIPv4(host) >= 0;
}
