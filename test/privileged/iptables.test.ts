import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptablesAction, removeIptablesChains } from '../../src/actions/iptables/iptables-action.js';
import { iptablesOptionsSchema, resolveIptablesOptions } from '../../src/actions/iptables/options.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Decision } from '../../src/core/types.js';
import { runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait-for.js';
import { type NsDaemon, nsCli, nsDaemon } from './daemon.js';
import { connects, createNetnsPair, type NetnsPair, startEchoServer } from './netns.js';

// Real kernel: `portcullis run` inside a server namespace, its iptables action (a plain chain in
// iptables and ip6tables, one rule per ban) guarding a TCP server; an attacker namespace connects
// from two addresses per family. CI runs as root; a missing `iptables` fails here (no skip).

const GUARDED = 7000;
const OPEN = 7001;
const CHILD = fileURLToPath(new URL('./xtables-child.ts', import.meta.url));

let pair: NetnsPair;
let echo: ChildProcess | undefined;
let daemon: NsDaemon;
let dir: string;
let configFile: string;

/** The sources of the rules in portcullis's chain. */
async function sources(binary: 'iptables' | 'ip6tables'): Promise<string[]> {
  let text: string;
  try {
    text = await pair.exec(pair.server, [binary, '-w', '-S', 'pc-guard']);
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.startsWith('-A pc-guard -s '))
    .map((line) => (line.split(' ')[3] as string).replace(/\/(32|128)$/, ''))
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
    message: () => `${local} blocked (log: ${daemon.log().slice(-800)})`,
  });
const reachable = async (local: string, host: string, port = GUARDED, timeoutMs = 8000) =>
  waitFor(() => connects(pair, local, host, port), {
    timeoutMs,
    intervalMs: 200,
    message: `${local} reachable`,
  });

