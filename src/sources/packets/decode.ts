/**
 * A packet decoder over the raw bytes libpcap hands us, written for the capture's hot path: it
 * fills one reused {@link DecodedPacket} (no allocation per packet, no exceptions), reads only the
 * headers a jail needs (link, IP, the first bytes of TCP/UDP/ICMP) and never trusts a length field
 * beyond the bytes actually captured. Garbage, truncated and non-IP frames are answered with a
 * status, never thrown.
 */

/** libpcap link-layer types (`DLT_*` / `LINKTYPE_*`) the decoder reads. */
export const LinkType = {
  /** BSD loopback: a 4-byte address family in host byte order. */
  NULL: 0,
  ETHERNET: 1,
  /** Raw IP (Linux DLT_RAW is 12, some BSDs use 14; LINKTYPE_RAW is 101). */
  RAW: 12,
  RAW_BSD: 14,
  RAW_LINKTYPE: 101,
  /** OpenBSD loopback: the family in network byte order. */
  LOOP: 108,
  /** Linux cooked capture v1 (`any` on libpcap before 1.10). */
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  /** Linux cooked capture v2 (`any` on libpcap 1.10+ when asked for it). */
  LINUX_SLL2: 276,
} as const;

/** IP protocol numbers the decoder reads past the IP header. */
export const IpProto = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;

/** TCP flag bits (the 13th byte of the header). */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

/** The direction a Linux cooked header records; `unknown` for every other link type. */
export type Direction = 'in' | 'out' | 'unknown';

/** What decoding one frame concluded. */
export type DecodeStatus =
  /** An IPv4 or IPv6 packet; the fields of {@link DecodedPacket} are set. */
  | 'ok'
  /** Shorter than its headers claim (or than the snap length let through). */
  | 'truncated'
  /** A frame of another protocol (ARP, LLDP, ...): not an error. */
  | 'not-ip'
  /** Inconsistent headers (a bad version, an IHL below 5, a TCP offset below 5). */
  | 'malformed'
  /** A link type this decoder does not know. */
  | 'unsupported';

/**
 * One decoded packet. Reused from packet to packet: read it before the next `decodePacket`.
 * Addresses stay in the buffer (`srcOffset`, `dstOffset`) until something needs their text.
 */
export interface DecodedPacket {
  family: 4 | 6;
  /** IPv4 addresses as unsigned integers (0 for IPv6). */
  src4: number;
  dst4: number;
  /** Where the 4 or 16 address bytes start in the buffer. */
  srcOffset: number;
  dstOffset: number;
  /** The transport protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, others as they come). */
  proto: number;
  /** Ports; -1 without them (ICMP, other protocols, a non-first fragment). */
  sport: number;
  dport: number;
  /** TCP flags (FIN 0x01 ... URG 0x20); 0 for other protocols. */
  flags: number;
  /** ICMP/ICMPv6 type and code; -1 for other protocols. */
  icmpType: number;
  icmpCode: number;
  /** A fragment other than the first: it carries no transport header. */
  fragment: boolean;
  direction: Direction;
}

