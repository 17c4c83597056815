// The live half of bench/packets.ts: a packet watcher (real pcap binding) on IFACE inside a
// namespace, counting SYNs to port 9 of ADDRESS. Prints "running <link>", then answers each
// "stats" line on stdin with its counters as JSON; closes when stdin ends. BUFFER (bytes) and
// POLL (a duration) set the ring size and read interval (a tiny ring read slowly shows drops).
import { createInterface } from 'node:readline';
import { parseConfigText } from '../src/config/load.js';
import { createGuard } from '../src/guard.js';
import { PacketWatcher } from '../src/sources/packets/packet-watcher.js';

const [iface = 'lo', address = '127.0.0.1', buffer = '16777216', poll = '10ms'] = process.argv.slice(2);
const config = parseConfigText(
  [
    'store: { memory: true }',
    'defaults: { ignoreip: [], ignoreself: false }',
    'packets:',
    `  w: { interface: ${JSON.stringify(iface)}, filter: "tcp dst port 9", local: [${JSON.stringify(address)}], buffer_size: ${Number(buffer)}, poll_interval: ${poll} }`,
    'jails:',
    '  port-scan: { source: { packets: w }, filter: port-scan }',
  ].join('\n'),
  'bench-child.yaml',
  { env: {} },
);
const guard = await createGuard(config);
const watcher = new PacketWatcher(guard, config.packets?.[0] as never, { statsIntervalMs: 200 });
await watcher.start();
const stats = watcher.stats();
process.stdout.write(`${stats.state} ${stats.link ?? stats.error}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', () => {
  // Let the stats timer read the kernel counters once more first.
  setTimeout(() => {
    const s = watcher.stats();
    const dropped = s.kernel.dropped + s.kernel.interfaceDropped;
    process.stdout.write(
      `${JSON.stringify({ seen: s.packets.seen, dropped, received: s.kernel.received })}\n`,
    );
  }, 250);
});
lines.on('close', () => {
  void watcher.close().then(() => guard.close());
});
