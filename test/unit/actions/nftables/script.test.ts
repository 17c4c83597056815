import { describe, expect, it } from 'vitest';
import { nftablesOptionsSchema, resolveNftablesOptions } from '../../../../src/actions/nftables/options.js';
import {
  applyStatements,
  elementsOf,
  formatTimeout,
  revertStatements,
  structureScript,
} from '../../../../src/actions/nftables/script.js';
import type { Decision } from '../../../../src/core/types.js';

const NOW = Date.UTC(2026, 10, 25, 12);
const config = (options: object = {}, name = 'nftables') =>
  resolveNftablesOptions(name, nftablesOptionsSchema.parse(options));
const ban = (
  target: string,
  expiresAt: number | null = NOW + 3_600_000,
  extra: Partial<Decision> = {},
): Decision => ({
  target,
  jail: 'sshd',
  reason: 'test',
  startedAt: NOW,
  expiresAt,
  banCount: 1,
  dryRun: false,
  origin: 'test',
  ...extra,
});
const none = { 4: new Set<number>(), 6: new Set<number>() };

describe('nftables script builder', () => {
  it('creates a table, timeout sets and a chain dropping the configured ports', () => {
    expect(
      structureScript(config({ ports: [22, '8000-8100'] }, 'ssh-fw'), { 4: new Set([24]), 6: new Set() }),
    ).toBe(`add table inet portcullis
add set inet portcullis ssh_fw_v4 { type ipv4_addr; flags timeout; }
add set inet portcullis ssh_fw_v6 { type ipv6_addr; flags timeout; }
add set inet portcullis ssh_fw_v4_24 { type ipv4_addr; flags interval, timeout; }
add chain inet portcullis ssh_fw_input { type filter hook input priority filter - 1; policy accept; }
flush chain inet portcullis ssh_fw_input
add rule inet portcullis ssh_fw_input ip saddr @ssh_fw_v4 tcp dport { 22, 8000-8100 } drop
add rule inet portcullis ssh_fw_input ip6 saddr @ssh_fw_v6 tcp dport { 22, 8000-8100 } drop
add rule inet portcullis ssh_fw_input ip saddr @ssh_fw_v4_24 tcp dport { 22, 8000-8100 } drop
`);
  });

  it('bans every port and protocol without ports; rejects with a TCP reset; docker-user matches the published port', () => {
    expect(structureScript(config(), none)).toContain('ip saddr @nftables_v4 drop\n');
    expect(structureScript(config({ ports: [22], verdict: 'reject' }), none)).toContain(
      'tcp dport { 22 } reject with tcp reset',
    );
    const docker = structureScript(config({ ports: [8080], chain: 'docker-user' }), none);
    expect(docker).toContain('add chain inet portcullis nftables_docker_user { type filter hook forward');
    expect(docker).toContain('meta l4proto tcp ct original proto-dst { 8080 } drop');
    expect(structureScript(config({ protocol: 'udp', verdict: 'reject' }), none)).toContain(
      'meta l4proto udp reject\n',
    );
  });

  it('puts addresses and networks in the set of their prefix length, with the remaining time', () => {
    const batch = elementsOf(
      [
        ban('192.0.2.7'),
        ban('10.0.0.0/8', null),
        ban('2001:db8:1:2::/64', NOW + 1500),
        ban('2001:db8::1', null),
      ],
      NOW,
    );
    expect(batch.invalid).toEqual([]);
    const statements = applyStatements(config(), batch.live);
    expect(statements).toEqual([
      'add element inet portcullis nftables_v4 { 192.0.2.7 }',
      'delete element inet portcullis nftables_v4 { 192.0.2.7 }',
      'add element inet portcullis nftables_v4 { 192.0.2.7 timeout 1h }',
      'add element inet portcullis nftables_v4_8 { 10.0.0.0/8 }',
      'delete element inet portcullis nftables_v4_8 { 10.0.0.0/8 }',
      'add element inet portcullis nftables_v4_8 { 10.0.0.0/8 }',
      'add element inet portcullis nftables_v6_64 { 2001:db8:1:2::/64 }',
      'delete element inet portcullis nftables_v6_64 { 2001:db8:1:2::/64 }',
      'add element inet portcullis nftables_v6_64 { 2001:db8:1:2::/64 timeout 1s500ms }',
      'add element inet portcullis nftables_v6 { 2001:db8::1 }',
      'delete element inet portcullis nftables_v6 { 2001:db8::1 }',
      'add element inet portcullis nftables_v6 { 2001:db8::1 }',
    ]);
  });

  it('reverts tolerating absent elements: add (a no-op when present), then delete', () => {
    expect(revertStatements(config(), elementsOf([ban('192.0.2.7'), ban('192.0.2.8')], NOW).live)).toEqual([
      'add element inet portcullis nftables_v4 { 192.0.2.7, 192.0.2.8 }',
      'delete element inet portcullis nftables_v4 { 192.0.2.7, 192.0.2.8 }',
    ]);
  });

  it('groups a wave of 10,000 bans into one statement per set', () => {
    const decisions = Array.from({ length: 10_000 }, (_, i) =>
      ban(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
    );
    const batch = elementsOf(decisions, NOW);
    expect(batch.live).toHaveLength(10_000);
    expect(applyStatements(config(), batch.live)).toHaveLength(3);
  });

  it('never lets a hostile target reach a script', () => {
    const hostile = [
      '1.2.3.4; rm -rf /',
      '1.2.3.4\n add element inet portcullis nftables_v4 { 0.0.0.0/0 }',
      '1.2.3.4 }',
      '$(id)',
      '`id`',
      ' 1.2.3.4',
      '1.2.3.4/33',
      '::ffff:1.2.3.4',
      '10.1.2.3/8',
      '',
    ];
    const batch = elementsOf([...hostile.map((target) => ban(target)), ban('192.0.2.1')], NOW);
    expect(batch.invalid).toEqual(hostile);
    expect(batch.live.map((e) => e.text)).toEqual(['192.0.2.1']);
    const script = applyStatements(config(), batch.live).join('\n');
    for (const bad of ['rm', '$', '`', '0.0.0.0/0', 'id']) expect(script).not.toContain(bad);
  });

  it('skips dry-run decisions and sets ended ones apart', () => {
    const batch = elementsOf([ban('192.0.2.1', NOW + 1, { dryRun: true }), ban('192.0.2.2', NOW - 1)], NOW);
    expect(batch.live).toEqual([]);
    expect(batch.ended.map((e) => e.text)).toEqual(['192.0.2.2']);
  });

  it('writes timeouts in the units nft takes (a bare ms count above 2^31 is refused)', () => {
    expect(formatTimeout(3_600_000)).toBe('1h');
    expect(formatTimeout(90_061_001)).toBe('1d1h1m1s1ms');
    expect(formatTimeout(365 * 86_400_000)).toBe('365d');
    expect(formatTimeout(0)).toBe('1ms');
  });
});
