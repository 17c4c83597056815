import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { type NsDaemon, nsDaemon } from './daemon.js';
import { createNetnsPair, type NetnsPair } from './netns.js';

// The TCP guard between two hosts: `portcullis run` in a server namespace, in front of a real
// redis-server (and of a small upstream that reads PROXY protocol), an attacker namespace with two
// addresses per family (the first attacks, the second is an innocent client). CI runs as root; a
// missing redis-server or `ip` fails here. (A connect scan, `nmap -sT`, resets each probe within
// microseconds, before the guard can read the prober's address: the packet watcher's port-scan
// rule is what sees those.)

const GUARD_PORT = 6380;
const REDIS_PORT = 6379;
const PROXIED_PORT = 7100;
const PROXIED_UPSTREAM = 7101;

const run = promisify(execFile);
let pair: NetnsPair;
let daemon: NsDaemon;
let dir: string;
const children: { kill(signal?: NodeJS.Signals): boolean }[] = [];

/**
 * A client in the attacker namespace: from `local`, `count` connections one after another to
 * host:port, each sending `send` and waiting (700 ms at most) for a reply; prints one line per
 * connection: what came back, or `-` for nothing.
 */
const CLIENT = `const [host, port, local, count, send] = process.argv.slice(1);
const net = require('node:net');
const one = () => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port), localAddress: local });
  let data = '';
  const t = setTimeout(() => s.destroy(), 700);
  s.on('connect', () => s.write(send.replace(/\\\\n/g, '\\n').replace(/\\\\r/g, '\\r')));
  s.on('data', (c) => { data += c; if (data.includes('\\n')) s.end(); });
  s.on('error', () => {});
  s.on('close', () => { clearTimeout(t); resolve(data.trim() || '-'); });
});
(async () => { for (let i = 0; i < Number(count); i++) console.log(await one()); })();`;

async function client(
  local: string,
  host: string,
  port: number,
  count: number,
  send: string,
): Promise<string[]> {
  const out = await pair.exec(pair.attacker, [
    process.execPath,
    '-e',
    CLIENT,
    host,
    String(port),
    local,
    String(count),
    send,
  ]);
  return out.trim().split('\n');
}

const ping = (local: string, host: string) =>
  client(local, host, GUARD_PORT, 1, 'PING\\r\\n').then((r) => r[0]);

/**
 * The first exchange with an address of a fresh namespace, tried up to three times: once in CI,
 * on a loaded machine, the first IPv6 one got no reply within the client's 700 ms (neighbour
 * discovery, or the load) while every later exchange did.
 */
async function firstPing(local: string, host: string): Promise<string | undefined> {
  let reply: string | undefined;
  for (let attempt = 0; attempt < 3 && reply !== '+PONG'; attempt++) reply = await ping(local, host);
  return reply;
}

