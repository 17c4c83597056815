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
  /** A SYN to a closed port: the host refuses it with RST|ACK. */
  const closedPort = (src: string, sport: number, dport: number) => {
    inTcp(src, sport, dport, SYN);
    outTcp(src, dport, sport, RST | ACK);
  };
  return {
    tracker,
    events,
    send,
    inTcp,
    outTcp,
    closedPort,
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
    for (let port = 1; port <= 20; port++) t.closedPort(ATTACKER, 40_000, port);
    t.closedPort(ATTACKER, 40_001, 5);
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
    t.closedPort(ATTACKER, 1, 53);
    t.send(ipv4(ATTACKER, HOST, 17, udp(1, 53)));
    expect(t.kinds('probe').map((e) => e.ports)).toEqual([1, 2]);
    t.advance(59_000);
    t.closedPort(ATTACKER, 2, 53); // still touched: refreshed, not new
    expect(t.kinds('probe')).toHaveLength(2);
    t.advance(61_000);
    t.closedPort(ATTACKER, 3, 80);
    // udp/53 expired (touched 120 s ago) and tcp/53 too (61 s since its refresh): one port left.
    expect(t.kinds('probe').at(-1)).toMatchObject({ dport: 80, ports: 1 });
  });

  it('IPv6 probes carry RFC 5952 addresses', () => {
    const t = setup();
    t.send(ipv6('2001:db8:0:0:0:0:0:66', HOST6, 6, tcp(1, 22, SYN)));
    t.send(ipv6(HOST6, '2001:db8::66', 6, tcp(22, 1, RST | ACK)));
    expect(t.kinds('probe')[0]).toMatchObject({ ip: '2001:db8::66', local: HOST6, dport: 22 });
  });
});

