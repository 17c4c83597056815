import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniquePrefix } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { createNetnsPair, type NetnsPair, setElements } from './netns.js';

// Two `portcullis run` instances (test/privileged/redis-instance-child.ts, driven over stdin) on one
// Redis, each with the nftables action in its own network namespace (the two ends of a veth pair):
// a ban decided on A reaches B's kernel set within 100 ms, and so does its unban. The redis-server
// is this test's own, started inside B's namespace on the veth address, so both can reach it.

const CHILD = fileURLToPath(new URL('./redis-instance-child.ts', import.meta.url));
const REDIS_PORT = 6379;
/** The propagation bound: decided on A, in B's kernel set. */
const BOUND_MS = 100;
const POLL_MS = 5;
const prefix = uniquePrefix('nft-redis');

interface Instance {
  ns: string;
  child: ChildProcess;
  output: () => string;
  send(line: string): void;
}

let pair: NetnsPair;
let dir: string;
let redis: ChildProcess | undefined;
const instances: Instance[] = [];

const redisCli = (...args: string[]) =>
  pair.exec(pair.server, ['redis-cli', '-h', pair.v4.server, '-p', String(REDIS_PORT), ...args], '');

function startInstance(ns: string, name: string): Instance {
  const configFile = join(dir, `${name}.yaml`);
  writeFileSync(
    configFile,
    [
      `store: { redis: { url: "redis://${pair.v4.server}:${REDIS_PORT}", prefix: "${prefix}", outbox: null } }`,
      'log: { level: warn }',
      'defaults:',
      '  ignoreip: []',
      '  ignoreself: false',
      'jails:',
      '  sshd: { actions: [nftables] }',
      '',
    ].join('\n'),
  );
  // Not pair.spawn: the instance is driven over its stdin.
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', CHILD, configFile], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin?.on('error', () => {});
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const instance: Instance = {
    ns,
    child,
    output: () => output,
    send: (line) => child.stdin?.write(`${line}\n`),
  };
  instances.push(instance);
  return instance;
}

const setOf = (ns: string) =>
  setElements({ ...pair, server: ns }, 'portcullis', 'nftables_v4').catch(() => [] as string[]);

/** Polls `ns`'s set every 5 ms until `present` holds for `target`; resolves the ms it took. */
async function propagation(ns: string, target: string, present: boolean, since: number): Promise<number> {
  const deadline = since + 5000;
  while (Date.now() < deadline) {
    if ((await setOf(ns)).includes(target) === present) return performance.now();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(
    `${target} ${present ? 'never reached' : 'never left'} ${ns}'s set; A: ${a.output()}; B: ${b.output()}`,
  );
}

let a: Instance;
let b: Instance;

beforeAll(async () => {
  pair = await createNetnsPair();
  dir = mkdtempSync(join(tmpdir(), 'pc-nft-redis-'));
  redis = pair.spawn(pair.server, [
    '/usr/bin/redis-server',
    '--port',
    String(REDIS_PORT),
    '--bind',
    pair.v4.server,
    '--save',
    '',
    // Reachable only inside the veth pair; without a password, protected mode refuses non-loopback clients.
    '--protected-mode',
    'no',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
  await waitFor(async () => (await redisCli('ping').catch(() => '')).trim() === 'PONG', {
    timeoutMs: 10_000,
    intervalMs: 50,
    message: 'redis-server in the namespace',
  });
  a = startInstance(pair.attacker, 'a');
  b = startInstance(pair.server, 'b');
  for (const instance of [a, b])
    await waitFor(() => instance.output().includes('ready'), {
      timeoutMs: 30_000,
      intervalMs: 50,
      message: () => `instance in ${instance.ns} to start: ${instance.output()}`,
    });
}, 60_000);

afterAll(async () => {
  for (const { child } of instances) child.kill('SIGKILL');
  if (redis !== undefined && pair !== undefined) {
    const keys = (await redisCli('--scan', '--pattern', `${prefix}*`).catch(() => ''))
      .split('\n')
      .filter((k) => k !== '');
    if (keys.length > 0) await redisCli('del', ...keys).catch(() => {});
    redis.kill('SIGKILL');
  }
  await pair?.remove();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('nftables action on two instances sharing Redis', () => {
  it(`a ban decided on A is in B's kernel set within ${BOUND_MS} ms; its unban leaves it as fast`, async () => {
    // TEST-NET-3: no packet of the test comes from it.
    const target = `203.0.113.${1 + ((randomBytes(1)[0] as number) % 250)}`;
    expect(await setOf(b.ns)).not.toContain(target);

    const banned = performance.now();
    a.send(`ban ${target}`);
    const bannedOnB = (await propagation(b.ns, target, true, Date.now())) - banned;
    expect(bannedOnB, b.output()).toBeLessThanOrEqual(BOUND_MS);
    await waitFor(() => a.output().includes(`done ${target}`), { timeoutMs: 2000, message: 'A to ban' });
    await waitFor(async () => (await setOf(a.ns)).includes(target), {
      timeoutMs: 2000,
      intervalMs: 20,
      message: "the ban in A's own set",
    });

    const unbanned = performance.now();
    a.send(`unban ${target}`);
    const unbannedOnB = (await propagation(b.ns, target, false, Date.now())) - unbanned;
    expect(unbannedOnB, b.output()).toBeLessThanOrEqual(BOUND_MS);
    await waitFor(async () => !(await setOf(a.ns)).includes(target), {
      timeoutMs: 2000,
      intervalMs: 20,
      message: "the unban in A's own set",
    });
    console.log(`ban on A → B's set: ${bannedOnB.toFixed(1)} ms; unban: ${unbannedOnB.toFixed(1)} ms`);
  }, 30_000);
});
