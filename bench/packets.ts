// npm run bench:socket (second half) — the packet watcher:
//  1. decoding and tracking on synthetic packet mixes (SYN scan, established TCP, UDP with DNS
//     replies, IPv6 on Linux cooked headers): packets/s of decode alone and of decode + tracker,
//     median of ROUNDS rounds of PACKETS packets each; and the whole watcher (fake capture, real
//     guard and jails) on the SYN-scan mix, where every SYN the host refuses is a probe and
//     reports are made;
//  2. live capture (root only): a watcher on a veth in a network namespace, hping3 sending SYNs
//     from the other end at increasing rates: packets/s captured and the kernel's drop counter
//     (pcap_stats) per rate, so the sustained rate before drops shows. Skipped without root.
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfigText } from '../src/config/load.js';
import { createGuard } from '../src/guard.js';
import type { PcapBinding } from '../src/sources/packets/capture.js';
import { createDecodedPacket, decodePacket, LinkType } from '../src/sources/packets/decode.js';
import { localAddresses, PacketWatcher } from '../src/sources/packets/packet-watcher.js';
import { PacketTracker } from '../src/sources/packets/tracker.js';
import {
  ACK,
  ETH_IPV4,
  ETH_IPV6,
  ethernet,
  ipv4,
  ipv6,
  PSH,
  RST,
  SYN,
  sll,
  tcp,
  udp,
} from '../test/helpers/packet-frames.js';
import type { NetnsPair } from '../test/privileged/netns.js';
import { fmt, machineLine, median } from './machine.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PACKETS = Number(process.env.PACKETS ?? 1_000_000);
const HOST = '192.0.2.1';
const HOST6 = '2001:db8::1';
const run = promisify(execFile);

interface Mix {
  name: string;
  link: number;
  frames: Buffer[];
}

function mixes(): Mix[] {
  const scan: Buffer[] = [];
  // 2 000 scanners x 64 closed ports: each SYN and the host's RST|ACK refusing it (a probe event).
  for (let s = 0; s < 2_000; s++)
    for (let port = 1; port <= 64; port++) {
      const scanner = `10.1.${s >> 8}.${s & 255}`;
      scan.push(Buffer.from(ethernet(ETH_IPV4, ipv4(scanner, HOST, 6, tcp(40_000, port, SYN)))));
      scan.push(Buffer.from(ethernet(ETH_IPV4, ipv4(HOST, scanner, 6, tcp(port, 40_000, RST | ACK)))));
    }
  const established: Buffer[] = [];
  // 200 flows both ways: ACK/PSH data, no events (the common case on a busy host).
  for (let f = 0; f < 200; f++) {
    const client = `198.51.100.${f}`;
    established.push(Buffer.from(ethernet(ETH_IPV4, ipv4(client, HOST, 6, tcp(50_000 + f, 443, ACK | PSH)))));
    established.push(Buffer.from(ethernet(ETH_IPV4, ipv4(HOST, client, 6, tcp(443, 50_000 + f, ACK)))));
  }
  const udpMix: Buffer[] = [];
  // DNS queries out and replies in (not probes), plus datagrams to a game server port.
  for (let i = 0; i < 500; i++) {
    udpMix.push(Buffer.from(ethernet(ETH_IPV4, ipv4(HOST, '198.51.100.53', 17, udp(30_000 + i, 53)))));
    udpMix.push(Buffer.from(ethernet(ETH_IPV4, ipv4('198.51.100.53', HOST, 17, udp(53, 30_000 + i)))));
    udpMix.push(Buffer.from(ethernet(ETH_IPV4, ipv4(`203.0.113.${i & 255}`, HOST, 17, udp(40_000, 27_015)))));
  }
  const v6: Buffer[] = [];
  for (let f = 0; f < 200; f++) {
    const client = `2001:db8:1::${f.toString(16)}`;
    v6.push(Buffer.from(sll(ETH_IPV6, ipv6(client, HOST6, 6, tcp(50_000 + f, 443, ACK | PSH)), 0)));
    v6.push(Buffer.from(sll(ETH_IPV6, ipv6(HOST6, client, 6, tcp(443, 50_000 + f, ACK)), 4)));
  }
  return [
    { name: 'SYN scan (IPv4, Ethernet)', link: LinkType.ETHERNET, frames: scan },
    { name: 'established TCP (IPv4, Ethernet)', link: LinkType.ETHERNET, frames: established },
    { name: 'UDP + DNS replies (IPv4, Ethernet)', link: LinkType.ETHERNET, frames: udpMix },
    { name: 'established TCP (IPv6, Linux cooked)', link: LinkType.LINUX_SLL, frames: v6 },
  ];
}