beforeAll(async () => {
  pair = await createNetnsPair();
  dir = mkdtempSync(join(tmpdir(), 'pc-tcp-'));
  const redis = pair.spawn(pair.server, [
    '/usr/bin/redis-server',
    '--port',
    String(REDIS_PORT),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
  children.push(redis);
  // An upstream that answers with the PROXY header it was sent (the first line), then closes.
  const proxied = pair.spawn(pair.server, [
    process.execPath,
    '-e',
    `require('node:net').createServer((s) => { let d = ''; s.on('error', () => {}); s.on('data', (c) => { if (d === null) return; d += c; const i = d.indexOf('\\r\\n'); if (i >= 0) { s.end(d.slice(0, i) + '\\n'); d = null; } }); }).listen(${PROXIED_UPSTREAM}, '127.0.0.1');`,
  ]);
  children.push(proxied);
  const configFile = join(dir, 'portcullis.yaml');
  writeFileSync(
    configFile,
    [
      'store: { memory: true }',
      'log: { level: info }',
      'control: false',
      'defaults: { ignoreip: [], ignoreself: false, ipv6_prefix: 128 }',
      'tcp:',
      `  redis: { listen: ":${GUARD_PORT}", target: "127.0.0.1:${REDIS_PORT}" }`,
      `  proxied: { listen: ":${PROXIED_PORT}", target: "127.0.0.1:${PROXIED_UPSTREAM}", proxy_protocol_upstream: v1 }`,
      'jails:',
      '  silent: { source: { socket: redis }, filter: idle-connect, maxretry: 3 }',
      '  flood: { source: { socket: redis }, filter: conn-flood, maxretry: 20 }',
      '',
    ].join('\n'),
  );
  await waitFor(
    async () =>
      (
        await pair.exec(pair.server, ['redis-cli', '-p', String(REDIS_PORT), 'ping']).catch(() => '')
      ).includes('PONG'),
    { timeoutMs: 10_000, intervalMs: 100, message: 'redis-server in the server namespace' },
  );
  daemon = nsDaemon(pair, pair.server, configFile);
  await daemon.start();
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  for (const child of children) child.kill('SIGKILL');
  await pair?.remove();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('TCP guard between two hosts (network namespaces)', () => {
  it('forwards a real redis session and carries the real client to a PROXY protocol upstream', async () => {
    expect(await firstPing(pair.v4.second, pair.v4.server)).toBe('+PONG');
    expect(await firstPing(pair.v6.second, pair.v6.server)).toBe('+PONG');
    const [line] = await client(pair.v4.second, pair.v4.server, PROXIED_PORT, 1, 'hello\\r\\n');
    expect(line).toMatch(
      new RegExp(
        `^PROXY TCP4 ${pair.v4.second.replace(/\./g, '\\.')} ${pair.v4.server.replace(/\./g, '\\.')} \\d+ ${PROXIED_PORT}$`,
      ),
    );
    const [six] = await client(pair.v6.second, `${pair.v6.server}`, PROXIED_PORT, 1, 'hello\\r\\n');
    expect(six).toMatch(new RegExp(`^PROXY TCP6 ${pair.v6.second} ${pair.v6.server} \\d+ ${PROXIED_PORT}$`));
  });

  it('clients that connect and never talk are banned by idle-connect; their connections are then dropped, the innocent still served', async () => {
    // Three banner grabs that send nothing and hang up (FIN) after 700 ms.
    expect(await client(pair.v4.first, pair.v4.server, GUARD_PORT, 3, '')).toEqual(['-', '-', '-']);
    await waitFor(() => daemon.log().includes(`"target":"${pair.v4.first}"`), {
      timeoutMs: 5_000,
      intervalMs: 100,
      message: () => `the prober's ban (log: ${daemon.log().slice(-1500)})`,
    });
    expect(await ping(pair.v4.first, pair.v4.server)).toBe('-');
    expect(await ping(pair.v4.second, pair.v4.server)).toBe('+PONG');
    expect(daemon.log()).toMatch(/"event":"ban-evidence"[^\n]*"jail":"silent"/);
  }, 60_000);

  it('a connection flood from one IPv6 address is banned at the 20th connection; its neighbour is served', async () => {
    const answers = await client(pair.v6.first, pair.v6.server, GUARD_PORT, 25, 'PING\\r\\n');
    expect(answers.filter((answer) => answer === '+PONG').length).toBe(19);
    expect(answers.slice(19)).toEqual(Array(6).fill('-'));
    expect(await ping(pair.v6.second, pair.v6.server)).toBe('+PONG');
  }, 60_000);

  it('stops cleanly on SIGTERM with connections open', async () => {
    const holder = pair.spawn(pair.attacker, [
      process.execPath,
      '-e',
      `const s = require('node:net').connect({ host: '${pair.v4.server}', port: ${GUARD_PORT}, localAddress: '${pair.v4.second}' }); s.on('connect', () => console.log('connected')); s.on('close', () => process.exit(0)); s.on('error', () => {});`,
    ]);
    children.push(holder);
    let holderOutput = '';
    holder.stdout?.on('data', (chunk: Buffer) => {
      holderOutput += chunk.toString();
    });
    await waitFor(() => holderOutput.includes('connected'), {
      timeoutMs: 5_000,
      message: 'the holder to connect',
    });
    const started = Date.now();
    await daemon.stop('SIGTERM');
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(daemon.log()).toContain('"event":"stopped"');
    await waitFor(() => holder.exitCode !== null, {
      timeoutMs: 5_000,
      message: 'the held connection to be closed',
    });
    // Nothing listens any more.
    const after = await run('ip', ['netns', 'exec', pair.server, 'ss', '-Htln', `sport = :${GUARD_PORT}`]);
    expect(after.stdout.trim()).toBe('');
  }, 30_000);
});