describe('PacketTracker: what is not a scan or a flood (the host asked for it)', () => {
  it('completed connections are not probes: 16 passive FTP data connections to 16 ports', () => {
    const t = setup();
    const ftp = '192.0.2.202';
    for (let i = 0; i < 16; i++) {
      const sport = 41_000 + i;
      const dport = 50_000 + i * 13;
      t.inTcp(ftp, sport, dport, SYN);
      t.outTcp(ftp, dport, sport, SYN | ACK);
      t.inTcp(ftp, sport, dport, ACK);
      t.advance(100);
    }
    t.advance(60_000);
    expect(t.kinds('probe')).toEqual([]);
    expect(t.kinds('half-open')).toEqual([]);
  });

  it('a SYN scan still registers at once: closed ports at the host RST, open ones at the client RST', () => {
    const t = setup({ watchedPorts: portTable([[22, 22]]) });
    t.closedPort(ATTACKER, 40_000, 21);
    expect(t.kinds('probe').map((e) => [e.dport, e.ports])).toEqual([[21, 1]]);
    // An open port: SYN, the host SYN-ACK, the scanner's RST (nmap -sS).
    t.inTcp(ATTACKER, 40_000, 22, SYN);
    t.outTcp(ATTACKER, 22, 40_000, SYN | ACK);
    expect(t.kinds('probe')).toHaveLength(1);
    t.inTcp(ATTACKER, 40_000, 22, RST);
    expect(t.kinds('probe').map((e) => [e.dport, e.scan, e.ports])).toEqual([
      [21, 'syn', 1],
      [22, 'syn', 2],
    ]);
    expect(t.kinds('half-open')).toEqual([expect.objectContaining({ dport: 22, ended: 'reset' })]);
    // A filtered port (no answer at all): a probe once the handshake timed out, no half-open
    // event on a port that is not watched.
    t.inTcp(ATTACKER, 40_000, 23, SYN);
    t.advance(4_000);
    expect(t.kinds('probe')).toHaveLength(2);
    t.advance(1_000);
    expect(t.kinds('probe').at(-1)).toMatchObject({ dport: 23, ports: 3 });
    expect(t.kinds('half-open')).toHaveLength(1);
  });

  it('a SYN scan from one source port (as nmap sends it) registers each port, even past a missed RST', () => {
    const t = setup();
    // The capture missed the host's RST for port 100: the scan goes on from the same port.
    t.inTcp(ATTACKER, 55_555, 100, SYN);
    for (let port = 101; port < 116; port++) t.closedPort(ATTACKER, 55_555, port);
    expect(t.kinds('probe').map((e) => e.dport)).toEqual(Array.from({ length: 15 }, (_, i) => 101 + i));
    expect(t.kinds('probe').at(-1)).toMatchObject({ ports: 15 });
  });

  it('replies to UDP flows the host started never count: a QUIC download and DNS answers', () => {
    const t = setup({ packetBatch: 100 });
    const cdn = '198.51.100.80';
    let now = 0;
    // 10 s at 3 000 datagrams a second from the server, one datagram in ten from the host.
    for (let i = 0; i < 30_000; i++) {
      if (i % 10 === 0) t.send(ipv4(HOST, cdn, 17, udp(50_000, 443)));
      t.send(ipv4(cdn, HOST, 17, udp(443, 50_000)));
      if (i % 3_000 === 2_999) {
        now += 1_000;
        t.advance(1_000);
      }
    }
    const resolver = '198.51.100.53';
    for (let i = 0; i < 2_000; i++) {
      const port = 1_024 + ((i * 7_919) % 60_000);
      t.send(ipv4(HOST, resolver, 17, udp(port, 53)));
      t.send(ipv4(resolver, HOST, 17, udp(53, port)));
    }
    expect(now).toBe(10_000);
    expect(t.kinds('packet')).toEqual([]);
    expect(t.kinds('probe')).toEqual([]);
    // The same server sending unasked (to a port the host never used) is counted.
    for (let i = 0; i < 100; i++) t.send(ipv4(cdn, HOST, 17, udp(443, 50_001)));
    expect(t.kinds('packet')).toEqual([expect.objectContaining({ ip: cdn, proto: 'udp', packets: 100 })]);
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
    t.advance(6_000); // the SYN to 22 was never completed: a probe once the handshake timed out
    expect(t.kinds('probe').map((e) => e.dport)).toEqual([22]);
    expect(t.tracker.stats()).toMatchObject({ inbound: 1, outbound: 2 });
  });

  it('ports per client are capped, so one client sweeping 65535 ports holds at most the cap', () => {
    const t = setup({ maxPortsPerSource: 256 });
    for (let port = 1; port <= 5_000; port++) t.closedPort(ATTACKER, 1, port);
    expect(t.kinds('probe').at(-1)?.ports).toBe(256);
    expect(t.tracker.stats().evicted.ports).toBe(5_000 - 256);
  });

  it('port entries over all clients stay within the budget, the least recently active clients forgotten', () => {
    const t = setup({ maxPortEntries: 1_000, maxPortsPerSource: 100 });
    for (let s = 0; s < 50; s++) {
      for (let port = 1; port <= 100; port++) t.inTcp(`10.9.0.${s}`, 1, port, 0);
      t.advance(1_000);
    }
    const stats = t.tracker.stats();
    expect(stats.portEntries).toBe(1_000);
    expect(stats.tracked.sources).toBe(10);
    expect(stats.evicted.sources).toBe(40);
    // The newest client was not cut short: all its ports counted.
    expect(t.kinds('probe').at(-1)).toMatchObject({ ip: '10.9.0.49', ports: 100 });
    // One client alone beyond the budget keeps its newest ports.
    const u = setup({ maxPortEntries: 50, maxPortsPerSource: 100 });
    for (let port = 1; port <= 80; port++) u.inTcp(ATTACKER, 1, port, 0);
    expect(u.tracker.stats().portEntries).toBe(50);
    expect(u.kinds('probe').at(-1)).toMatchObject({ dport: 80 });
  });

  it('local addresses can be replaced: packets to a new address of the host are inbound', () => {
    const t = setup();
    expect(t.send(ipv4(ATTACKER, '192.0.2.77', 6, tcp(1, 22, 0)))).toBe('other');
    t.tracker.setLocal(localAddresses([HOST, '192.0.2.77']));
    expect(t.send(ipv4(ATTACKER, '192.0.2.77', 6, tcp(1, 22, 0)))).toBe('in');
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