beforeAll(async () => {
  pair = await createNetnsPair();
  dir = mkdtempSync(join(tmpdir(), 'pc-iptables-'));
  configFile = join(dir, 'portcullis.yaml');
  writeFileSync(
    configFile,
    [
      `store: { sqlite: ${join(dir, 'portcullis.db')} }`,
      'log: { level: info }',
      'actions:',
      `  guard: { iptables: { ports: [${GUARDED}], verdict: reject } }`,
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
  daemon = nsDaemon(pair, pair.server, configFile);
  await daemon.start();
}, 60_000);

afterAll(async () => {
  await daemon?.stop('SIGKILL');
  echo?.kill('SIGKILL');
  await pair?.remove();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('iptables action in a network namespace', () => {
  it('a banned address (IPv4, IPv6) is refused on the guarded port; another address and other ports are not; unban lifts it', async () => {
    const { v4, v6 } = pair;
    for (const binary of ['iptables', 'ip6tables'])
      expect(await pair.exec(pair.server, [binary, '-w', '-S', 'INPUT'])).toContain('-A INPUT -j pc-guard');
    await cli('ban', v4.first, '-d', '1h');
    await cli('ban', v6.first, '-d', '1h');
    await blocked(v4.first, v4.server);
    await blocked(v6.first, v6.server);
    expect(await sources('iptables')).toEqual([v4.first]);
    expect(await sources('ip6tables')).toEqual([v6.first]);
    expect(await connects(pair, v4.second, v4.server, GUARDED)).toBe(true);
    expect(await connects(pair, v6.second, v6.server, GUARDED)).toBe(true);
    expect(await connects(pair, v4.first, v4.server, OPEN)).toBe(true);
    await cli('unban', v4.first);
    await cli('unban', v6.first);
    await reachable(v4.first, v4.server);
    await reachable(v6.first, v6.server);
    expect(await sources('iptables')).toEqual([]);
  }, 60_000);

  it('portcullis removes a ban at its expiry; a CIDR range blocks every address in it', async () => {
    const { v4 } = pair;
    await cli('ban', v4.first, '-d', '3s');
    await blocked(v4.first, v4.server);
    await reachable(v4.first, v4.server, GUARDED, 8000);
    await cli('ban', `10.200.${pair.subnet}.0/28`, '-d', '1h');
    await blocked(v4.first, v4.server);
    await blocked(v4.second, v4.server);
    expect(await sources('iptables')).toEqual([`10.200.${pair.subnet}.0/28`]);
    await cli('unban', `10.200.${pair.subnet}.0/28`);
    await reachable(v4.second, v4.server);
  }, 60_000);

  it('after kill -9 the chain keeps enforcing; at restart bans that ended while down are gone and the others back', async () => {
    const { v4, v6 } = pair;
    await cli('ban', v4.first, '-d', '1h');
    // Long enough to be seen blocked on a loaded machine (each CLI call starts a Node process).
    const endsAt = Date.now() + 8000;
    await cli('ban', v4.second, '-d', '8s');
    await cli('ban', v6.first, '-d', '1h');
    await blocked(v4.second, v4.server);
    await blocked(v6.first, v6.server);
    await daemon.stop('SIGKILL');
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(false);
    await cli('unban', v6.first);
    // No kernel timeouts in a plain chain: both stay until portcullis is back.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, endsAt - Date.now()) + 500));
    expect(await sources('iptables')).toEqual([v4.first, v4.second].sort());
    expect(await sources('ip6tables')).toEqual([v6.first]);
    await daemon.start();
    await waitFor(async () => (await sources('iptables')).length === 1, {
      timeoutMs: 8000,
      intervalMs: 100,
      message: 'the ended ban to leave the chain',
    });
    expect(await sources('iptables')).toEqual([v4.first]);
    expect(await sources('ip6tables')).toEqual([]);
    expect(await connects(pair, v4.first, v4.server, GUARDED)).toBe(false);
    expect(await connects(pair, v4.second, v4.server, GUARDED)).toBe(true);
    await cli('unban', v4.first);
    await reachable(v4.first, v4.server);
  }, 90_000);

  it('portcullis flush removes the chains and jumps and nothing else', async () => {
    await daemon.stop();
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
      'DROP',
    ]);
    const out = await nsCli(pair, pair.server, ['flush', '-c', configFile]);
    expect(out).toContain('removed iptables/ip6tables chain pc-guard');
    for (const binary of ['iptables', 'ip6tables'])
      expect(await pair.exec(pair.server, [binary, '-w', '-S'])).not.toContain('pc-guard');
    expect(await pair.exec(pair.server, ['iptables', '-w', '-S', 'INPUT'])).toContain(
      '-A INPUT -p tcp -m tcp --dport 9 -j DROP',
    );
    await pair.exec(pair.server, [
      'iptables',
      '-w',
      '-D',
      'INPUT',
      '-p',
      'tcp',
      '--dport',
      '9',
      '-j',
      'DROP',
    ]);
    await daemon.start();
  }, 60_000);

  it('a wave of 1,000 bans takes a bounded number of iptables-restore calls; hostile targets add no rule and run nothing; an admin flush is re-created', async () => {
    const canary = join(dir, `canary-${randomBytes(4).toString('hex')}`);
    const out = await pair.exec(pair.server, [
      process.execPath,
      '--import',
      'tsx',
      CHILD,
      'iptables',
      '1000',
      canary,
    ]);
    const result = JSON.parse(out.trim().split('\n').pop() as string) as {
      wave: { ipset: number; restore: number; entries: number };
      hostile: { error: string | null; added: number; legit: boolean; injected: boolean; canary: boolean };
      restored: number;
      jump: boolean;
    };
    expect(result.wave.restore).toBeLessThanOrEqual(3);
    expect(result.wave.entries).toBe(1000);
    expect(result.hostile).toEqual({ error: null, added: 1, legit: true, injected: false, canary: false });
    expect(result.restored).toBe(1000);
    expect(result.jump).toBe(true);
  }, 120_000);
});

describe('iptables action: what it owns', () => {
  const nsExec = (binary: string, args: readonly string[], input?: string) =>
    pair.exec(pair.server, [binary, ...args], input);
  const actionFor = (chain: string) =>
    createIptablesAction(
      'own',
      resolveIptablesOptions('own', iptablesOptionsSchema.parse({ chain_name: chain, ports: [GUARDED] })),
      { logger: silentLogger, clock: systemClock, baseDir: null },
      { exec: nsExec },
    );
  const decision = (target: string): Decision => ({
    target,
    jail: 'sshd',
    reason: 'test',
    startedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    banCount: 1,
    dryRun: false,
    origin: 'test',
  });

  it("never rewrites, jumps to or removes an admin's chain that has its name", async () => {
    const chain = `pc-adm-${randomBytes(3).toString('hex')}`;
    await pair.exec(pair.server, ['iptables', '-w', '-N', chain]);
    await pair.exec(pair.server, [
      'iptables',
      '-w',
      '-A',
      chain,
      '-p',
      'tcp',
      '--dport',
      '8080',
      '-j',
      'ACCEPT',
    ]);
    const before = await pair.exec(pair.server, ['iptables', '-w', '-S', chain]);
    try {
      await expect(actionFor(chain).start()).rejects.toThrow(
        /was not made by portcullis.*refusing to rewrite/,
      );
      await expect(removeIptablesChains([chain], nsExec)).rejects.toThrow(/refusing to remove/);
      expect(await pair.exec(pair.server, ['iptables', '-w', '-S', chain])).toBe(before);
      expect(await pair.exec(pair.server, ['iptables', '-w', '-S', 'INPUT'])).not.toContain(`-j ${chain}`);
    } finally {
      await pair.exec(pair.server, ['iptables', '-w', '-F', chain]);
      await pair.exec(pair.server, ['iptables', '-w', '-X', chain]);
    }
  }, 60_000);

  it('marks its chain, and a /0 ban never reaches the kernel: other clients still connect', async () => {
    const chain = `pc-own-${randomBytes(3).toString('hex')}`;
    const action = actionFor(chain);
    try {
      await action.start();
      await action.apply([decision('0.0.0.0/0'), decision('::/0'), decision(`${pair.v4.first}`)]);
      const rules = await pair.exec(pair.server, ['iptables', '-w', '-S', chain]);
      expect(rules).toContain(`-A ${chain} -m comment --comment portcullis`);
      expect(rules).not.toContain('0.0.0.0/0');
      expect(await pair.exec(pair.server, ['ip6tables', '-w', '-S', chain])).not.toContain('::/0');
      expect(action.refused).toBe(2);
      await blocked(pair.v4.first, pair.v4.server);
      expect(await connects(pair, pair.v4.second, pair.v4.server, GUARDED)).toBe(true);
      expect(await connects(pair, pair.v6.first, pair.v6.server, GUARDED)).toBe(true);
    } finally {
      await removeIptablesChains([chain], nsExec);
    }
    for (const binary of ['iptables', 'ip6tables'])
      expect(await pair.exec(pair.server, [binary, '-w', '-S'])).not.toContain(chain);
  }, 60_000);
});
