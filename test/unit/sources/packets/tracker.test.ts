import { describe, expect, it } from 'vitest';
import type { PacketFilterEvent } from '../../../../src/detection/filters/fields/packet-fields.js';
import { createDecodedPacket, decodePacket, LinkType } from '../../../../src/sources/packets/decode.js';
import { localAddresses } from '../../../../src/sources/packets/packet-watcher.js';
import {
  PacketTracker,
  type PacketTrackerOptions,
  portTable,
} from '../../../../src/sources/packets/tracker.js';
import {
  ACK,
  buf,
  FIN,
  icmp,
  ipv4,
  ipv6,
  PSH,
  RST,
  SYN,
  tcp,
  URG,
  udp,
} from '../../../helpers/packet-frames.js';

const HOST = '192.0.2.1';
const HOST6 = '2001:db8::1';
const ATTACKER = '203.0.113.66';

function setup(options: Partial<PacketTrackerOptions> = {}) {
  const events: PacketFilterEvent[] = [];
  const tracker = new PacketTracker({
    local: localAddresses([HOST, HOST6]),
    watchedPorts: null,
    emit: (event) => events.push(event),
    ...options,
  });
  const decoded = createDecodedPacket();
  let now = 1_000_000;
  const send = (frame: number[]) => {
    const b = buf(frame);
    if (decodePacket(b, b.length, LinkType.RAW, decoded) !== 'ok') throw new Error('bad test frame');
    return tracker.onPacket(b, decoded, now);
  };
  const inTcp = (src: string, sport: number, dport: number, flags: number) =>
    send(ipv4(src, HOST, 6, tcp(sport, dport, flags)));
  const outTcp = (dst: string, sport: number, dport: number, flags: number) =>
    send(ipv4(HOST, dst, 6, tcp(sport, dport, flags)));
  const kinds = (kind: string) => events.filter((e) => e.event === kind);
  return {
    tracker,
    events,
    send,
    inTcp,
    outTcp,
    kinds,
    advance: (ms: number) => {
      now += ms;
      tracker.sweep(now);
    },
  };
}

