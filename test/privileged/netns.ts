import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Two network namespaces joined by a veth pair, made and removed by a test: every packet, rule
 * and nft call of the privileged tests stays inside them (nft runs only via `ip netns exec`).
 */
export interface NetnsPair {
  /** The attacker's namespace and its two addresses per family. */
  attacker: string;
  server: string;
  /** Third octet of 10.200.X.0/24 and the X of fd00:200:X::/64. */
  subnet: number;
  v4: { server: string; first: string; second: string };
  v6: { server: string; first: string; second: string };
  /** Runs a command inside a namespace, without a shell; resolves stdout. */
  exec(ns: string, argv: readonly string[], input?: string): Promise<string>;
  /** Spawns a long-lived process inside a namespace (`ip netns exec` execs it: the pid is its own). */
  spawn(ns: string, argv: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess;
  remove(): Promise<void>;
}

export async function createNetnsPair(): Promise<NetnsPair> {
  const id = randomBytes(3).toString('hex');
  const subnet = 1 + ((randomBytes(1)[0] as number) % 250);
  const attacker = `pc-att-${id}`;
  const server = `pc-srv-${id}`;
  const v4 = { server: `10.200.${subnet}.1`, first: `10.200.${subnet}.2`, second: `10.200.${subnet}.3` };
  const v6 = {
    server: `fd00:200:${subnet}::1`,
    first: `fd00:200:${subnet}::2`,
    second: `fd00:200:${subnet}::3`,
  };
  const exec = async (ns: string, argv: readonly string[], input?: string) => {
    const child = run('ip', ['netns', 'exec', ns, ...argv], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    return (await child).stdout;
  };
  const pair: NetnsPair = {
    attacker,
    server,
    subnet,
    v4,
    v6,
    exec,
    spawn: (ns, argv, env) =>
      spawn('ip', ['netns', 'exec', ns, ...argv], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    async remove() {
      // Removing a namespace removes its veth end, addresses and nftables ruleset with it.
      for (const ns of [attacker, server]) await run('ip', ['netns', 'delete', ns]).catch(() => {});
    },
  };
  try {
    await run('ip', ['netns', 'add', attacker]);
    await run('ip', ['netns', 'add', server]);
    const veth = `pcv${id}`;
    await run('ip', [
      'link',
      'add',
      `${veth}a`,
      'netns',
      attacker,
      'type',
      'veth',
      'peer',
      'name',
      `${veth}s`,
      'netns',
      server,
    ]);
    const inNs = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
    await inNs(attacker, 'addr', 'add', `${v4.first}/24`, 'dev', `${veth}a`);
    await inNs(attacker, 'addr', 'add', `${v4.second}/24`, 'dev', `${veth}a`);
    await inNs(attacker, 'addr', 'add', `${v6.first}/64`, 'dev', `${veth}a`, 'nodad');
    await inNs(attacker, 'addr', 'add', `${v6.second}/64`, 'dev', `${veth}a`, 'nodad');
    await inNs(server, 'addr', 'add', `${v4.server}/24`, 'dev', `${veth}s`);
    await inNs(server, 'addr', 'add', `${v6.server}/64`, 'dev', `${veth}s`, 'nodad');
    for (const ns of [attacker, server]) {
      await inNs(ns, 'link', 'set', 'lo', 'up');
      await inNs(ns, 'link', 'set', ns === attacker ? `${veth}a` : `${veth}s`, 'up');
    }
  } catch (error) {
    await pair.remove();
    throw error;
  }
  return pair;
}

/** A TCP server in `ns` on these ports (all addresses, both families) that writes `ok` and closes. */
export function startEchoServer(pair: NetnsPair, ports: readonly number[]): Promise<ChildProcess> {
  const script = `const net = require('node:net'); let n = 0;
for (const port of ${JSON.stringify(ports)}) net.createServer((s) => s.end('ok')).listen(port, '::', () => { if (++n === ${ports.length}) console.log('listening'); });`;
  const child = pair.spawn(pair.server, [process.execPath, '-e', script]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('echo server did not start')), 10_000);
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`echo server exited ${code}`)));
  });
}

const PROBE = `const [host, port, local] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port), localAddress: local, timeout: 700 });
let data = '';
s.on('data', (c) => { data += c; });
s.on('end', () => { console.log(data === 'ok' ? 'ok' : 'fail'); process.exit(0); });
s.on('timeout', () => { console.log('fail'); process.exit(0); });
s.on('error', () => { console.log('fail'); process.exit(0); });`;

/** Whether a TCP connection from `local` (an attacker address) to `host:port` gets the server's `ok`. */
export async function connects(pair: NetnsPair, local: string, host: string, port: number): Promise<boolean> {
  const out = await pair.exec(pair.attacker, [process.execPath, '-e', PROBE, host, String(port), local]);
  return out.trim() === 'ok';
}

/** Elements of a set in the server namespace (its `elements = { ... }`, parsed from `nft -j`). */
export async function setElements(pair: NetnsPair, table: string, set: string): Promise<string[]> {
  let text: string;
  try {
    text = await pair.exec(pair.server, ['nft', '-j', 'list', 'set', 'inet', table, set]);
  } catch {
    return [];
  }
  const items = (JSON.parse(text) as { nftables: { set?: { elem?: unknown[] } }[] }).nftables;
  const elems = items.find((item) => item.set !== undefined)?.set?.elem ?? [];
  return elems.map((e) => {
    const value = (e as { elem?: { val: unknown } }).elem?.val ?? e;
    if (typeof value === 'string') return value;
    const prefix = (value as { prefix?: { addr: string; len: number } }).prefix;
    return prefix === undefined ? JSON.stringify(value) : `${prefix.addr}/${prefix.len}`;
  });
}
