import { describe, expect, it } from 'vitest';
import { createIptablesAction } from '../../../../src/actions/iptables/iptables-action.js';
import { iptablesOptionsSchema, resolveIptablesOptions } from '../../../../src/actions/iptables/options.js';
import { createManualClock } from '../../../../src/core/clock.js';
import type { Decision } from '../../../../src/core/types.js';

const clock = createManualClock();
const ban = (target: string, ms = 60_000): Decision => ({
  target,
  jail: 'sshd',
  reason: 'test',
  startedAt: clock.now(),
  expiresAt: clock.now() + ms,
  banCount: 1,
  dryRun: false,
  origin: 'test',
});

function setup() {
  const calls: { binary: string; args: readonly string[]; input: string }[] = [];
  const exec = async (binary: string, args: readonly string[], input = '') => {
    calls.push({ binary, args, input });
    return '';
  };
  const config = resolveIptablesOptions('iptables', iptablesOptionsSchema.parse({ ports: [22] }));
  const a = createIptablesAction('iptables', config, { logger: console, clock, baseDir: null }, { exec });
  return { a, calls };
}

describe('iptables action (tools faked)', () => {
  it('a batch rewrites the chain of each family it changes in one iptables-restore call; applying again changes nothing', async () => {
    const { a, calls } = setup();
    await a.apply([ban('192.0.2.1'), ban('192.0.2.2'), ban('10.0.0.0/8')]);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.binary).toBe('iptables-restore');
    expect(calls[0]?.args).toEqual(['-w', '--noflush']);
    expect(calls[0]?.input).toBe(
      [
        '*filter',
        ':pc-iptables - [0:0]',
        '-A pc-iptables -m comment --comment portcullis',
        '-A pc-iptables -s 192.0.2.1 -p tcp -m multiport --dports 22 -j DROP',
        '-A pc-iptables -s 192.0.2.2 -p tcp -m multiport --dports 22 -j DROP',
        '-A pc-iptables -s 10.0.0.0/8 -p tcp -m multiport --dports 22 -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
    );
    await a.apply([ban('192.0.2.1')]);
    expect(calls).toHaveLength(1);
    await a.apply([ban('2001:db8::1')]);
    expect(calls[1]?.binary).toBe('ip6tables-restore');
  });

  it('revert and restore leave exactly the bans in force', async () => {
    const { a, calls } = setup();
    await a.apply([ban('192.0.2.1'), ban('192.0.2.2')]);
    await a.revert([ban('192.0.2.1')]);
    expect(calls[1]?.input).not.toContain('192.0.2.1 ');
    expect(calls[1]?.input).toContain('192.0.2.2 ');
    await a.restore([ban('192.0.2.9')]);
    const v4 = calls.filter((c) => c.binary === 'iptables-restore').pop();
    expect(v4?.input.match(/-A pc-iptables -s /g)).toHaveLength(1);
    expect(v4?.input).toContain('-s 192.0.2.9 ');
  });

  it('hostile targets never become a rule', async () => {
    const { a, calls } = setup();
    await a.apply([ban('1.2.3.4 -j ACCEPT'), ban('$(id)'), ban('1.2.3.4\n-A INPUT -j ACCEPT')]);
    expect(calls).toHaveLength(0);
  });

  it('never writes a network wider than /8 (IPv4) or /32 (IPv6): a /0 ban would drop everyone', async () => {
    const calls: { input: string }[] = [];
    const errors: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error: (_f: object, m?: string) => errors.push(String(m)),
    };
    const config = resolveIptablesOptions('iptables', iptablesOptionsSchema.parse({}));
    const a = createIptablesAction(
      'iptables',
      config,
      { logger, clock, baseDir: null },
      {
        exec: async (_b, _a, input = '') => {
          calls.push({ input });
          return '';
        },
      },
    );
    await a.apply([
      ban('0.0.0.0/0'),
      ban('128.0.0.0/1'),
      ban('10.0.0.0/7'),
      ban('10.0.0.0/8'),
      ban('::/0'),
      ban('2001:db8::/31'),
      ban('2001:db8::/32'),
    ]);
    const written = calls.map((c) => c.input).join('');
    expect(written).toContain('-s 10.0.0.0/8 -j DROP');
    expect(written).toContain('-s 2001:db8::/32 -j DROP');
    for (const wide of ['0.0.0.0/0', '128.0.0.0/1', '10.0.0.0/7', '::/0', '2001:db8::/31'])
      expect(written).not.toContain(` ${wide} `);
    expect(a.refused).toBe(5);
    expect(errors).toEqual([
      expect.stringMatching(/5 network\(s\) refused: wider than \/8 \(IPv4\) or \/32 \(IPv6\)/),
    ]);
  });
});