/** A fresh, zeroed packet to decode into. */
export function createDecodedPacket(): DecodedPacket {
  return {
    family: 4,
    src4: 0,
    dst4: 0,
    srcOffset: 0,
    dstOffset: 0,
    proto: 0,
    sport: -1,
    dport: -1,
    flags: 0,
    icmpType: -1,
    icmpCode: -1,
    fragment: false,
    direction: 'unknown',
  };
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;
/** Stacked VLAN tags read before giving up (QinQ is two; more is garbage). */
const MAX_VLAN_TAGS = 4;
/** IPv6 extension headers walked before giving up on a chain. */
const MAX_EXTENSION_HEADERS = 8;

/**
 * Decodes the frame in `buf[0, length)` of link type `linkType` into `out`. `length` is the
 * captured length (libpcap's `caplen`), at most `buf.length`.
 */
export function decodePacket(
  buf: Uint8Array,
  length: number,
  linkType: number,
  out: DecodedPacket,
): DecodeStatus {
  const end = Math.min(length, buf.length);
  out.direction = 'unknown';
  switch (linkType) {
    case LinkType.ETHERNET: {
      if (end < 14) return 'truncated';
      let offset = 12;
      let type = (buf[offset] as number) * 256 + (buf[offset + 1] as number);
      let tags = 0;
      while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) {
        if (++tags > MAX_VLAN_TAGS) return 'malformed';
        offset += 4;
        if (offset + 2 > end) return 'truncated';
        type = (buf[offset] as number) * 256 + (buf[offset + 1] as number);
      }
      return decodeByEthertype(buf, offset + 2, end, type, out);
    }
    case LinkType.LINUX_SLL: {
      if (end < 16) return 'truncated';
      out.direction = sllDirection(((buf[0] as number) << 8) | (buf[1] as number));
      return decodeByEthertype(buf, 16, end, ((buf[14] as number) << 8) | (buf[15] as number), out);
    }
    case LinkType.LINUX_SLL2: {
      if (end < 20) return 'truncated';
      out.direction = sllDirection(buf[10] as number);
      return decodeByEthertype(buf, 20, end, ((buf[0] as number) << 8) | (buf[1] as number), out);
    }
    case LinkType.RAW:
    case LinkType.RAW_BSD:
    case LinkType.RAW_LINKTYPE: {
      if (end < 1) return 'truncated';
      const version = (buf[0] as number) >> 4;
      if (version === 4) return decodeIPv4(buf, 0, end, out);
      if (version === 6) return decodeIPv6(buf, 0, end, out);
      return 'malformed';
    }
    case LinkType.IPV4:
      return decodeIPv4(buf, 0, end, out);
    case LinkType.IPV6:
      return decodeIPv6(buf, 0, end, out);
    case LinkType.NULL:
    case LinkType.LOOP: {
      if (end < 4) return 'truncated';
      // Host byte order for NULL (either, depending on the capturing machine), network for LOOP.
      const le = (buf[0] as number) | ((buf[1] as number) << 8);
      const be = ((buf[2] as number) << 8) | (buf[3] as number);
      const family = linkType === LinkType.LOOP ? be : le !== 0 ? le : be;
      if (family === 2) return decodeIPv4(buf, 4, end, out);
      // AF_INET6 is 24, 28 or 30 on the BSDs, 10 on Linux.
      if (family === 24 || family === 28 || family === 30 || family === 10)
        return decodeIPv6(buf, 4, end, out);
      return 'not-ip';
    }
    default:
      return 'unsupported';
  }
}

/** SLL packet types: 0 to us, 1 broadcast, 2 multicast, 3 to another host, 4 sent by us. */
function sllDirection(packetType: number): Direction {
  if (packetType === 4) return 'out';
  if (packetType <= 3) return 'in';
  return 'unknown';
}

function decodeByEthertype(
  buf: Uint8Array,
  offset: number,
  end: number,
  type: number,
  out: DecodedPacket,
): DecodeStatus {
  if (type === ETHERTYPE_IPV4) return decodeIPv4(buf, offset, end, out);
  if (type === ETHERTYPE_IPV6) return decodeIPv6(buf, offset, end, out);
  return 'not-ip';
}

function decodeIPv4(buf: Uint8Array, offset: number, end: number, out: DecodedPacket): DecodeStatus {
  if (offset + 20 > end) return 'truncated';
  const first = buf[offset] as number;
  if (first >> 4 !== 4) return 'malformed';
  const ihl = (first & 0x0f) * 4;
  if (ihl < 20) return 'malformed';
  if (offset + ihl > end) return 'truncated';
  out.family = 4;
  out.srcOffset = offset + 12;
  out.dstOffset = offset + 16;
  out.src4 = readU32(buf, offset + 12);
  out.dst4 = readU32(buf, offset + 16);
  out.proto = buf[offset + 9] as number;
  // Fragment offset (13 bits, in 8-byte units): only the first fragment has the transport header.
  const fragmentOffset = (((buf[offset + 6] as number) & 0x1f) << 8) | (buf[offset + 7] as number);
  out.fragment = fragmentOffset !== 0;
  return decodeTransport(buf, offset + ihl, end, out);
}

function decodeIPv6(buf: Uint8Array, offset: number, end: number, out: DecodedPacket): DecodeStatus {
  if (offset + 40 > end) return 'truncated';
  if ((buf[offset] as number) >> 4 !== 6) return 'malformed';
  out.family = 6;
  out.srcOffset = offset + 8;
  out.dstOffset = offset + 24;
  out.src4 = 0;
  out.dst4 = 0;
  out.fragment = false;
  let next = buf[offset + 6] as number;
  let at = offset + 40;
  for (let walked = 0; ; walked++) {
    if (next === 0 || next === 43 || next === 60 || next === 135 || next === 139 || next === 140) {
      // Hop-by-hop, routing, destination options, mobility, HIP, shim6: (length + 1) * 8 bytes.
      if (walked >= MAX_EXTENSION_HEADERS) return 'malformed';
      if (at + 2 > end) return 'truncated';
      next = buf[at] as number;
      at += ((buf[at + 1] as number) + 1) * 8;
    } else if (next === 44) {
      // Fragment header: 8 bytes; offset in the upper 13 bits of bytes 2-3.
      if (walked >= MAX_EXTENSION_HEADERS) return 'malformed';
      if (at + 8 > end) return 'truncated';
      const fragmentOffset = (((buf[at + 2] as number) << 8) | (buf[at + 3] as number)) >> 3;
      if (fragmentOffset !== 0) out.fragment = true;
      next = buf[at] as number;
      at += 8;
    } else if (next === 51) {
      // Authentication header: (length + 2) * 4 bytes.
      if (walked >= MAX_EXTENSION_HEADERS) return 'malformed';
      if (at + 2 > end) return 'truncated';
      next = buf[at] as number;
      at += ((buf[at + 1] as number) + 2) * 4;
    } else {
      break;
    }
  }
  out.proto = next;
  return decodeTransport(buf, at, end, out);
}

