import { type ChildProcess, execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait-for.js';
import { connects, createNetnsPair, type NetnsPair, setElements, startEchoServer } from './netns.js';

// Real kernel, real libpcap: `portcullis run` inside the server namespace with a packet watcher on
// `any` (Linux cooked headers) and the nftables action on every port; the attacker namespace
// scans it with nmap and floods it with hping3 from addresses of its own, and one address never
// attacks (the client still served). CI runs as root; a missing nmap, hping3 or setpriv fails.

const run = promisify(execFile);
const GUARDED = 7000;
const CHILD = fileURLToPath(new URL('./packet-watcher-child.ts', import.meta.url));

let pair: NetnsPair;
let attackerIface: string;
/** Attacker addresses added for the tests, one per attack (a ban is per address). */
let extra: string[];
let echo: ChildProcess | undefined;
let daemon: ChildProcess | undefined;
/** Everything the daemon printed so far. */
let daemonLog: () => string = () => '';
let dir: string;

function spawnLogged(ns: string, argv: string[]): { child: ChildProcess; log: () => string } {
  let log = '';
  const child = pair.spawn(ns, argv);
  child.stdout?.on('data', (c: Buffer) => {
    log += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    log += c.toString();
  });
  return { child, log: () => log };
}

/** Resolves the exit code (or the signal) of `child`, waiting at most `ms`; `timeout` when it did not exit. */
function exitOf(child: ChildProcess, ms: number): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal ?? 'unknown');
    });
  });
}

const banned = () => setElements(pair, 'portcullis', 'fw_v4');
const waitBanned = (address: string, timeoutMs = 15_000) =>
  waitFor(async () => (await banned()).includes(address), {
    timeoutMs,
    intervalMs: 100,
    message: () => `${address} in the nftables set (log: ${daemonLog().slice(-1500)})`,
  });

