import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIpsetAction, removeIpsetObjects } from '../../src/actions/ipset/ipset-action.js';
import { ipsetOptionsSchema, resolveIpsetOptions } from '../../src/actions/ipset/options.js';
import { systemClock } from '../../src/core/clock.js';
import type { Decision } from '../../src/core/types.js';
import { CLI, runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait-for.js';
import { connects, createNetnsPair, type NetnsPair, startEchoServer } from './netns.js';

// Real kernel: `portcullis run` inside a server namespace, its ipset action (ipset sets + an
// iptables/ip6tables chain of its own) guarding a TCP server; an attacker namespace connects from
// two addresses per family. CI runs as root; a missing `ipset` or `iptables` fails here (no skip).

const GUARDED = 7000;
const OPEN = 7001;
const CHILD = fileURLToPath(new URL('./xtables-child.ts', import.meta.url));

let pair: NetnsPair;
let echo: ChildProcess | undefined;
let daemon: ChildProcess | undefined;
let daemonLog = '';
let dir: string;
let configFile: string;

function startDaemon(): ChildProcess {
  daemonLog = '';
  const child = pair.spawn(pair.server, [process.execPath, '--import', 'tsx', CLI, 'run', '-c', configFile]);
  child.stdout?.on('data', (c: Buffer) => {
    daemonLog += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    daemonLog += c.toString();
  });
  return child;
}

async function stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const child = daemon;
  daemon = undefined;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
}

async function started(): Promise<void> {
  await waitFor(() => daemonLog.includes('portcullis started'), {
    timeoutMs: 20_000,
    intervalMs: 100,
    message: () => `portcullis to start (log: ${daemonLog})`,
  });
}

/** The entries of one of the action's sets (`ipset save`), without their timeouts. */
async function members(set: string): Promise<string[]> {
  let text: string;
  try {
    text = await pair.exec(pair.server, ['ipset', 'save', set]);
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.startsWith('add '))
    .map((line) => line.split(' ')[2] as string)
    .sort();
}

const cli = async (...args: string[]) => {
  const result = await runCli([...args, '-c', configFile]);
  expect(result.status, result.stderr).toBe(0);
};
const blocked = async (local: string, host: string, port = GUARDED) =>
  waitFor(async () => !(await connects(pair, local, host, port)), {
    timeoutMs: 8000,
    intervalMs: 200,
    message: `${local} blocked (log: ${daemonLog.slice(-800)})`,
  });
const reachable = async (local: string, host: string, port = GUARDED, timeoutMs = 8000) =>
  waitFor(() => connects(pair, local, host, port), {
    timeoutMs,
    intervalMs: 200,
    message: `${local} reachable`,
  });

beforeAll(async () => {
  pair = await createNetnsPair();
  dir = mkdtempSync(join(tmpdir(), 'pc-ipset-'));
  configFile = join(dir, 'portcullis.yaml');
  writeFileSync(
    configFile,
    [
      `store: { sqlite: ${join(dir, 'portcullis.db')} }`,
      'log: { level: info }',
      'actions:',
      `  guard: { ipset: { ports: [${GUARDED}], maxelem: 200000 } }`,
      'defaults:',
      '  ignoreip: []',
      '  ignoreself: false',
      '  ipv6_prefix: 128',
      '  actions: [guard]',
      'jails:',
      '  sshd: {}',
      '',
    ].join('\n'),
  );
  echo = await startEchoServer(pair, [GUARDED, OPEN]);
  daemon = startDaemon();
  await started();
}, 60_000);

