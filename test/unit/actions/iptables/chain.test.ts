import { describe, expect, it } from 'vitest';
import {
  chainOwner,
  chainScript,
  ensureChain,
  parentChain,
  removeChain,
  ruleTails,
} from '../../../../src/actions/iptables/chain.js';
import { iptablesOptionsSchema, resolveIptablesOptions } from '../../../../src/actions/iptables/options.js';
import { resolveConfig } from '../../../../src/config/load.js';

const config = (options: Record<string, unknown> = {}, name = 'iptables') =>
  resolveIptablesOptions(name, iptablesOptionsSchema.parse(options));

describe('iptables rule builders', () => {
  it('matches every port and protocol without ports; tcp multiport with them; reject is a TCP reset for tcp', () => {
    expect(ruleTails(config())).toEqual([['-j', 'DROP']]);
    expect(ruleTails(config({ protocol: 'udp', verdict: 'reject' }))).toEqual([
      ['-p', 'udp', '-j', 'REJECT'],
    ]);
    expect(ruleTails(config({ ports: [22, '8000-8100'], verdict: 'reject' }))).toEqual([
      [
        '-p',
        'tcp',
        '-m',
        'multiport',
        '--dports',
        '22,8000:8100',
        '-j',
        'REJECT',
        '--reject-with',
        'tcp-reset',
      ],
    ]);
  });

  it('splits ports over rules of at most 15 multiport slots (a range takes two)', () => {
    const ports = Array.from({ length: 20 }, (_, i) => 1000 + i);
    const tails = ruleTails(config({ ports: ['1-2', ...ports] }));
    expect(tails).toHaveLength(2);
    expect(tails[0]?.[5]).toBe(`1:2,${ports.slice(0, 13).join(',')}`);
    expect(tails[1]?.[5]).toBe(ports.slice(13).join(','));
  });

  it('docker-user matches the original destination port (before DNAT), one rule per port', () => {
    const c = config({ ports: [80, '8000-8100'], chain: 'docker-user' });
    expect(parentChain(c.hook)).toBe('DOCKER-USER');
    expect(ruleTails(c)).toEqual([
      ['-p', 'tcp', '-m', 'conntrack', '--ctorigdstport', '80', '-j', 'DROP'],
      ['-p', 'tcp', '-m', 'conntrack', '--ctorigdstport', '8000:8100', '-j', 'DROP'],
    ]);
  });

  it("writes the chain in one transaction that declares (so flushes) it, marked as portcullis's", () => {
    expect(chainScript('pc-x', [['-s', '192.0.2.1', '-j', 'DROP']])).toBe(
      '*filter\n:pc-x - [0:0]\n-A pc-x -m comment --comment portcullis\n-A pc-x -s 192.0.2.1 -j DROP\nCOMMIT\n',
    );
  });

  it('names the chain after the action, within iptables limits', () => {
    expect(config().chain).toBe('pc-iptables');
    expect(config({}, 'iptables-a-very-long-jail-name-indeed').chain).toHaveLength(28);
    expect(config({ chain_name: 'MYBANS' }).chain).toBe('MYBANS');
  });

  it('refuses a docker-user chain Docker has not made, saying what to do', async () => {
    const exec = async (_binary: string, args: readonly string[]) => {
      if (args.includes('DOCKER-USER')) throw new Error('iptables: No chain/target/match by that name.');
      return '';
    };
    await expect(ensureChain(exec, 4, config({ chain: 'docker-user' }), [])).rejects.toThrow(
      /DOCKER-USER does not exist.*use chain: forward/,
    );
  });

  it('config errors name the key path', () => {
    const load = (action: unknown) => () =>
      resolveConfig({ defaults: { actions: [action] }, jails: { sshd: {} } }, { name: 'p.yaml' });
    expect(load({ iptables: { chain_name: 'bad name; rm' } })).toThrow(
      /p\.yaml: defaults\.actions\.0\.iptables\.chain_name: expected a chain name/,
    );
    expect(load({ iptables: { chain: 'output' } })).toThrow(
      /defaults\.actions\.0\.iptables\.chain: expected "input"/,
    );
    expect(load({ ipset: { maxelem: 10 } })).toThrow(
      /defaults\.actions\.0\.ipset\.maxelem: expected at least 1024/,
    );
    expect(load({ ipset: { bogus: 1 } })).toThrow(/unknown setting of the ipset action/);
  });

  it("refuses built-in chains, targets and other tools' names as chain_name or set_prefix, naming the key", () => {
    const load = (action: unknown) => () =>
      resolveConfig({ defaults: { actions: [action] }, jails: { sshd: {} } }, { name: 'p.yaml' });
    for (const name of [
      'INPUT',
      'input',
      'OUTPUT',
      'FORWARD',
      'PREROUTING',
      'POSTROUTING',
      'DOCKER-USER',
      'DOCKER',
      'ACCEPT',
      'DROP',
      'REJECT',
      'RETURN',
      'LOG',
    ]) {
      expect(load({ iptables: { chain_name: name } }), name).toThrow(
        /p\.yaml: defaults\.actions\.0\.iptables\.chain_name: expected a chain name of portcullis's own: .* built-in chain or target/,
      );
      expect(load({ ipset: { set_prefix: name } }), name).toThrow(
        /defaults\.actions\.0\.ipset\.set_prefix: expected a name prefix of portcullis's own/,
      );
    }
    for (const name of [
      'DOCKER-ISOLATION-STAGE-1',
      'f2b-sshd',
      'ufw-user-input',
      'KUBE-SERVICES',
      'cali-INPUT',
      'docker-mine',
    ]) {
      expect(load({ iptables: { chain_name: name } }), name).toThrow(
        /chain_name: .* starts with .* another firewall manager/,
      );
      expect(load({ ipset: { set_prefix: name } }), name).toThrow(/set_prefix: .* another firewall manager/);
    }
    expect(config({ chain_name: 'pc-sshd' }).chain).toBe('pc-sshd');
    expect(config({ chain_name: 'MYBANS' }).chain).toBe('MYBANS');
  });

  it("tells its own chain (marked, or only rules it writes) from someone else's", () => {
    expect(chainOwner(null, 'pc-x')).toBe('absent');
    expect(chainOwner('-N pc-x\n', 'pc-x')).toBe('ours');
    expect(
      chainOwner(
        '-N pc-x\n-A pc-x -m comment --comment portcullis\n-A pc-x -s 192.0.2.1/32 -j DROP\n',
        'pc-x',
      ),
    ).toBe('ours');
    // Written by a version before the mark: only source matches with DROP/REJECT.
    expect(
      chainOwner(
        '-N pc-x\n-A pc-x -s 192.0.2.1/32 -p tcp -m multiport --dports 22 -j REJECT --reject-with tcp-reset\n-A pc-x -m set --match-set pc-x-v4 src -j DROP\n',
        'pc-x',
      ),
    ).toBe('ours');
    expect(chainOwner('-N pc-x\n-A pc-x -p tcp -m tcp --dport 8080 -j ACCEPT\n', 'pc-x')).toBe('foreign');
    expect(chainOwner('-N pc-x\n-A pc-x -s 192.0.2.1/32 -j DROP\n-A pc-x -j LOG\n', 'pc-x')).toBe('foreign');
    // A comment is not enough when it is someone else's.
    expect(chainOwner('-N pc-x\n-A pc-x -m comment --comment other -j ACCEPT\n', 'pc-x')).toBe('foreign');
  });

  it('never rewrites, flushes or deletes a chain of its name that it did not make', async () => {
    const calls: string[] = [];
    const exec = async (binary: string, args: readonly string[]) => {
      calls.push(`${binary} ${args.join(' ')}`);
      if (args[1] === '-S' && args[2] === 'pc-x')
        return '-N pc-x\n-A pc-x -p tcp -m tcp --dport 8080 -j ACCEPT\n';
      return '';
    };
    const spec = config({ chain_name: 'pc-x' });
    await expect(ensureChain(exec, 4, spec, [])).rejects.toThrow(
      /chain pc-x exists and was not made by portcullis .*refusing to rewrite/,
    );
    await expect(removeChain(exec, 4, 'pc-x')).rejects.toThrow(/refusing to remove/);
    // A built-in chain is refused before anything is asked of iptables.
    await expect(removeChain(exec, 4, 'INPUT')).rejects.toThrow(/refusing to remove chain "INPUT"/);
    expect(calls.every((c) => c.startsWith('iptables -w -S '))).toBe(true);
  });
});