/** Runs a bounded attack tool in the attacker namespace; its failure to run fails the test. */
async function attack(argv: string[], timeoutMs = 30_000): Promise<void> {
  await run('ip', ['netns', 'exec', pair.attacker, ...argv], {
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
}

beforeAll(async () => {
  pair = await createNetnsPair();
  const links = (await run('ip', ['-n', pair.attacker, '-o', 'link', 'show', 'type', 'veth'])).stdout;
  attackerIface = (/^\d+:\s+([^@:\s]+)/m.exec(links) as RegExpExecArray)[1] as string;
  extra = Array.from({ length: 8 }, (_, i) => `10.200.${pair.subnet}.${20 + i}`);
  for (const address of extra)
    await run('ip', ['-n', pair.attacker, 'addr', 'add', `${address}/24`, 'dev', attackerIface]);
  dir = mkdtempSync(join(tmpdir(), 'pc-pcap-'));
  chmodSync(dir, 0o755);
  writeFileSync(
    join(dir, 'portcullis.yaml'),
    [
      `store: { sqlite: ${join(dir, 'portcullis.db')} }`,
      'log: { level: info }',
      'control: false',
      'actions:',
      '  fw: { nftables: {} }',
      'packets:',
      // The server's own addresses (the default `local`) and the port its handshakes are followed on.
      `  edge: { interface: any, ports: [${GUARDED}], handshake_timeout: 2s }`,
      'defaults:',
      '  ignoreip: []',
      '  ignoreself: false',
      '  actions: [fw]',
      'jails:',
      '  port-scan: { source: { packets: edge }, filter: port-scan }',
      '  syn-flood: { source: { packets: edge }, filter: syn-flood }',
      '',
    ].join('\n'),
  );
  echo = await startEchoServer(pair, [GUARDED]);
  const started = spawnLogged(pair.server, [
    process.execPath,
    '--import',
    'tsx',
    CLI,
    'run',
    '-c',
    join(dir, 'portcullis.yaml'),
  ]);
  daemon = started.child;
  daemonLog = started.log;
  await waitFor(() => daemonLog().includes('portcullis started') || started.child.exitCode !== null, {
    timeoutMs: 30_000,
    intervalMs: 100,
    message: () => `portcullis to start (log: ${daemonLog()})`,
  });
  expect(daemonLog()).toContain('"event":"packets-started"');
}, 90_000);

afterAll(async () => {
  if (daemon !== undefined && daemon.exitCode === null) {
    daemon.kill('SIGKILL');
    await exitOf(daemon, 5_000);
  }
  echo?.kill('SIGKILL');
  if (echo !== undefined) await exitOf(echo, 5_000);
  await pair?.remove();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('packet watcher in a network namespace', () => {
  it('nmap -sS across 100 ports is banned within the scan; the scanner is then refused while a third address is served', async () => {
    const scanner = extra[0] as string;
    expect(await connects(pair, pair.v4.second, pair.v4.server, GUARDED)).toBe(true);
    // 100 ports at one probe per 40 ms: about 4 s, so "during the scan" is observable.
    const nmap = spawnLogged(pair.attacker, [
      'nmap',
      '-sS',
      '-Pn',
      '-n',
      '--max-retries',
      '0',
      '--scan-delay',
      '40ms',
      '-S',
      scanner,
      '-e',
      attackerIface,
      '-p',
      '6950-7049',
      pair.v4.server,
    ]);
    await waitBanned(scanner);
    expect(nmap.child.exitCode, `nmap finished before the ban: ${nmap.log()}`).toBeNull();
    expect(await exitOf(nmap.child, 30_000)).toBe(0);
    expect(daemonLog()).toMatch(new RegExp(`port-scan: ban ${scanner.replaceAll('.', '\\.')}`));
    // Every port: the firewall action bans the address, and the echo port refuses it.
    const refused = await pair.exec(pair.attacker, [
      process.execPath,
      '-e',
      `const s = require('node:net').connect({ host: ${JSON.stringify(pair.v4.server)}, port: ${GUARDED}, localAddress: ${JSON.stringify(scanner)}, timeout: 700 });
s.on('data', () => { console.log('served'); process.exit(0); });
s.on('timeout', () => { console.log('refused'); process.exit(0); });
s.on('error', () => { console.log('refused'); process.exit(0); });`,
    ]);
    expect(refused.trim()).toBe('refused');
    expect(await connects(pair, pair.v4.second, pair.v4.server, GUARDED)).toBe(true);
  }, 60_000);

  it('nmap -sT (connect scan) is banned', async () => {
    // -sT uses the kernel's connect(): its source is the veth's first address.
    await attack(['nmap', '-sT', '-Pn', '-n', '--max-retries', '0', '-p', '7100-7139', pair.v4.server]);
    await waitBanned(pair.v4.first);
    expect(await connects(pair, pair.v4.second, pair.v4.server, GUARDED)).toBe(true);
  }, 60_000);

  it.each([
    ['-sU', 1],
    ['-sF', 2],
    ['-sN', 3],
    ['-sX', 4],
  ] as const)(
    'nmap %s across 20 ports is banned',
    async (kind, index) => {
      const scanner = extra[index] as string;
      await attack([
        'nmap',
        kind,
        '-Pn',
        '-n',
        '--max-retries',
        '0',
        '--host-timeout',
        '20s',
        '-S',
        scanner,
        '-e',
        attackerIface,
        '-p',
        '7200-7219',
        pair.v4.server,
      ]);
      await waitBanned(scanner);
      expect(await connects(pair, pair.v4.second, pair.v4.server, GUARDED)).toBe(true);
    },
    60_000,
  );

  it('an hping3 SYN flood (bounded by -c and a time limit) is banned by syn-flood', async () => {
    const flooder = extra[5] as string;
    const before = daemonLog().length;
    // --flood sends as fast as it can; timeout and -c bound it. The host answers SYN-ACK, the
    // flooder's kernel resets each one: every SYN is a half-open handshake.
    await attack(
      [
        'timeout',
        '4',
        'hping3',
        '-S',
        '--flood',
        '-c',
        '200000',
        '-p',
        String(GUARDED),
        '-a',
        flooder,
        pair.v4.server,
      ],
      20_000,
    ).catch((error: { code?: number }) => {
      // `timeout` exits 124 when it had to stop hping3: the bound working, not a failure.
      if (error.code !== 124) throw error;
    });
    await waitBanned(flooder);
    expect(daemonLog().slice(before)).toMatch(new RegExp(`syn-flood: ban ${flooder.replaceAll('.', '\\.')}`));
    expect(await connects(pair, pair.v4.second, pair.v4.server, GUARDED)).toBe(true);
  }, 60_000);

  it('stops promptly on SIGTERM with the watcher capturing, its counters and drops in the log', async () => {
    const child = daemon as ChildProcess;
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exitOf(child, 10_000)).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    const log = daemonLog();
    const line = log.split('\n').find((l) => l.includes('"event":"packets-stats"'));
    expect(line, log.slice(-2000)).toBeDefined();
    const stats = JSON.parse(line as string) as {
      packets: { seen: number; decoded: number; tcp: number; udp: number };
      kernel: { dropped: number; interfaceDropped: number };
      reports: { bans: number };
    };
    expect(stats.packets.seen).toBeGreaterThan(1_000);
    expect(stats.packets.decoded).toBe(stats.packets.seen);
    expect(stats.packets.udp).toBeGreaterThan(0);
    expect(stats.reports.bans).toBeGreaterThanOrEqual(7);
    // Drops, if the flood caused any, were reported when they started.
    if (stats.kernel.dropped + stats.kernel.interfaceDropped > 0)
      expect(log).toContain('"event":"packets-dropped"');
  }, 30_000);
});

describe('packet watcher that cannot run, and its exit', () => {
  it('without the capture permission (as nobody): the documented error, the proxy still serves, a clean SIGTERM exit', async () => {
    const file = join(dir, 'nobody.yaml');
    writeFileSync(
      file,
      [
        'store: { memory: true }',
        'control: false',
        'proxy: { listen: "127.0.0.1:18080", target: "http://127.0.0.1:1" }',
        'packets:',
        '  edge: { interface: any }',
        'jails:',
        '  port-scan: { source: { packets: edge }, filter: port-scan }',
        '',
      ].join('\n'),
    );
    chmodSync(file, 0o644);
    const nobody = spawnLogged(pair.server, [
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      '--import',
      'tsx',
      CLI,
      'run',
      '-c',
      file,
    ]);
    try {
      await waitFor(() => nobody.log().includes('portcullis started') || nobody.child.exitCode !== null, {
        timeoutMs: 30_000,
        intervalMs: 100,
        message: () => `portcullis to start as nobody (log: ${nobody.log()})`,
      });
      expect(nobody.log()).toContain('"event":"packets-unavailable"');
      expect(nobody.log()).toContain('setcap cap_net_raw,cap_net_admin+eip $(which node)');
      const status = await pair.exec(pair.server, [
        process.execPath,
        '-e',
        "require('node:http').get('http://127.0.0.1:18080/', (r) => { console.log(r.statusCode); r.resume(); }).on('error', (e) => console.log(e.code))",
      ]);
      expect(status.trim()).toBe('502');
      nobody.child.kill('SIGTERM');
      expect(await exitOf(nobody.child, 10_000)).toBe(0);
    } finally {
      if (nobody.child.exitCode === null) nobody.child.kill('SIGKILL');
    }
  }, 60_000);

  it('a watcher capturing on a quiet interface lets the process exit by itself after close (no hang in the binding)', async () => {
    // Nothing in the server namespace sends to tcp port 9 on lo: libpcap never sees a packet after
    // the break, the case where the binding's own wrapper keeps the process alive forever.
    const child = spawnLogged(pair.server, [process.execPath, '--import', 'tsx', CHILD, 'lo', 'tcp port 9']);
    try {
      await waitFor(() => child.log().includes('running') || child.child.exitCode !== null, {
        timeoutMs: 30_000,
        intervalMs: 50,
        message: () => `the child to capture (log: ${child.log()})`,
      });
      expect(child.log()).toContain('running LINKTYPE_ETHERNET');
      const started = Date.now();
      child.child.kill('SIGTERM');
      expect(await exitOf(child.child, 8_000), child.log()).toBe(0);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(child.log()).toContain('closed');
    } finally {
      if (child.child.exitCode === null) child.child.kill('SIGKILL');
    }
  }, 60_000);
});
