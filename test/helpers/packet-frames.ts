import { parseIp } from '../../src/core/ip.js';

/**
 * Hand-built frames for the packet decoder and tracker tests and the packets benchmark: each
 * header written byte by byte from its RFC layout, so a test states exactly what is on the wire.
 */

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;

function addressBytes(text: string): number[] {
  const parsed = parseIp(text);
  if (parsed === null) throw new Error(`bad address ${text}`);
  if (parsed.family === 4) {
    const v = parsed.v4;
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  }
  return [...parsed.bytes];
}

const u16 = (n: number) => [(n >> 8) & 255, n & 255];

/** A TCP header (20 bytes, no options; `offset` words to lie about the data offset). */
export function tcp(sport: number, dport: number, flags: number, offset = 5): number[] {
  return [
    ...u16(sport),
    ...u16(dport),
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    offset << 4,
    flags,
    ...u16(64_240),
    0,
    0,
    0,
    0,
  ];
}

export function udp(sport: number, dport: number, payload: number[] = []): number[] {
  return [...u16(sport), ...u16(dport), ...u16(8 + payload.length), 0, 0, ...payload];
}

export function icmp(type: number, code: number): number[] {
  return [type, code, 0, 0, 0, 0, 0, 0];
}

export interface V4Options {
  /** Header length in 32-bit words (5 to 15; more than 5 adds zeroed options). Default 5. */
  ihl?: number;
  /** Fragment offset in 8-byte units. Default 0. */
  fragmentOffset?: number;
  /** More-fragments flag. Default false. */
  moreFragments?: boolean;
  /** Version nibble to write. Default 4. */
  version?: number;
}

export function ipv4(
  src: string,
  dst: string,
  proto: number,
  payload: number[],
  o: V4Options = {},
): number[] {
  const ihl = o.ihl ?? 5;
  const header = new Array<number>(Math.max(20, ihl * 4)).fill(0);
  header[0] = ((o.version ?? 4) << 4) | (ihl & 0x0f);
  const total = header.length + payload.length;
  header[2] = (total >> 8) & 255;
  header[3] = total & 255;
  const frag = ((o.moreFragments ? 0x2000 : 0) | (o.fragmentOffset ?? 0)) & 0xffff;
  header[6] = frag >> 8;
  header[7] = frag & 255;
  header[8] = 64;
  header[9] = proto;
  header.splice(12, 4, ...addressBytes(src));
  header.splice(16, 4, ...addressBytes(dst));
  return [...header, ...payload];
}

/** An IPv6 extension header as `ipv6` chains it: its type and its body after the first two bytes. */
export interface V6Extension {
  type: number;
  /** For hop-by-hop/routing/destination: total length in 8-byte units minus one. Default 0 (8 bytes). */
  units?: number;
  /** Fragment header: fragment offset in 8-byte units. */
  fragmentOffset?: number;
}

export function ipv6(
  src: string,
  dst: string,
  next: number,
  payload: number[],
  extensions: V6Extension[] = [],
): number[] {
  const chain: number[] = [];
  const types = [...extensions.map((e) => e.type), next];
  extensions.forEach((ext, i) => {
    const nextType = types[i + 1] as number;
    if (ext.type === 44) {
      const off = (ext.fragmentOffset ?? 0) << 3;
      chain.push(nextType, 0, (off >> 8) & 255, off & 255, 0, 0, 0, 1);
    } else if (ext.type === 51) {
      // AH: length in 4-byte units minus 2; 12 bytes here.
      chain.push(nextType, 1, ...new Array<number>(10).fill(0));
    } else {
      const units = ext.units ?? 0;
      chain.push(nextType, units, ...new Array<number>((units + 1) * 8 - 2).fill(0));
    }
  });
  const body = [...chain, ...payload];
  const first = types[0] as number;
  return [0x60, 0, 0, 0, ...u16(body.length), first, 64, ...addressBytes(src), ...addressBytes(dst), ...body];
}

const MAC_A = [2, 0, 0, 0, 0, 1];
const MAC_B = [2, 0, 0, 0, 0, 2];

/** An Ethernet II frame; each VLAN tag is `[tpid, vid]`. */
export function ethernet(ethertype: number, payload: number[], vlans: [number, number][] = []): number[] {
  const tags = vlans.flatMap(([tpid, vid]) => [...u16(tpid), ...u16(vid)]);
  return [...MAC_A, ...MAC_B, ...tags, ...u16(ethertype), ...payload];
}

/** Linux cooked v1: packet type (0 to us, 4 outgoing), ARPHRD_ETHER, address, protocol. */
export function sll(protocol: number, payload: number[], packetType = 0): number[] {
  return [...u16(packetType), ...u16(1), ...u16(6), ...MAC_A, 0, 0, ...u16(protocol), ...payload];
}

/** Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address. */
export function sll2(protocol: number, payload: number[], packetType = 0): number[] {
  return [...u16(protocol), 0, 0, 0, 0, 0, 2, ...u16(1), packetType, 6, ...MAC_A, 0, 0, ...payload];
}

export const ETH_IPV4 = 0x0800;
export const ETH_IPV6 = 0x86dd;
export const ETH_ARP = 0x0806;

export const buf = (bytes: number[]): Buffer => Buffer.from(bytes);