/** Packets per second of `fn` over PACKETS frames of the mix, median of ROUNDS. */
function rate(mix: Mix, fn: (frame: Buffer, i: number) => void): number {
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    const n = mix.frames.length;
    for (let i = 0; i < PACKETS; i++) fn(mix.frames[i % n] as Buffer, i);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(PACKETS / seconds);
  }
  return median(rates);
}

function synthetic(): void {
  console.log(`\n1. synthetic mixes: ${fmt(PACKETS)} packets per round, median of ${ROUNDS} rounds`);
  console.log('| mix | decode only (packets/s) | decode + tracker (packets/s) | events per packet |');
  console.log('| --- | ---: | ---: | ---: |');
  const decoded = createDecodedPacket();
  for (const mix of mixes()) {
    const decodeOnly = rate(mix, (frame) => {
      decodePacket(frame, frame.length, mix.link, decoded);
    });
    let events = 0;
    let clock = 0;
    let tracker = new PacketTracker({
      local: localAddresses([HOST, HOST6]),
      watchedPorts: null,
      emit: () => events++,
    });
    const tracked = rate(mix, (frame, i) => {
      if (i === 0) {
        tracker = new PacketTracker({
          local: localAddresses([HOST, HOST6]),
          watchedPorts: null,
          emit: () => events++,
        });
        events = 0;
      }
      // 1 ms of clock per 1000 packets (1 M packets/s on the wire).
      if ((i & 1023) === 0) {
        clock += 1;
        tracker.sweep(clock);
      }
      if (decodePacket(frame, frame.length, mix.link, decoded) === 'ok')
        tracker.onPacket(frame, decoded, clock);
    });
    console.log(`| ${mix.name} | ${fmt(decodeOnly)} | ${fmt(tracked)} | ${(events / PACKETS).toFixed(2)} |`);
  }
}

/** The whole watcher on the SYN-scan mix: a fake binding hands it the frames, a real guard judges. */
async function watcherPath(): Promise<void> {
  const frames = (mixes()[0] as Mix).frames;
  const config = parseConfigText(
    [
      'store: { memory: true }',
      'defaults: { ignoreip: [], ignoreself: false }',
      `packets: { edge: { interface: fake0, local: [${HOST}], max_sources: 4096 } }`,
      'jails:',
      '  port-scan: { source: { packets: edge }, filter: port-scan }',
      '  syn-flood: { source: { packets: edge }, filter: syn-flood }',
    ].join('\n'),
    'bench.yaml',
    { env: {} },
  );
  const rates: number[] = [];
  let reports = 0;
  let bans = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const guard = await createGuard(config);
    let onPacket: () => void = () => {};
    // The capture's own buffers, handed to the binding at each read: frames are copied into them.
    let buffers: { buffer: Buffer; header: Buffer } | undefined;
    let closed = false;
    class FakeSession {
      open_live(_d: string, _f: string, _b: number, _s: number, _o: string, cb: () => void) {
        onPacket = cb;
        return 'LINKTYPE_ETHERNET';
      }
      dispatch(buffer: Buffer, header: Buffer) {
        buffers = { buffer, header };
        return closed ? -2 : 0;
      }
      close() {}
      stats() {
        return { ps_recv: 0, ps_drop: 0, ps_ifdrop: 0 };
      }
    }
    const binding: PcapBinding = { PcapSession: FakeSession as never, lib_version: () => 'bench' };
    const watcher = new PacketWatcher(guard, config.packets?.[0] as never, { loader: () => binding });
    await watcher.start();
    while (buffers === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    const { buffer, header } = buffers;
    const start = process.hrtime.bigint();
    for (let i = 0; i < PACKETS; i++) {
      const frame = frames[i % frames.length] as Buffer;
      frame.copy(buffer);
      header.writeUInt32LE(frame.length, 8);
      onPacket();
      // Let the reports settle now and then, as the event loop does between polls.
      if ((i & 4095) === 4095) await guard.idle();
    }
    await guard.idle();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(PACKETS / seconds);
    const stats = watcher.stats();
    reports = stats.reports.sent;
    bans = stats.reports.bans;
    closed = true;
    await watcher.close();
    await guard.close();
  }
  console.log(
    `\n   whole watcher (fake capture, real guard, port-scan + syn-flood jails), SYN-scan mix: ${fmt(median(rates))} packets/s (${fmt(reports)} reports and ${fmt(bans)} bans per round)`,
  );
}