describe('PacketTracker: probes (port scans)', () => {
  it('a SYN scan: each new port is a probe counting the distinct ports so far; a repeat is not', () => {
    const t = setup();
    for (let port = 1; port <= 20; port++) t.inTcp(ATTACKER, 40_000, port, SYN);
    t.inTcp(ATTACKER, 40_001, 5, SYN);
    const probes = t.kinds('probe');
    expect(probes).toHaveLength(20);
    expect(probes.map((e) => e.ports)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(probes[0]).toMatchObject({ ip: ATTACKER, local: HOST, proto: 'tcp', dport: 1, scan: 'syn' });
  });

  it('classifies NULL, FIN and Xmas scans, and never counts ACK or RST traffic as probes', () => {
    const t = setup();
    t.inTcp(ATTACKER, 1, 100, 0);
    t.inTcp(ATTACKER, 1, 101, FIN);
    t.inTcp(ATTACKER, 1, 102, FIN | PSH | URG);
    t.inTcp(ATTACKER, 1, 103, PSH);
    t.inTcp(ATTACKER, 1, 104, ACK);
    t.inTcp(ATTACKER, 1, 105, ACK | PSH);
    t.inTcp(ATTACKER, 1, 106, FIN | ACK);
    t.inTcp(ATTACKER, 1, 107, RST);
    expect(t.kinds('probe').map((e) => [e.dport, e.scan])).toEqual([
      [100, 'none'],
      [101, 'fin'],
      [102, 'xmas'],
      [103, 'other'],
    ]);
  });

  it('a UDP datagram is a probe unless it answers one the host sent (DNS replies are not a scan)', () => {
    const t = setup();
    const resolver = '198.51.100.53';
    for (let i = 0; i < 30; i++) {
      t.send(ipv4(HOST, resolver, 17, udp(50_000 + i, 53)));
      t.send(ipv4(resolver, HOST, 17, udp(53, 50_000 + i)));
    }
    expect(t.kinds('probe')).toEqual([]);
    for (const port of [53, 123, 161, 500]) t.send(ipv4(ATTACKER, HOST, 17, udp(40_000, port)));
    expect(t.kinds('probe').map((e) => [e.proto, e.dport, e.scan, e.ports])).toEqual([
      ['udp', 53, 'udp', 1],
      ['udp', 123, 'udp', 2],
      ['udp', 161, 'udp', 3],
      ['udp', 500, 'udp', 4],
    ]);
  });

  it('ports count per protocol, and a port touched again is new once the scan window passed', () => {
    const t = setup({ scanWindowMs: 60_000 });
    t.inTcp(ATTACKER, 1, 53, SYN);
    t.send(ipv4(ATTACKER, HOST, 17, udp(1, 53)));
    expect(t.kinds('probe').map((e) => e.ports)).toEqual([1, 2]);
    t.advance(59_000);
    t.inTcp(ATTACKER, 2, 53, SYN); // still touched: refreshed, not new
    expect(t.kinds('probe')).toHaveLength(2);
    t.advance(61_000);
    t.inTcp(ATTACKER, 3, 80, SYN);
    // udp/53 expired (touched 120 s ago) and tcp/53 too (61 s since its refresh): one port left.
    expect(t.kinds('probe').at(-1)).toMatchObject({ dport: 80, ports: 1 });
  });

  it('IPv6 probes carry RFC 5952 addresses', () => {
    const t = setup();
    t.send(ipv6('2001:db8:0:0:0:0:0:66', HOST6, 6, tcp(1, 22, SYN)));
    expect(t.kinds('probe')[0]).toMatchObject({ ip: '2001:db8::66', local: HOST6, dport: 22 });
  });
});

describe('PacketTracker: SYNs and half-open handshakes', () => {
  it('syn events only for watched ports; half-open followed only there', () => {
    const t = setup({
      watchedPorts: portTable([
        [22, 22],
        [8000, 8999],
      ]),
    });
    t.inTcp(ATTACKER, 1, 22, SYN);
    t.inTcp(ATTACKER, 2, 23, SYN);
    t.inTcp(ATTACKER, 3, 8080, SYN);
    expect(t.kinds('syn').map((e) => e.dport)).toEqual([22, 8080]);
    t.advance(6_000);
    expect(t.kinds('half-open').map((e) => e.dport)).toEqual([22, 8080]);
  });

  it('a completed handshake is not half-open; one without the ACK is, after the timeout', () => {
    const t = setup({ handshakeTimeoutMs: 5_000 });
    t.inTcp('198.51.100.7', 50_000, 443, SYN);
    t.outTcp('198.51.100.7', 443, 50_000, SYN | ACK);
    t.inTcp('198.51.100.7', 50_000, 443, ACK);
    t.inTcp(ATTACKER, 40_000, 443, SYN);
    t.outTcp(ATTACKER, 443, 40_000, SYN | ACK);
    t.advance(4_999);
    expect(t.kinds('half-open')).toEqual([]);
    t.advance(1);
    expect(t.kinds('half-open')).toEqual([
      expect.objectContaining({ ip: ATTACKER, dport: 443, sport: 40_000, ended: 'timeout', local: HOST }),
    ]);
    expect(t.tracker.stats().tracked.halfOpen).toBe(0);
  });

  it('a SYN retransmission keeps the first SYN clock; the client reset is half-open at once', () => {
    const t = setup({ handshakeTimeoutMs: 5_000 });
    t.inTcp(ATTACKER, 40_000, 80, SYN);
    t.advance(3_000);
    t.inTcp(ATTACKER, 40_000, 80, SYN);
    t.advance(2_000);
    expect(t.kinds('half-open')).toHaveLength(1);
    // nmap -sS: SYN, the host's SYN-ACK, the scanner's RST.
    t.inTcp(ATTACKER, 40_001, 81, SYN);
    t.outTcp(ATTACKER, 81, 40_001, SYN | ACK);
    t.inTcp(ATTACKER, 40_001, 81, RST);
    expect(t.kinds('half-open').at(-1)).toMatchObject({ dport: 81, ended: 'reset' });
    expect(t.kinds('syn')).toHaveLength(3);
  });

  it('a handshake the host refused (its RST: a closed port) is not half-open', () => {
    const t = setup();
    t.inTcp(ATTACKER, 40_000, 9, SYN);
    t.outTcp(ATTACKER, 9, 40_000, RST | ACK);
    t.advance(10_000);
    expect(t.kinds('half-open')).toEqual([]);
  });

  it('the handshake table is capped: a spoofed SYN flood evicts the oldest, counted', () => {
    const t = setup({ maxHalfOpen: 1_000, maxSources: 500 });
    for (let i = 0; i < 20_000; i++)
      t.inTcp(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1024 + (i % 50_000), 80, SYN);
    const stats = t.tracker.stats();
    expect(stats.tracked.halfOpen).toBe(1_000);
    expect(stats.evicted.halfOpen).toBe(19_000);
    expect(stats.tracked.sources).toBe(500);
    expect(stats.evicted.sources).toBe(19_500);
  });
});

describe('PacketTracker: packet counts, direction, memory', () => {
  it('a packet event for every batch of one client and protocol, carrying its weight', () => {
    const t = setup({ packetBatch: 100 });
    for (let i = 0; i < 250; i++) t.send(ipv4(ATTACKER, HOST, 17, udp(1000, 9999)));
    for (let i = 0; i < 99; i++) t.send(ipv4(ATTACKER, HOST, 1, icmp(8, 0)));
    const packets = t.kinds('packet');
    expect(packets.map((e) => [e.proto, e.packets])).toEqual([
      ['udp', 100],
      ['udp', 100],
    ]);
    t.send(ipv4(ATTACKER, HOST, 1, icmp(8, 0)));
    expect(t.kinds('packet').at(-1)).toMatchObject({ proto: 'icmp', packets: 100, dport: undefined });
  });

  it('packets counted more than 10 s apart do not add up to an event', () => {
    const t = setup({ packetBatch: 100 });
    for (let i = 0; i < 60; i++) t.send(ipv4(ATTACKER, HOST, 17, udp(1, 2)));
    t.advance(10_000);
    for (let i = 0; i < 60; i++) t.send(ipv4(ATTACKER, HOST, 17, udp(1, 2)));
    expect(t.kinds('packet')).toEqual([]);
  });

  it('only packets to a local address from another are inbound; the host own and transit are not', () => {
    const t = setup();
    expect(t.send(ipv4(ATTACKER, HOST, 6, tcp(1, 22, SYN)))).toBe('in');
    expect(t.send(ipv4(HOST, ATTACKER, 6, tcp(22, 1, SYN | ACK)))).toBe('out');
    expect(t.send(ipv4(ATTACKER, '192.0.2.99', 6, tcp(1, 23, SYN)))).toBe('other');
    expect(t.send(ipv4(HOST, ATTACKER, 6, tcp(5, 24, SYN)))).toBe('out');
    expect(t.kinds('probe').map((e) => e.dport)).toEqual([22]);
    expect(t.tracker.stats()).toMatchObject({ inbound: 1, outbound: 2 });
  });

  it('ports per client are capped, so one client sweeping 65535 ports holds at most the cap', () => {
    const t = setup({ maxPortsPerSource: 256 });
    for (let port = 1; port <= 5_000; port++) t.inTcp(ATTACKER, 1, port, SYN);
    expect(t.kinds('probe').at(-1)?.ports).toBe(256);
    expect(t.tracker.stats().evicted.ports).toBe(5_000 - 256);
  });

  it('outbound UDP flows are capped', () => {
    const t = setup({ maxFlows: 100 });
    for (let i = 0; i < 1_000; i++) t.send(ipv4(HOST, ATTACKER, 17, udp(10_000 + i, 53)));
    expect(t.tracker.stats().tracked.flows).toBe(100);
    expect(t.tracker.stats().evicted.flows).toBe(900);
    t.advance(120_000);
    expect(t.tracker.stats().tracked.flows).toBe(0);
  });
});