afterAll(async () => {
  await stopDaemon('SIGKILL');
  echo?.kill('SIGKILL');
  await pair?.remove();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('ipset action in a network namespace', () => {
  it('creates its sets (maxelem as configured), chain and jump in iptables and ip6tables', async () => {
    const header = await pair.exec(pair.server, ['ipset', 'list', '-t', 'pc-guard-v4']);
    expect(header).toContain('Type: hash:ip');
    expect(header).toMatch(/maxelem 200000 timeout 0/);
    expect(await pair.exec(pair.server, ['ipset', 'list', '-t', 'pc-guard-n6'])).toContain('Type: hash:net');
    for (const binary of ['iptables', 'ip6tables']) {
      const rules = await pair.exec(pair.server, [binary, '-w', '-S']);
      expect(rules).toContain('-A INPUT -j pc-guard');
      expect(rules).toMatch(/-A pc-guard .*--match-set pc-guard-[vn][46] src .*--dports 7000 -j DROP/);
    }
  });

  it('a banned address cannot connect to the guarded port; another address and other ports still can; unban lifts it', async () => {
    const { v4 } = pair;
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(true);
    await cli('ban', v4.first, '-d', '1h');
    await blocked(v4.first, v4.server);
    expect(await members('pc-guard-v4')).toEqual([v4.first]);
    expect(await connects(pair, v4.second, v4.server, GUARDED)).toBe(true);
    expect(await connects(pair, v4.first, v4.server, OPEN)).toBe(true);
    await cli('unban', v4.first);
    await reachable(v4.first, v4.server);
    expect(await members('pc-guard-v4')).toEqual([]);
  }, 60_000);

  it('the kernel lifts a ban at its expiry', async () => {
    const { v4 } = pair;
    await cli('ban', v4.first, '-d', '3s');
    await blocked(v4.first, v4.server);
    await reachable(v4.first, v4.server, GUARDED, 8000);
  }, 60_000);

  it('bans IPv6 clients, and a CIDR range blocks every address in it', async () => {
    const { v4, v6 } = pair;
    await cli('ban', v6.first, '-d', '1h');
    await blocked(v6.first, v6.server);
    expect(await members('pc-guard-v6')).toEqual([v6.first]);
    expect(await connects(pair, v6.second, v6.server, GUARDED)).toBe(true);
    await cli('unban', v6.first);
    await reachable(v6.first, v6.server);

    await cli('ban', `10.200.${pair.subnet}.0/28`, '-d', '1h');
    await blocked(v4.first, v4.server);
    await blocked(v4.second, v4.server);
    expect(await members('pc-guard-n4')).toEqual([`10.200.${pair.subnet}.0/28`]);
    await cli('ban', `fd00:200:${pair.subnet}::/64`, '-d', '1h');
    await blocked(v6.second, v6.server);
    expect(await members('pc-guard-n6')).toEqual([`fd00:200:${pair.subnet}::/64`]);
    await cli('unban', `10.200.${pair.subnet}.0/28`);
    await cli('unban', `fd00:200:${pair.subnet}::/64`);
    await reachable(v4.second, v4.server);
    await reachable(v6.second, v6.server);
  }, 90_000);

  it('after kill -9 the kernel keeps enforcing and honours an expiry; at restart the restored bans are back and lifted ones gone', async () => {
    const { v4, v6 } = pair;
    await cli('ban', v4.first, '-d', '1h');
    // Long enough to be seen blocked on a loaded machine (each CLI call starts a Node process).
    await cli('ban', v4.second, '-d', '8s');
    await cli('ban', v6.first, '-d', '-1');
    await blocked(v4.first, v4.server);
    await blocked(v4.second, v4.server);
    await blocked(v6.first, v6.server);
    await stopDaemon('SIGKILL');
    // Down: the kernel still refuses the banned, and lifts the 8 s ban on its own.
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(false);
    await reachable(v4.second, v4.server, GUARDED, 15_000);
    expect(await members('pc-guard-v4')).toEqual([v4.first]);
    // Lifted while portcullis is down: the kernel still holds it (permanent) until the restart.
    await cli('unban', v6.first);
    expect(await members('pc-guard-v6')).toEqual([v6.first]);
    daemon = startDaemon();
    await started();
    await waitFor(async () => (await members('pc-guard-v6')).length === 0, {
      timeoutMs: 8000,
      intervalMs: 100,
      message: 'the lifted ban to leave the set',
    });
    expect(await members('pc-guard-v4')).toEqual([v4.first]);
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(false);
    expect(await connects(pair, v4.second, v4.server, GUARDED)).toBe(true);
    expect(await connects(pair, v6.first, v6.server, GUARDED)).toBe(true);
    await cli('unban', v4.first);
    await reachable(v4.first, v4.server);
  }, 90_000);

  it('a restart re-creates a flushed firewall; stop leaves it; portcullis flush removes only what portcullis made', async () => {
    const { v4 } = pair;
    await cli('ban', v4.first, '-d', '1h');
    await blocked(v4.first, v4.server);
    await stopDaemon();
    // Stopping leaves sets and chain: the ban stays enforced.
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(false);
    // An admin's own objects, which flush must leave alone.
    await pair.exec(pair.server, ['ipset', 'create', 'admin-set', 'hash:ip']);
    await pair.exec(pair.server, ['iptables', '-w', '-N', 'ADMIN']);
    await pair.exec(pair.server, [
      'iptables',
      '-w',
      '-A',
      'INPUT',
      '-p',
      'tcp',
      '--dport',
      '9',
      '-j',
      'ADMIN',
    ]);
    // The admin flushes the rules; the restart puts chain and jump back, with the ban.
    await pair.exec(pair.server, ['iptables', '-w', '-F', 'INPUT']);
    await pair.exec(pair.server, ['iptables', '-w', '-F', 'pc-guard']);
    await pair.exec(pair.server, [
      'iptables',
      '-w',
      '-A',
      'INPUT',
      '-p',
      'tcp',
      '--dport',
      '9',
      '-j',
      'ADMIN',
    ]);
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(true);
    daemon = startDaemon();
    await started();
    await blocked(v4.first, v4.server);
    await stopDaemon();
    const flushed = await pair.exec(pair.server, [
      process.execPath,
      '--import',
      'tsx',
      CLI,
      'flush',
      '-c',
      configFile,
    ]);
    expect(flushed).toContain('removed ipset sets pc-guard-*');
    const sets = await pair.exec(pair.server, ['ipset', 'list', '-n']);
    expect(sets.trim().split('\n')).toEqual(['admin-set']);
    for (const binary of ['iptables', 'ip6tables'])
      expect(await pair.exec(pair.server, [binary, '-w', '-S'])).not.toContain('pc-guard');
    expect(await pair.exec(pair.server, ['iptables', '-w', '-S'])).toContain(
      '-A INPUT -p tcp -m tcp --dport 9 -j ADMIN',
    );
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(true);
    await cli('unban', v4.first);
    daemon = startDaemon();
    await started();
  }, 90_000);

  it('a wave of 10,000 bans fills the set with a bounded number of ipset calls; hostile targets add nothing and run nothing; an admin flush is re-created with every ban', async () => {
    const canary = join(dir, `canary-${randomBytes(4).toString('hex')}`);
    const out = await pair.exec(pair.server, [
      process.execPath,
      '--import',
      'tsx',
      CHILD,
      'ipset',
      '10000',
      canary,
    ]);
    const result = JSON.parse(out.trim().split('\n').pop() as string) as {
      wave: { ipset: number; restore: number; entries: number };
      hostile: { error: string | null; added: number; legit: boolean; injected: boolean; canary: boolean };
      restored: number;
      jump: boolean;
    };
    // The runner hands a wave over in batches of up to 10,000: one ipset call each, no rule change.
    expect(result.wave.ipset).toBeLessThanOrEqual(3);
    expect(result.wave.restore).toBe(0);
    expect(result.wave.entries).toBe(10_000);
    expect(result.hostile).toEqual({ error: null, added: 1, legit: true, injected: false, canary: false });
    expect(result.restored).toBe(10_000);
    expect(result.jump).toBe(true);
  }, 120_000);
});

describe('ipset action: a full set and sets it does not own', () => {
  const nsExec = (binary: string, args: readonly string[], input?: string) =>
    pair.exec(pair.server, [binary, ...args], input);
  const decision = (target: string, ms = 3_600_000): Decision => ({
    target,
    jail: 'sshd',
    reason: 'test',
    startedAt: Date.now(),
    expiresAt: Date.now() + ms,
    banCount: 1,
    dryRun: false,
    origin: 'test',
  });
  const entries = async (set: string) =>
    Number(/Number of entries: (\d+)/.exec(await pair.exec(pair.server, ['ipset', 'list', '-t', set]))?.[1]);

  it('a set at maxelem takes what fits; the batch succeeds, reverts behind it run, and no temporary set is left', async () => {
    const prefix = `pc-full-${randomBytes(3).toString('hex')}`;
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (_f: object, m?: string) => warnings.push(String(m)),
    };
    const action = createIpsetAction(
      'full',
      resolveIpsetOptions(
        'full',
        ipsetOptionsSchema.parse({ set_prefix: prefix, maxelem: 1024, ports: [GUARDED] }),
      ),
      { logger, clock: systemClock, baseDir: null },
      { exec: nsExec },
    );
    const many = Array.from({ length: 1100 }, (_, i) => decision(`198.51.${100 + (i >> 8)}.${i & 255}`));
    try {
      await action.start();
      await action.apply([...many, decision(pair.v4.first), decision(pair.v6.first)]);
      expect(await entries(`${prefix}-v4`)).toBe(1024);
      // The IPv6 ban after the overflow went in: its set has room.
      expect(await entries(`${prefix}-v6`)).toBe(1);
      expect(action.overflow).toBe(77);
      expect(warnings).toHaveLength(1);
      await blocked(pair.v6.first, pair.v6.server);
      // A revert queued behind the full wave runs.
      await action.revert([decision(many[0]?.target as string)]);
      expect(await entries(`${prefix}-v4`)).toBe(1023);
      // Restore with more than maxelem: capped, swapped in, nothing left aside.
      await action.restore([...many, decision(pair.v6.first)]);
      expect(await entries(`${prefix}-v4`)).toBe(1024);
      const sets = (await pair.exec(pair.server, ['ipset', 'list', '-n'])).split('\n');
      expect(sets.filter((name) => name.startsWith(prefix) && name.endsWith('t'))).toEqual([]);
    } finally {
      await removeIpsetObjects([prefix], nsExec);
    }
    expect(await pair.exec(pair.server, ['ipset', 'list', '-n'])).not.toContain(prefix);
    await reachable(pair.v6.first, pair.v6.server);
  }, 60_000);

  it("never fills, swaps or destroys an admin's set that has its name", async () => {
    const prefix = `pc-adm-${randomBytes(3).toString('hex')}`;
    await pair.exec(pair.server, ['ipset', 'create', `${prefix}-v4`, 'hash:ip']);
    await pair.exec(pair.server, ['ipset', 'add', `${prefix}-v4`, '192.0.2.99']);
    const action = createIpsetAction(
      'adm',
      resolveIpsetOptions('adm', ipsetOptionsSchema.parse({ set_prefix: prefix })),
      { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: systemClock, baseDir: null },
      { exec: nsExec },
    );
    try {
      await expect(action.start()).rejects.toThrow(/not made by portcullis/);
      await expect(removeIpsetObjects([prefix], nsExec)).rejects.toThrow(/not made by portcullis/);
      const sets = (await pair.exec(pair.server, ['ipset', 'list', '-n'])).split('\n');
      expect(sets.filter((name) => name.startsWith(prefix))).toEqual([`${prefix}-v4`]);
      expect(await pair.exec(pair.server, ['ipset', 'save', `${prefix}-v4`])).toContain('192.0.2.99');
      for (const binary of ['iptables', 'ip6tables'])
        expect(await pair.exec(pair.server, [binary, '-w', '-S'])).not.toContain(prefix);
    } finally {
      await pair.exec(pair.server, ['ipset', 'destroy', `${prefix}-v4`]);
    }
  }, 60_000);
});
