import { describe, expect, it } from 'vitest';
import { createIpsetAction } from '../../../../src/actions/ipset/ipset-action.js';
import { ipsetOptionsSchema, resolveIpsetOptions } from '../../../../src/actions/ipset/options.js';
import { IPSET_MAX_TIMEOUT_S, timeoutSeconds } from '../../../../src/actions/ipset/script.js';
import { createManualClock } from '../../../../src/core/clock.js';
import type { Decision } from '../../../../src/core/types.js';

const clock = createManualClock();
const ban = (target: string, ms: number | null = 60_000): Decision => ({
  target,
  jail: 'sshd',
  reason: 'test',
  startedAt: clock.now(),
  expiresAt: ms === null ? null : clock.now() + ms,
  banCount: 1,
  dryRun: false,
  origin: 'test',
});

function fake(existing: string[] = []) {
  const calls: { binary: string; args: readonly string[]; input: string }[] = [];
  return {
    calls,
    exec: async (binary: string, args: readonly string[], input = '') => {
      calls.push({ binary, args, input });
      if (binary === 'ipset' && args[0] === 'list') return existing.join('\n');
      if (args.includes('-C')) throw new Error('iptables: Bad rule');
      if (args.includes('-D')) throw new Error('iptables: Bad rule');
      return '';
    },
  };
}

function action(tools: ReturnType<typeof fake>, options: Record<string, unknown> = { ports: [22] }) {
  const errors: string[] = [];
  const logger = {
    debug() {},
    info() {},
    warn() {},
    error: (_f: object, m?: string) => errors.push(String(m)),
  };
  const config = resolveIpsetOptions('ipset', ipsetOptionsSchema.parse(options));
  return {
    errors,
    a: createIpsetAction('ipset', config, { logger, clock, baseDir: null }, { exec: tools.exec }),
  };
}

describe('ipset action (tools faked)', () => {
  it('start creates the four sets with maxelem 1,048,576 by default, then a chain per family', async () => {
    const tools = fake();
    const { a } = action(tools);
    await a.start();
    const create = tools.calls.find((c) => c.args[0] === 'restore');
    expect(create?.input).toBe(
      [
        'create pc-ipset-v4 hash:ip family inet timeout 0 maxelem 1048576',
        'create pc-ipset-v6 hash:ip family inet6 timeout 0 maxelem 1048576',
        'create pc-ipset-n4 hash:net family inet timeout 0 maxelem 1048576',
        'create pc-ipset-n6 hash:net family inet6 timeout 0 maxelem 1048576',
        '',
      ].join('\n'),
    );
    const v4 = tools.calls.find((c) => c.binary === 'iptables-restore');
    expect(v4?.input).toContain(
      '-A pc-ipset -m set --match-set pc-ipset-v4 src -p tcp -m multiport --dports 22 -j DROP',
    );
    expect(v4?.input).toContain('--match-set pc-ipset-n4 src');
    expect(tools.calls.find((c) => c.binary === 'ip6tables-restore')?.input).toContain(
      '--match-set pc-ipset-n6 src',
    );
    expect(tools.calls).toContainEqual(
      expect.objectContaining({ binary: 'iptables', args: ['-w', '-I', 'INPUT', '1', '-j', 'pc-ipset'] }),
    );
  });

  it('keeps sets a previous run left (their entries stay enforced)', async () => {
    const tools = fake(['pc-ipset-v4', 'pc-ipset-v6', 'pc-ipset-n4', 'pc-ipset-n6', 'other']);
    const { a } = action(tools);
    await a.start();
    expect(tools.calls.filter((c) => c.binary === 'ipset' && c.args[0] === 'restore')).toHaveLength(0);
  });

  it('applies 10,000 bans (addresses and networks, both families) in one ipset call with their remaining time', async () => {
    const tools = fake();
    const { a } = action(tools);
    const bans = Array.from({ length: 10_000 }, (_, i) => ban(`10.${i >> 8}.${i & 255}.1`, 90_500));
    await a.apply([
      ...bans,
      ban('2001:db8::/64', null),
      ban('192.0.2.0/24', 40 * 86_400_000),
      ban('fd00::1'),
    ]);
    expect(tools.calls).toHaveLength(1);
    const lines = tools.calls[0]?.input.trim().split('\n') ?? [];
    expect(tools.calls[0]?.args).toEqual(['restore', '-exist']);
    expect(lines).toHaveLength(10_003);
    expect(lines[0]).toBe('add pc-ipset-v4 10.0.0.1 timeout 91');
    // Permanent, and longer than ipset's ~24.8 days: no kernel timeout (portcullis lifts it).
    expect(lines.slice(-3)).toEqual([
      'add pc-ipset-n6 2001:db8::/64 timeout 0',
      'add pc-ipset-n4 192.0.2.0/24 timeout 0',
      'add pc-ipset-v6 fd00::1 timeout 60',
    ]);
    expect(timeoutSeconds(IPSET_MAX_TIMEOUT_S * 1000)).toBe(IPSET_MAX_TIMEOUT_S);
  });

  it('restore builds twins and swaps them in; revert deletes; flush empties the four sets', async () => {
    const tools = fake();
    const { a } = action(tools);
    await a.restore([ban('192.0.2.1')]);
    expect(tools.calls[0]?.input).toMatch(
      /^destroy pc-ipset-v4t\ncreate pc-ipset-v4t hash:ip family inet timeout 0 maxelem 1048576\n/,
    );
    expect(tools.calls[0]?.input).toContain('add pc-ipset-v4t 192.0.2.1 timeout 60\n');
    expect(tools.calls[0]?.input).toContain('swap pc-ipset-v4t pc-ipset-v4\ndestroy pc-ipset-v4t\n');
    await a.revert([ban('192.0.2.1'), ban('10.0.0.0/8')]);
    expect(tools.calls[1]?.input).toBe('del pc-ipset-v4 192.0.2.1\ndel pc-ipset-n4 10.0.0.0/8\n');
    await a.flush();
    expect(tools.calls[2]?.input).toBe(
      'flush pc-ipset-v4\nflush pc-ipset-v6\nflush pc-ipset-n4\nflush pc-ipset-n6\n',
    );
  });

  it('hostile or non-canonical targets never reach ipset; the rest of the batch is applied', async () => {
    const tools = fake();
    const { a, errors } = action(tools);
    await a.apply([
      ban('1.2.3.4; rm -rf /'),
      ban('$(id)'),
      ban('1.2.3.4\nadd pc-ipset-v4 9.9.9.9'),
      ban('0.0.0.0/0'),
      ban('198.51.100.7'),
    ]);
    expect(tools.calls[0]?.input).toBe('add pc-ipset-v4 198.51.100.7 timeout 60\n');
    expect(errors[0]).toMatch(/4 target\(s\) refused/);
  });

  it('check re-creates what an admin removed and says so', async () => {
    const tools = fake(['pc-ipset-v4']);
    const { a } = action(tools);
    expect(await a.check()).toBe(false);
    expect(tools.calls.some((c) => c.input.includes('create pc-ipset-v6'))).toBe(true);
  });
});
