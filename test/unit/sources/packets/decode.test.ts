import { describe, expect, it } from 'vitest';
import { formatIp, parseIp } from '../../../../src/core/ip.js';
import {
  createDecodedPacket,
  type DecodeStatus,
  decodePacket,
  destinationText,
  formatV6,
  LinkType,
  linkTypeFromName,
  sourceText,
} from '../../../../src/sources/packets/decode.js';
import {
  ACK,
  buf,
  ETH_ARP,
  ETH_IPV4,
  ETH_IPV6,
  ethernet,
  FIN,
  icmp,
  ipv4,
  ipv6,
  PSH,
  SYN,
  sll,
  sll2,
  tcp,
  URG,
  udp,
} from '../../../helpers/packet-frames.js';

const decode = (bytes: number[] | Buffer, link: number, length = bytes.length) => {
  const out = createDecodedPacket();
  const b = Buffer.isBuffer(bytes) ? bytes : buf(bytes);
  const status = decodePacket(b, length, link, out);
  return { status, p: out, src: sourceText(b, out), dst: destinationText(b, out) };
};

describe('decodePacket: link layers', () => {
  it('reads an Ethernet IPv4 TCP SYN: addresses, ports, flags', () => {
    const { status, p, src, dst } = decode(
      ethernet(ETH_IPV4, ipv4('203.0.113.9', '192.0.2.1', 6, tcp(40_000, 22, SYN))),
      LinkType.ETHERNET,
    );
    expect(status).toBe('ok');
    expect([src, dst, p.family, p.proto, p.sport, p.dport, p.flags]).toEqual([
      '203.0.113.9',
      '192.0.2.1',
      4,
      6,
      40_000,
      22,
      SYN,
    ]);
    expect(p.direction).toBe('unknown');
  });

  it('skips 802.1Q and QinQ tags to the IP header', () => {
    const frame = ethernet(ETH_IPV6, ipv6('2001:db8::7', '2001:db8::1', 17, udp(5353, 53)), [
      [0x88a8, 10],
      [0x8100, 20],
    ]);
    const { status, p, src } = decode(frame, LinkType.ETHERNET);
    expect(status).toBe('ok');
    expect([src, p.proto, p.sport, p.dport]).toEqual(['2001:db8::7', 17, 5353, 53]);
  });

  it('reads Linux cooked v1 and v2 headers (the any interface) with their direction', () => {
    const packet = ipv4('198.51.100.4', '192.0.2.1', 17, udp(1000, 161));
    const inbound = decode(sll(ETH_IPV4, packet, 0), LinkType.LINUX_SLL);
    expect([inbound.status, inbound.p.direction, inbound.p.dport, inbound.src]).toEqual([
      'ok',
      'in',
      161,
      '198.51.100.4',
    ]);
    expect(decode(sll(ETH_IPV4, packet, 4), LinkType.LINUX_SLL).p.direction).toBe('out');
    const v2 = decode(sll2(ETH_IPV6, ipv6('fe80::1', 'ff02::1', 58, icmp(135, 0)), 2), LinkType.LINUX_SLL2);
    expect([v2.status, v2.p.direction, v2.p.proto, v2.p.icmpType, v2.src, v2.dst]).toEqual([
      'ok',
      'in',
      58,
      135,
      'fe80::1',
      'ff02::1',
    ]);
    expect(decode(sll2(ETH_IPV4, packet, 4), LinkType.LINUX_SLL2).p.direction).toBe('out');
  });

  it('reads raw IP (by version nibble) and the IPv4/IPv6-only link types', () => {
    const v4 = ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 80, SYN));
    const v6 = ipv6('fd00::2', 'fd00::1', 6, tcp(2, 443, SYN | ACK));
    for (const link of [LinkType.RAW, LinkType.RAW_BSD, LinkType.RAW_LINKTYPE]) {
      expect(decode(v4, link).p.dport).toBe(80);
      expect(decode(v6, link).p.dport).toBe(443);
    }
    expect(decode(v4, LinkType.IPV4).status).toBe('ok');
    expect(decode(v6, LinkType.IPV6).p.flags).toBe(SYN | ACK);
    expect(decode([0x50, ...v4.slice(1)], LinkType.RAW).status).toBe('malformed');
  });

  it('reads BSD loopback headers in either byte order', () => {
    const v4 = ipv4('127.0.0.2', '127.0.0.1', 17, udp(9, 10));
    expect(decode([2, 0, 0, 0, ...v4], LinkType.NULL).p.dport).toBe(10);
    expect(decode([0, 0, 0, 2, ...v4], LinkType.NULL).p.dport).toBe(10);
    expect(decode([0, 0, 0, 24, ...ipv6('::2', '::1', 17, udp(1, 2))], LinkType.LOOP).p.dport).toBe(2);
    expect(decode([7, 0, 0, 0, 1, 2], LinkType.NULL).status).toBe('not-ip');
  });

  it('counts ARP and other ethertypes as not-ip and unknown link types as unsupported', () => {
    expect(decode(ethernet(ETH_ARP, new Array(28).fill(0)), LinkType.ETHERNET).status).toBe('not-ip');
    expect(decode(ipv4('10.0.0.1', '10.0.0.2', 6, tcp(1, 2, SYN)), 127).status).toBe('unsupported');
  });
});

