import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../../src/config/load.js';
import type { Logger } from '../../../../src/core/logger.js';
import { createGuard, type Guard } from '../../../../src/guard.js';
import { classifyLoadError, type PcapBinding } from '../../../../src/sources/packets/capture.js';
import { PacketWatcher, type PacketWatcherStats } from '../../../../src/sources/packets/packet-watcher.js';
import { ACK, buf, FIN, ipv4, PSH, RST, SYN, tcp, URG, udp } from '../../../helpers/packet-frames.js';
import { waitFor } from '../../../helpers/wait-for.js';

// The watcher end to end over a fake `pcap` binding (its frames are hand-built): decode, track,
// judge, report to a real guard. The real binding on real interfaces is test/privileged's part.

const HOST = '192.0.2.1';
const ATTACKER = '203.0.113.66';
const VISITOR = '198.51.100.7';

interface Logged {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function recordingLogger(): Logger & { lines: Logged[] } {
  const lines: Logged[] = [];
  const at =
    (level: string) =>
    (fields: object, message = '') =>
      lines.push({ level, fields: fields as Record<string, unknown>, message });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A stand-in for the native binding: frames queued by the test come out of `dispatch`. */
function fakeBinding(options: { openError?: Error; link?: string } = {}) {
  const state = {
    queue: [] as Buffer[],
    /** Capture times (ms) of queued frames, written to the header as libpcap does. */
    times: new WeakMap<Buffer, number>(),
    drops: 0,
    readError: false,
    closed: false,
    released: false,
    opened: null as null | { device: string; filter: string; snap: number; buffer: number; timeout: number },
    opens: 0,
  };
  class FakeSession {
    #onPacket: () => void = () => {};
    open_live(
      device: string,
      filter: string,
      buffer: number,
      snap: number,
      _out: string,
      onPacket: () => void,
      _m: boolean,
      timeout: number,
    ) {
      if (options.openError !== undefined) throw options.openError;
      state.opened = { device, filter, snap, buffer, timeout };
      state.opens++;
      state.closed = false;
      this.#onPacket = onPacket;
      return options.link ?? 'LINKTYPE_RAW';
    }
    dispatch(buffer: Buffer, header: Buffer): number {
      if (state.closed && state.queue.length === 0) return 0;
      if (state.readError) return -1;
      let n = 0;
      while (state.queue.length > 0) {
        const frame = state.queue.shift() as Buffer;
        const caplen = Math.min(frame.length, buffer.length);
        frame.copy(buffer, 0, 0, caplen);
        const time = state.times.get(frame) ?? 0;
        header.writeUInt32LE(Math.floor(time / 1_000), 0);
        header.writeUInt32LE((time % 1_000) * 1_000, 4);
        header.writeUInt32LE(caplen, 8);
        header.writeUInt32LE(frame.length, 12);
        this.#onPacket();
        n++;
        if (state.closed) {
          state.released = true;
          return -2;
        }
      }
      return n;
    }
    close() {
      state.closed = true;
    }
    stats() {
      return { ps_recv: 0, ps_drop: state.drops, ps_ifdrop: 0 };
    }
  }
  const binding: PcapBinding = { PcapSession: FakeSession as never, lib_version: () => 'fake' };
  return { state, loader: () => binding };
}

const CONFIG = `
store: { memory: true }
defaults: { ignoreip: [], ignoreself: false }
packets:
  edge: { interface: eth9, local: [${HOST}], poll_interval: 1ms }
jails:
  scan:
    source: { packets: edge }
    filter: port-scan
  shadow:
    source: { packets: edge }
    filter: { event: probe, scan: [none, fin, xmas] }
    maxretry: 3
    dryrun: true
`;

let guard: Guard | undefined;
let watcher: PacketWatcher | undefined;

afterEach(async () => {
  await watcher?.close();
  await guard?.close();
  watcher = undefined;
  guard = undefined;
});

async function start(binding: { loader: () => PcapBinding }, text = CONFIG, statsIntervalMs = 5_000) {
  const logger = recordingLogger();
  const config = parseConfigText(text, 'test.yaml', { env: {} });
  guard = await createGuard(config, { logger });
  const watcherConfig = config.packets?.[0];
  if (watcherConfig === undefined) throw new Error('no watcher');
  watcher = new PacketWatcher(guard, watcherConfig, {
    loader: binding.loader,
    statsIntervalMs,
    reopenIntervalMs: 20,
  });
  await watcher.start();
  return { logger, guard, watcher };
}

const syn = (src: string, port: number) => buf(ipv4(src, HOST, 6, tcp(40_000 + port, port, SYN)));
/** A SYN to a closed port and the host's RST|ACK refusing it: a probe. */
const refused = (src: string, port: number) => [
  syn(src, port),
  buf(ipv4(HOST, src, 6, tcp(port, 40_000 + port, RST | ACK))),
];

describe('PacketWatcher over a fake capture', () => {
  it('opens the capture as configured and bans a SYN scan at the 15th new port, not a visitor', async () => {
    const fake = fakeBinding();
    const { guard, watcher } = await start(fake);
    expect(fake.state.opened).toEqual({
      device: 'eth9',
      filter: 'tcp or udp or icmp or icmp6',
      snap: 96,
      buffer: 16 * 1024 * 1024,
      timeout: 1,
    });
    for (const port of [80, 443]) fake.state.queue.push(syn(VISITOR, port));
    for (let port = 1; port <= 14; port++) fake.state.queue.push(...refused(ATTACKER, port));
    await waitFor(() => watcher.stats().packets.seen === 30, { timeoutMs: 2_000 });
    await guard.idle();
    expect(guard.isBanned(ATTACKER)).toBe(false);
    fake.state.queue.push(...refused(ATTACKER, 15));
    await waitFor(() => guard.isBanned(ATTACKER), { timeoutMs: 2_000 });
    expect(guard.isBanned(VISITOR)).toBe(false);
    const stats: PacketWatcherStats = watcher.stats();
    expect(stats).toMatchObject({
      state: 'running',
      link: 'LINKTYPE_RAW',
      packets: { seen: 32, decoded: 32, tcp: 32, udp: 0 },
      reports: { bans: 1 },
    });
    // The visitor's SYNs are still in their handshakes (a probe only if never completed).
    expect(stats.tracker.events.probe).toBe(15);
    // The banned scanner's next probes cost a lookup, not a report.
    const sent = stats.reports.sent;
    for (let port = 16; port <= 40; port++) fake.state.queue.push(...refused(ATTACKER, port));
    await waitFor(() => watcher.stats().packets.seen === 82, { timeoutMs: 2_000 });
    expect(watcher.stats().reports.sent).toBe(sent);
    expect(watcher.stats().reports.alreadyBanned).toBeGreaterThanOrEqual(25);
  });

  it('a dry-run jail records would-ban for FIN/NULL/Xmas probes; garbage frames are counted, never fatal', async () => {
    const fake = fakeBinding();
    const { guard, watcher } = await start(fake);
    fake.state.queue.push(buf([0x45, 1, 2]), buf([]), buf([0x99, ...new Array(60).fill(7)]));
    for (const [port, flags] of [
      [1, 0],
      [2, FIN],
      [3, FIN | PSH | URG],
    ] as const)
      fake.state.queue.push(buf(ipv4(ATTACKER, HOST, 6, tcp(5, port, flags))));
    await waitFor(() => watcher.stats().packets.seen === 6, { timeoutMs: 2_000 });
    await guard.idle();
    expect(watcher.stats().skipped).toMatchObject({ truncated: 2, malformed: 1 });
    expect(watcher.stats().reports.bans).toBe(1); // the dry-run jail's would-ban
    expect(guard.isBanned(ATTACKER)).toBe(false);
    const decisions = await guard.decisions();
    expect(decisions).toEqual([expect.objectContaining({ jail: 'shadow', dryRun: true })]);
  });

  it('UDP to many ports is a scan too; packets to other addresses are not counted', async () => {
    const fake = fakeBinding();
    const { guard, watcher } = await start(fake);
    for (let port = 1; port <= 15; port++)
      fake.state.queue.push(buf(ipv4(ATTACKER, '192.0.2.99', 17, udp(9, port))));
    await waitFor(() => watcher.stats().packets.seen === 15, { timeoutMs: 2_000 });
    expect(watcher.stats().tracker.inbound).toBe(0);
    for (let port = 1; port <= 15; port++) fake.state.queue.push(buf(ipv4(ATTACKER, HOST, 17, udp(9, port))));
    await waitFor(() => guard.isBanned(ATTACKER), { timeoutMs: 2_000 });
  });

  it('warns once when the kernel starts dropping packets, and reports the counters', async () => {
    const fake = fakeBinding();
    const { logger, watcher } = await start(fake, CONFIG, 20);
    fake.state.drops = 7;
    await waitFor(() => logger.lines.some((l) => l.fields.event === 'packets-dropped'), { timeoutMs: 2_000 });
    fake.state.drops = 9;
    await waitFor(() => watcher.stats().kernel.dropped === 9, { timeoutMs: 2_000 });
    const warned = logger.lines.filter((l) => l.fields.event === 'packets-dropped');
    expect(warned).toHaveLength(1);
    expect(warned[0]?.message).toMatch(/dropped 7 packet\(s\).*raise buffer_size/);
  });

  it('reads that keep failing (the interface went away) degrade the watcher, which opens it again', async () => {
    const fake = fakeBinding();
    const { logger, guard, watcher } = await start(fake);
    fake.state.readError = true;
    await waitFor(() => watcher.stats().state === 'degraded', { timeoutMs: 2_000 });
    // Closed after 10 failed reads; each reopen's reads fail again until the interface is back.
    await waitFor(() => fake.state.opens >= 3, { timeoutMs: 2_000 });
    expect(logger.lines.filter((l) => l.fields.event === 'packets-read-error')).toHaveLength(1);
    fake.state.readError = false;
    await waitFor(() => watcher.stats().state === 'running', { timeoutMs: 2_000 });
    expect(logger.lines.some((l) => l.fields.event === 'packets-read-resumed')).toBe(true);
    for (let port = 1; port <= 15; port++) fake.state.queue.push(...refused(ATTACKER, port));
    await waitFor(() => guard.isBanned(ATTACKER), { timeoutMs: 2_000 });
  });

  it('close() breaks the capture, lets the reports made reach the guard, and is idempotent', async () => {
    const fake = fakeBinding();
    const { guard, watcher } = await start(fake);
    for (let port = 1; port <= 15; port++) fake.state.queue.push(...refused(ATTACKER, port));
    watcher.stats();
    await waitFor(() => watcher.stats().packets.seen === 30, { timeoutMs: 2_000 });
    await watcher.close();
    await watcher.close();
    expect(fake.state.closed).toBe(true);
    expect(watcher.stats().state).toBe('closed');
    expect(guard.isBanned(ATTACKER)).toBe(true);
    // A packet after the break releases the handle (what libpcap does), and is not judged.
    fake.state.queue.push(syn(VISITOR, 1));
    await waitFor(() => fake.state.released, { timeoutMs: 3_000 });
    expect(watcher.stats().packets.seen).toBe(30);
  });

  it('time moves with the capture times within one long read: a flood cannot freeze the handshake clock', async () => {
    const fake = fakeBinding();
    const { watcher } = await start(fake);
    // One read (the binding reads until the ring is empty) holding 6 s of traffic: the SYN at
    // its start has timed out (handshake_timeout 5s) by the last packet, before the read ends.
    const t0 = 1_700_000_000_000;
    const first = syn(ATTACKER, 22);
    fake.state.times.set(first, t0);
    fake.state.queue.push(first);
    for (let i = 1; i <= 60; i++) {
      const frame = buf(ipv4(VISITOR, HOST, 17, udp(5_000, 6_000 + i)));
      fake.state.times.set(frame, t0 + i * 100);
      fake.state.queue.push(frame);
    }
    await waitFor(() => watcher.stats().packets.seen === 61, { timeoutMs: 2_000 });
    expect(watcher.stats().tracker.events['half-open']).toBe(1);
  });

  it('without local:, the host addresses are read again: an address added later is watched', async () => {
    const fake = fakeBinding();
    const logger = recordingLogger();
    const text = CONFIG.replace(`local: [${HOST}], `, '');
    const config = parseConfigText(text, 'test.yaml', { env: {} });
    guard = await createGuard(config, { logger });
    let addresses = ['192.0.2.50'];
    watcher = new PacketWatcher(guard, config.packets?.[0] as never, {
      loader: fake.loader,
      hostAddresses: () => addresses,
      localRefreshMs: 20,
    });
    await watcher.start();
    const w = watcher;
    for (let port = 1; port <= 15; port++) fake.state.queue.push(...refused(ATTACKER, port));
    await waitFor(() => w.stats().packets.seen === 30, { timeoutMs: 2_000 });
    expect(w.stats().tracker.inbound).toBe(0);
    addresses = ['192.0.2.50', HOST];
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let port = 1; port <= 15; port++) fake.state.queue.push(...refused(ATTACKER, port));
    const g = guard;
    await waitFor(() => g.isBanned(ATTACKER), { timeoutMs: 2_000 });
  });

  it('max_sources is capped so the tables stay within a known memory', () => {
    expect(() =>
      parseConfigText(
        CONFIG.replace('poll_interval: 1ms', 'poll_interval: 1ms, max_sources: 1000000'),
        'test.yaml',
        {
          env: {},
        },
      ),
    ).toThrow(/packets\.edge\.max_sources/);
    const ok = parseConfigText(
      CONFIG.replace('poll_interval: 1ms', 'poll_interval: 1ms, max_sources: 131072'),
      'test.yaml',
      { env: {} },
    );
    expect(ok.packets?.[0]).toMatchObject({ maxSources: 131_072, maxPortEntries: 1_048_576 });
  });

  it('reload keeps a watcher whose settings did not change and restarts one whose did', async () => {
    const fake = fakeBinding();
    const { guard, watcher } = await start(fake);
    guard.reload(parseConfigText(CONFIG, 'test.yaml', { env: {} }));
    expect(await watcher.reload()).toBe(true);
    guard.reload(
      parseConfigText(CONFIG.replace('interface: eth9', 'interface: eth8'), 'test.yaml', { env: {} }),
    );
    expect(await watcher.reload()).toBe(false);
  });
});

describe('PacketWatcher that cannot capture', () => {
  const cases: [string, () => { loader: () => PcapBinding }, RegExp, string][] = [
    [
      'the pcap module is missing',
      () => ({
        loader: () => {
          throw Object.assign(new Error("Cannot find module 'pcap'\nRequire stack: ..."), {
            code: 'MODULE_NOT_FOUND',
          });
        },
      }),
      /optional dependency "pcap", which is not installed; .*apt-get install libpcap0\.8.*npm rebuild pcap/,
      'module',
    ],
    [
      'libpcap is missing',
      () => ({
        loader: () => {
          throw new Error('libpcap.so.0.8: cannot open shared object file: No such file or directory');
        },
      }),
      /needs libpcap, which is not installed .*apt-get install libpcap0\.8/,
      'libpcap',
    ],
    [
      'the capture permission is missing',
      () =>
        fakeBinding({
          openError: new Error(
            "eth9: You don't have permission to perform this capture on that device (socket: Operation not permitted)",
          ),
        }),
      /packets\.edge: no permission to capture on "eth9" .*setcap cap_net_raw,cap_net_admin\+eip \$\(which node\)/,
      'permission',
    ],
    [
      'the interface does not exist',
      () =>
        fakeBinding({ openError: new Error('eth9: No such device exists (SIOCGIFHWADDR: No such device)') }),
      /packets\.edge\.interface: no interface named "eth9"/,
      'interface',
    ],
    [
      'libpcap refuses the filter',
      () => fakeBinding({ openError: new Error("can't parse filter expression: syntax error") }),
      /packets\.edge\.filter: libpcap refused the BPF filter "tcp or udp or icmp or icmp6"/,
      'filter',
    ],
  ];

  it.each(cases)(
    '%s: start resolves, the error says what to do, the guard keeps working',
    async (_, make, message, problem) => {
      const { logger, guard, watcher } = await start(make());
      const stats = watcher.stats();
      expect(stats.state).toBe('failed');
      expect(stats.error).toMatch(message);
      const line = logger.lines.find((l) => l.fields.event === 'packets-unavailable');
      expect(line).toMatchObject({ level: 'error', fields: { problem, code: 'PC_ERR_PACKET_CAPTURE' } });
      expect(line?.message).toMatch(message);
      // The rest of portcullis runs: a report through another source still bans.
      await guard.ban('192.0.2.200', { duration: '1m' });
      expect(guard.isBanned('192.0.2.200')).toBe(true);
      // A failed watcher is restarted by a reload (the operator's retry).
      expect(await watcher.reload()).toBe(false);
      await watcher.close();
    },
  );

  it('classifies a binding built for another Node.js as a rebuild', () => {
    const error = classifyLoadError(
      new Error('was compiled against a different Node.js version using NODE_MODULE_VERSION 108'),
    );
    expect(error.message).toMatch(/npm rebuild pcap/);
  });
});