function decodeTransport(buf: Uint8Array, at: number, end: number, out: DecodedPacket): DecodeStatus {
  out.sport = -1;
  out.dport = -1;
  out.flags = 0;
  out.icmpType = -1;
  out.icmpCode = -1;
  if (out.fragment) return 'ok';
  switch (out.proto) {
    case IpProto.TCP: {
      if (at + 14 > end) return 'truncated';
      if ((buf[at + 12] as number) >> 4 < 5) return 'malformed';
      out.sport = ((buf[at] as number) << 8) | (buf[at + 1] as number);
      out.dport = ((buf[at + 2] as number) << 8) | (buf[at + 3] as number);
      out.flags = (buf[at + 13] as number) & 0x3f;
      return 'ok';
    }
    case IpProto.UDP: {
      if (at + 4 > end) return 'truncated';
      out.sport = ((buf[at] as number) << 8) | (buf[at + 1] as number);
      out.dport = ((buf[at + 2] as number) << 8) | (buf[at + 3] as number);
      return 'ok';
    }
    case IpProto.ICMP:
    case IpProto.ICMPV6: {
      if (at + 2 > end) return 'truncated';
      out.icmpType = buf[at] as number;
      out.icmpCode = buf[at + 1] as number;
      return 'ok';
    }
    default:
      return 'ok';
  }
}

function readU32(buf: Uint8Array, at: number): number {
  return (
    (buf[at] as number) * 0x1000000 +
    (((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number))
  );
}

/** Dotted-quad text of an IPv4 address held as an unsigned integer. */
export function formatV4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/**
 * RFC 5952 text of the 16 IPv6 address bytes at `buf[at]`: lower-case hex, leading zeros dropped,
 * the longest run of two or more zero groups (the first of equal runs) written `::`. The same text
 * `core/ip.ts` produces, so a tracked address and a ban key agree.
 */
export function formatV6(buf: Uint8Array, at: number): string {
  let bestStart = -1;
  let bestLength = 0;
  let runStart = -1;
  for (let g = 0; g < 8; g++) {
    const zero = buf[at + g * 2] === 0 && buf[at + g * 2 + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
      const runLength = g - runStart + 1;
      if (runLength > bestLength) {
        bestLength = runLength;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  if (bestLength < 2) bestStart = -1;
  let text = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += '::';
      g += bestLength - 1;
      continue;
    }
    const group = (((buf[at + g * 2] as number) << 8) | (buf[at + g * 2 + 1] as number)).toString(16);
    text += g === 7 || g + 1 === bestStart ? group : `${group}:`;
  }
  return text;
}

/** The source address of the packet just decoded, as text. */
export function sourceText(buf: Uint8Array, packet: DecodedPacket): string {
  return packet.family === 4 ? formatV4(packet.src4) : formatV6(buf, packet.srcOffset);
}

/** The destination address of the packet just decoded, as text. */
export function destinationText(buf: Uint8Array, packet: DecodedPacket): string {
  return packet.family === 4 ? formatV4(packet.dst4) : formatV6(buf, packet.dstOffset);
}

/**
 * The link type libpcap reported when the capture opened. The `pcap` binding names the common
 * ones (`LINKTYPE_ETHERNET`) and reports the rest as `Unknown linktype 276`; both are read here.
 */
export function linkTypeFromName(name: string): number {
  switch (name) {
    case 'LINKTYPE_NULL':
      return LinkType.NULL;
    case 'LINKTYPE_ETHERNET':
      return LinkType.ETHERNET;
    case 'LINKTYPE_RAW':
      return LinkType.RAW;
    case 'LINKTYPE_LINUX_SLL':
      return LinkType.LINUX_SLL;
    default: {
      const match = /(\d+)\s*$/.exec(name);
      return match === null ? -1 : Number(match[1]);
    }
  }
}
