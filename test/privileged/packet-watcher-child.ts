// A packet watcher with the real `pcap` binding and nothing else, for the "no hang at exit" test:
// `node --import tsx packet-watcher-child.ts IFACE FILTER` prints its state once capturing, and on
// SIGTERM closes the watcher and the guard and then just returns. No process.exit(): the process
// ends only if nothing of the capture holds the event loop.
import { parseConfigText } from '../../src/config/load.js';
import { createGuard } from '../../src/guard.js';
import { PacketWatcher } from '../../src/sources/packets/packet-watcher.js';

const [iface = 'lo', filter = 'tcp port 9'] = process.argv.slice(2);
const config = parseConfigText(
  [
    'store: { memory: true }',
    'packets:',
    `  w: { interface: ${JSON.stringify(iface)}, filter: ${JSON.stringify(filter)}, local: [127.0.0.1] }`,
    'jails:',
    '  scan: { source: { packets: w }, filter: port-scan }',
  ].join('\n'),
  'child.yaml',
  { env: {} },
);
const guard = await createGuard(config);
const watcher = new PacketWatcher(guard, config.packets?.[0] as never);
await watcher.start();
// Something that keeps the process alive until the signal, as `portcullis run` does.
const keepAlive = setInterval(() => {}, 1 << 30);
process.once('SIGTERM', () => {
  void (async () => {
    clearInterval(keepAlive);
    await watcher.close();
    await guard.close();
    process.stdout.write('closed\n');
  })();
});
process.stdout.write(`${watcher.stats().state} ${watcher.stats().link ?? ''}\n`);