describe('decodePacket: IP and transports', () => {
  it('honours IPv4 options (IHL above 5)', () => {
    const { status, p } = decode(
      ipv4('10.0.0.2', '10.0.0.1', 6, tcp(5, 8080, SYN), { ihl: 7 }),
      LinkType.RAW,
    );
    expect([status, p.dport]).toEqual(['ok', 8080]);
  });

  it('gives ports only to the first IPv4 fragment', () => {
    const first = decode(
      ipv4('10.0.0.2', '10.0.0.1', 17, udp(7, 9), { moreFragments: true, fragmentOffset: 0 }),
      LinkType.RAW,
    );
    expect([first.status, first.p.fragment, first.p.dport]).toEqual(['ok', false, 9]);
    // A later fragment's first bytes are payload: they must not be read as ports.
    const later = decode(ipv4('10.0.0.2', '10.0.0.1', 17, udp(7, 9), { fragmentOffset: 185 }), LinkType.RAW);
    expect([later.status, later.p.fragment, later.p.sport, later.p.dport, later.p.proto]).toEqual([
      'ok',
      true,
      -1,
      -1,
      17,
    ]);
  });

  it('walks IPv6 extension headers, and gives ports only to the first fragment', () => {
    const chained = decode(
      ipv6('2001:db8::9', '2001:db8::1', 6, tcp(3333, 22, SYN), [
        { type: 0 },
        { type: 60, units: 1 },
        { type: 43 },
        { type: 51 },
        { type: 44, fragmentOffset: 0 },
      ]),
      LinkType.RAW,
    );
    expect([chained.status, chained.p.proto, chained.p.dport, chained.p.fragment]).toEqual([
      'ok',
      6,
      22,
      false,
    ]);
    const later = decode(
      ipv6('2001:db8::9', '2001:db8::1', 17, udp(1, 2), [{ type: 44, fragmentOffset: 100 }]),
      LinkType.RAW,
    );
    expect([later.status, later.p.fragment, later.p.dport, later.p.proto]).toEqual(['ok', true, -1, 17]);
    const none = decode(ipv6('::2', '::1', 59, []), LinkType.RAW);
    expect([none.status, none.p.proto, none.p.dport]).toEqual(['ok', 59, -1]);
  });

  it('reads ICMP and ICMPv6 type and code, UDP ports, and the TCP flags of scans', () => {
    const echo = decode(ipv4('10.0.0.2', '10.0.0.1', 1, icmp(8, 0)), LinkType.RAW);
    expect([echo.p.proto, echo.p.icmpType, echo.p.icmpCode, echo.p.dport]).toEqual([1, 8, 0, -1]);
    const unreachable = decode(ipv6('::2', '::1', 58, icmp(1, 4)), LinkType.RAW);
    expect([unreachable.p.icmpType, unreachable.p.icmpCode]).toEqual([1, 4]);
    const xmas = decode(ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 2, FIN | PSH | URG)), LinkType.RAW);
    expect(xmas.p.flags).toBe(FIN | PSH | URG);
    expect(decode(ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 2, 0)), LinkType.RAW).p.flags).toBe(0);
  });

  it('refuses inconsistent headers as malformed', () => {
    expect(
      decode(ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 2, SYN), { version: 6 }), LinkType.IPV4).status,
    ).toBe('malformed');
    const lowIhl = ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 2, SYN));
    lowIhl[0] = 0x44;
    expect(decode(lowIhl, LinkType.RAW).status).toBe('malformed');
    expect(decode(ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 2, SYN, 4)), LinkType.RAW).status).toBe('malformed');
    const loop = ipv6('::2', '::1', 6, tcp(1, 2, SYN), new Array(9).fill({ type: 60 }));
    expect(decode(loop, LinkType.RAW).status).toBe('malformed');
  });
});