/** Live: a watcher on a veth in a namespace, hping3 at increasing rates from the peer. */
async function live(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\n2. live capture: skipped (needs root for namespaces and capture)');
    return;
  }
  const { createNetnsPair } = await import('../test/privileged/netns.js');
  const pair = await createNetnsPair();
  try {
    await liveSteps(pair, ['u100', 'u20', 'u10', 'flood', 'flood x2'], []);
    // The same flood into a 64 KiB ring read every 200 ms: the kernel must drop, and say so.
    await liveSteps(pair, ['flood'], ['65536', '200ms']);
  } finally {
    await pair.remove();
  }
}

async function liveSteps(pair: NetnsPair, steps: string[], ring: string[]): Promise<void> {
  const links = (await run('ip', ['-n', pair.server, '-o', 'link', 'show', 'type', 'veth'])).stdout;
  const iface = (/^\d+:\s+([^@:\s]+)/m.exec(links) as RegExpExecArray)[1] as string;
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      pair.server,
      process.execPath,
      '--import',
      'tsx',
      fileURLToPath(new URL('./packets-child.ts', import.meta.url)),
      iface,
      pair.v4.server,
      ...ring,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
  const ready = await next();
  if (!ready.startsWith('running')) throw new Error(`watcher did not start: ${ready}`);
  const sample = async () => {
    child.stdin.write('stats\n');
    return JSON.parse(await next()) as { seen: number; dropped: number; received: number };
  };
  const ringText =
    ring.length === 0 ? '16 MiB ring read every 10 ms' : `${ring[0]}-byte ring read every ${ring[1]}`;
  console.log(
    `\n2. live capture on a veth (${ready}, ${ringText}), hping3 SYNs to a closed port, 3 s per step`,
  );
  console.log(
    '| hping3 interval | offered (passed the kernel filter, packets/s) | captured (packets/s) | kernel drops |',
  );
  console.log('| --- | ---: | ---: | ---: |');
  const SECONDS = 3;
  for (const interval of steps) {
    const before = await sample();
    const started = process.hrtime.bigint();
    const args = interval.startsWith('flood')
      ? ['timeout', String(SECONDS), 'hping3', '-q', '-S', '--flood', '-p', '9', pair.v4.server]
      : ['timeout', String(SECONDS), 'hping3', '-q', '-S', '-i', interval, '-p', '9', pair.v4.server];
    const senders = interval === 'flood x2' ? 2 : 1;
    await Promise.all(
      Array.from({ length: senders }, () =>
        run('ip', ['netns', 'exec', pair.attacker, ...args]).catch(() => {}),
      ),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await sample();
    const received = after.received - before.received;
    const seen = after.seen - before.seen;
    console.log(
      `| ${interval} | ${fmt(received / seconds)} | ${fmt(seen / seconds)} | ${fmt(after.dropped - before.dropped)} |`,
    );
  }
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
}

console.log(machineLine());
synthetic();
await watcherPath();
await live();
