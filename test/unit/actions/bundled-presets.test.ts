import { describe, expect, it } from 'vitest';
import { bundledActionPresets } from '../../../src/actions/bundled-presets.js';
import type { IpsetConfig } from '../../../src/actions/ipset/options.js';
import type { NftablesConfig } from '../../../src/actions/nftables/options.js';
import { ACTION_KINDS } from '../../../src/actions/registry.js';
import { resolveConfig } from '../../../src/config/load.js';

const optionsOf = <T>(spec: { options: unknown } | undefined) => (spec?.options ?? {}) as T;
const load = (input: Record<string, unknown>) =>
  resolveConfig({ jails: { sshd: {} }, ...input }, { name: 'p.yaml', env: {} });

describe('bundled action presets (rules/actions)', () => {
  const presets = bundledActionPresets();

  it('ships the documented presets', () => {
    expect([...presets.keys()].sort()).toEqual([
      'hostsdeny',
      'ipset-allports',
      'iptables-allports',
      'mail-ops',
      'nftables-allports',
      'nftables-ssh',
      'nginx-deny',
      'slack',
    ]);
  });

  for (const [name, preset] of bundledActionPresets()) {
    it(`${name} loads by name in defaults.actions and in a jail's list, and says what it does`, () => {
      expect(Object.keys(ACTION_KINDS)).toContain(preset.kind);
      expect(preset.description).toMatch(new RegExp(`^${name}: `));
      const config = load({ defaults: { actions: [name] }, jails: { sshd: {}, web: { actions: [name] } } });
      expect(config.actions).toHaveLength(1);
      expect(config.actions?.[0]?.kind).toBe(preset.kind);
      expect(config.jails.every((jail) => jail.actions[0] === config.actions?.[0])).toBe(true);
    });
  }

  it('all firewall presets together claim distinct kernel objects', () => {
    const config = load({
      defaults: {
        actions: ['nftables-ssh', 'nftables-allports', 'ipset-allports', 'iptables-allports', 'nginx-deny'],
      },
    });
    expect(config.actions).toHaveLength(5);
  });

  it("overrides some of a preset's options: a new instance, the rest kept", () => {
    const config = load({
      jails: { sshd: { actions: ['nftables-ssh', { 'nftables-ssh': { ports: [2222] } }] } },
    });
    const [plain, custom] = config.jails[0]?.actions ?? [];
    expect(optionsOf<NftablesConfig>(plain).ports).toEqual(['22']);
    expect(custom?.name).toBe('nftables-ssh-sshd');
    expect(custom?.options).toMatchObject({
      ports: ['2222'],
      protocol: 'tcp',
      setPrefix: 'nftables_ssh_sshd',
    });
    const ipset = load({ defaults: { actions: [{ 'ipset-allports': { maxelem: 4096 } }] } }).actions?.[0];
    expect(optionsOf<IpsetConfig>(ipset).maxelem).toBe(4096);
  });

  it("a preset of the user's own with a bundled name wins", () => {
    const config = load({
      actions: { 'nftables-ssh': { nftables: { ports: [2200] } } },
      defaults: { actions: ['nftables-ssh'] },
    });
    expect(optionsOf<NftablesConfig>(config.actions?.[0]).ports).toEqual(['2200']);
  });

  it('a bad override is a config error with its key path', () => {
    expect(() => load({ defaults: { actions: [{ 'mail-ops': { to: 'not an address' } }] } })).toThrow(
      /p\.yaml: defaults\.actions\.0\.mail-ops\.to: /,
    );
  });
});