describe('decodePacket: truncated and garbage input', () => {
  const frames: [string, number[], number][] = [
    [
      'eth v4 tcp',
      ethernet(ETH_IPV4, ipv4('203.0.113.9', '192.0.2.1', 6, tcp(4, 22, SYN))),
      LinkType.ETHERNET,
    ],
    [
      'eth vlan v6 ext udp',
      ethernet(ETH_IPV6, ipv6('2001:db8::2', '2001:db8::1', 17, udp(1, 2), [{ type: 0 }, { type: 44 }]), [
        [0x8100, 5],
      ]),
      LinkType.ETHERNET,
    ],
    ['sll v4 icmp', sll(ETH_IPV4, ipv4('10.0.0.2', '10.0.0.1', 1, icmp(8, 0))), LinkType.LINUX_SLL],
    ['sll2 v6 tcp', sll2(ETH_IPV6, ipv6('::2', '::1', 6, tcp(1, 2, SYN))), LinkType.LINUX_SLL2],
    ['raw v4 options', ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 2, SYN), { ihl: 8 }), LinkType.RAW],
  ];

  it.each(frames)(
    '%s: every cut is truncated (never a throw, never a wrong port), the whole frame ok',
    (_, frame, link) => {
      const whole = decode(frame, link);
      expect(whole.status).toBe('ok');
      for (let cut = 0; cut < frame.length; cut++) {
        const { status, p } = decode(frame, link, cut);
        // Transport bytes are needed only up to the flags (TCP) or the ports (UDP) or the code (ICMP).
        if (status === 'ok')
          expect([p.sport, p.dport, p.flags]).toEqual([whole.p.sport, whole.p.dport, whole.p.flags]);
        else expect(status).toBe('truncated');
      }
    },
  );

  it('a caplen larger than the buffer reads only the buffer', () => {
    const frame = ethernet(ETH_IPV4, ipv4('10.0.0.2', '10.0.0.1', 6, tcp(1, 2, SYN)));
    expect(decode(buf(frame.slice(0, 30)), LinkType.ETHERNET, 1500).status).toBe('truncated');
  });

  it('random bytes on every link type never throw and give a known status', () => {
    let seed = 42;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed >>> 24;
    };
    const statuses = new Set<DecodeStatus>();
    const out = createDecodedPacket();
    const links = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];
    for (let i = 0; i < 20_000; i++) {
      const length = random() % 120;
      const bytes = Buffer.alloc(length);
      for (let j = 0; j < length; j++) bytes[j] = random();
      // Bias towards plausible headers so the deeper branches run too.
      if (length > 0 && i % 3 === 0) bytes[0] = i % 2 === 0 ? 0x45 : 0x60;
      const status = decodePacket(bytes, length, links[i % links.length] as number, out);
      statuses.add(status);
      if (status === 'ok') {
        expect(out.dport).toBeGreaterThanOrEqual(-1);
        expect(out.dport).toBeLessThanOrEqual(65_535);
      }
    }
    expect([...statuses].every((s) => ['ok', 'truncated', 'not-ip', 'malformed'].includes(s))).toBe(true);
    expect(statuses.has('ok')).toBe(true);
    expect(statuses.has('truncated')).toBe(true);
  });
});

describe('address text and link names', () => {
  it('writes IPv6 as RFC 5952, as core/ip.ts does', () => {
    for (const text of [
      '::',
      '::1',
      '2001:db8::1',
      '2001:db8:0:1:0:0:0:1',
      '2001:0:0:1:0:0:0:1',
      'fe80::',
      'fd00:200:17::2',
      '1:2:3:4:5:6:7:8',
      '1:0:3:4:5:6:7:8',
      'ff02::1:ff00:1',
    ]) {
      const parsed = parseIp(text);
      if (parsed === null || parsed.family !== 6) throw new Error(text);
      expect(formatV6(parsed.bytes, 0)).toBe(formatIp(parsed));
    }
  });

  it('reads the binding link names, named and numbered', () => {
    expect(linkTypeFromName('LINKTYPE_ETHERNET')).toBe(1);
    expect(linkTypeFromName('LINKTYPE_LINUX_SLL')).toBe(113);
    expect(linkTypeFromName('LINKTYPE_RAW')).toBe(12);
    expect(linkTypeFromName('Unknown linktype 276')).toBe(276);
    expect(linkTypeFromName('LINKTYPE_IEEE802_11_RADIO')).toBe(-1);
  });
});
