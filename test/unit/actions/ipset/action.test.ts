import { describe, expect, it } from 'vitest';
import { createIpsetAction, removeIpsetObjects } from '../../../../src/actions/ipset/ipset-action.js';
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

/** `ipset list -t` of these sets: ours by their suffix (`-v4` hash:ip inet ...), others a plain hash:ip. */
function headers(names: string[]): string {
  return names
    .map((name) => {
      const m = /-([vn])([46])t?$/.exec(name);
      const type = m === null || m[1] === 'v' ? 'hash:ip' : 'hash:net';
      const family = m?.[2] === '6' ? 'inet6' : 'inet';
      const timeout = m === null ? '' : ' timeout 0';
      return `Name: ${name}\nType: ${type}\nRevision: 6\nHeader: family ${family} hashsize 1024 maxelem 1048576${timeout} bucketsize 12\nSize in memory: 216\nReferences: 0\nNumber of entries: 0\n`;
    })
    .join('\n');
}

function fake(existing: string[] = [], listing = headers(existing)) {
  const calls: { binary: string; args: readonly string[]; input: string }[] = [];
  return {
    calls,
    exec: async (binary: string, args: readonly string[], input = '') => {
      calls.push({ binary, args, input });
      if (binary === 'ipset' && args[0] === 'list') return listing;
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
    expect(errors[0]).toMatch(/3 target\(s\) refused/);
    expect(errors[1]).toMatch(/1 network\(s\) refused: wider than \/8/);
    expect(a.refused).toBe(4);
  });

  it('check re-creates what an admin removed and says so', async () => {
    const tools = fake(['pc-ipset-v4']);
    const { a } = action(tools);
    expect(await a.check()).toBe(false);
    expect(tools.calls.some((c) => c.input.includes('create pc-ipset-v6'))).toBe(true);
  });

  it('refuses sets of its names that it did not make: nothing is created, filled or destroyed', async () => {
    // An admin's plain hash:ip set (no timeouts) named like portcullis's.
    const listing =
      'Name: pc-ipset-v4\nType: hash:ip\nRevision: 6\nHeader: family inet hashsize 1024 maxelem 65536 bucketsize 12\n\n' +
      'Name: pc-ipset-n4\nType: hash:ip\nRevision: 6\nHeader: family inet hashsize 1024 maxelem 65536 timeout 0\n';
    const tools = fake([], listing);
    const { a } = action(tools);
    await expect(a.start()).rejects.toThrow(
      /pc-ipset-v4 \(hash:ip\), pc-ipset-n4 \(hash:ip\) exist but were not made by portcullis/,
    );
    expect(tools.calls.map((c) => `${c.binary} ${c.args[0]}`)).toEqual(['ipset list']);
    await expect(removeIpsetObjects(['pc-ipset'], tools.exec)).rejects.toThrow(/not made by portcullis/);
    expect(tools.calls.filter((c) => c.input.includes('destroy') || c.args.includes('-X'))).toEqual([]);
    // Its own sets (and a stray twin) are destroyed; an admin's other set is not named.
    const own = fake(['pc-ipset-v4', 'pc-ipset-v6', 'pc-ipset-n4', 'pc-ipset-n6', 'pc-ipset-v4t', 'admin']);
    await removeIpsetObjects(['pc-ipset'], own.exec);
    expect(own.calls.find((c) => c.args[0] === 'restore')?.input).toBe(
      'destroy pc-ipset-v4\ndestroy pc-ipset-v4t\ndestroy pc-ipset-v6\ndestroy pc-ipset-n4\ndestroy pc-ipset-n6\n',
    );
  });

  /** A fake `ipset restore -exist` that keeps members and stops at the first add to a full set, as ipset does. */
  function kernel(maxelem: number) {
    const sets = new Map<string, Set<string>>();
    const calls: string[] = [];
    const exec = async (binary: string, args: readonly string[], input = '') => {
      if (binary !== 'ipset' || args[0] !== 'restore') return '';
      calls.push(input);
      const lines = input.trim().split('\n');
      for (const [i, line] of lines.entries()) {
        const [op, set = '', target = ''] = line.split(' ');
        if (op === 'create') sets.set(set, sets.get(set) ?? new Set());
        else if (op === 'destroy') sets.delete(set);
        else if (op === 'del') sets.get(set)?.delete(target);
        else if (op === 'swap') {
          const other = line.split(' ')[2] as string;
          const x = sets.get(set) ?? new Set<string>();
          sets.set(set, sets.get(other) ?? new Set());
          sets.set(other, x);
        } else if (op === 'add') {
          const members = sets.get(set) ?? new Set<string>();
          sets.set(set, members);
          if (!members.has(target) && members.size >= maxelem)
            throw new Error(
              `ipset restore -exist: ipset v7.17: Error in line ${i + 1}: Hash is full, cannot add more elements`,
            );
          members.add(target);
        }
      }
      return '';
    };
    return { sets, calls, exec };
  }

  it('a full set takes what fits: the rest is counted as overflow and warned about once, the batch never fails', async () => {
    const k = kernel(1024);
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (_f: object, m?: string) => warnings.push(String(m)),
    };
    const config = resolveIpsetOptions('ipset', ipsetOptionsSchema.parse({ maxelem: 1024 }));
    const a = createIpsetAction('ipset', config, { logger, clock, baseDir: null }, { exec: k.exec });
    const v4 = Array.from({ length: 1100 }, (_, i) => ban(`198.51.${i >> 8}.${i & 255}`));
    // v4 addresses overflow; the IPv6 address and the network after them are still added.
    await a.apply([...v4, ban('2001:db8::1'), ban('10.0.0.0/8')]);
    expect(k.sets.get('pc-ipset-v4')?.size).toBe(1024);
    expect(k.sets.get('pc-ipset-v6')?.has('2001:db8::1')).toBe(true);
    expect(k.sets.get('pc-ipset-n4')?.has('10.0.0.0/8')).toBe(true);
    expect(a.overflow).toBe(76);
    expect(warnings).toEqual([
      expect.stringMatching(/76 ban\(s\) not added: a set of pc-ipset holds maxelem \(1024\)/),
    ]);
    // The same wave goes on: counted, not logged again; a revert behind it runs.
    await a.apply([ban('203.0.113.1')]);
    expect(a.overflow).toBe(77);
    expect(warnings).toHaveLength(1);
    await a.revert([ban('198.51.0.0'), ban('198.51.0.1')]);
    expect(k.sets.get('pc-ipset-v4')?.size).toBe(1022);
    await a.apply([ban('203.0.113.2')]);
    expect(k.sets.get('pc-ipset-v4')?.has('203.0.113.2')).toBe(true);
    // Room again: the next overflow is a new wave, warned about again.
    await a.apply([ban('203.0.113.3'), ban('203.0.113.4')]);
    expect(warnings).toHaveLength(2);
  });

  it('restore keeps at most maxelem per set and leaves no temporary set behind when it fails', async () => {
    const k = kernel(1024);
    const config = resolveIpsetOptions('ipset', ipsetOptionsSchema.parse({ maxelem: 1024 }));
    const logger = { debug() {}, info() {}, error() {}, warn() {} };
    const a = createIpsetAction('ipset', config, { logger, clock, baseDir: null }, { exec: k.exec });
    await a.restore(Array.from({ length: 1100 }, (_, i) => ban(`198.51.${i >> 8}.${i & 255}`)));
    expect(k.sets.get('pc-ipset-v4')?.size).toBe(1024);
    expect(a.overflow).toBe(76);
    expect([...k.sets.keys()].filter((name) => name.endsWith('t'))).toEqual([]);

    const calls: string[] = [];
    const failing = createIpsetAction(
      'ipset',
      config,
      { logger, clock, baseDir: null },
      {
        exec: async (_binary, _args, input = '') => {
          calls.push(input);
          if (calls.length === 1)
            throw new Error('ipset restore -exist: ipset v7.17: Error in line 9: Kernel error');
          return '';
        },
      },
    );
    await expect(failing.restore([ban('192.0.2.1')])).rejects.toThrow(/Kernel error/);
    expect(calls[1]).toBe(
      'destroy pc-ipset-v4t\ndestroy pc-ipset-v6t\ndestroy pc-ipset-n4t\ndestroy pc-ipset-n6t\n',
    );
  });
});
