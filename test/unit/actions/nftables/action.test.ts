import { describe, expect, it } from 'vitest';
import { createNftablesAction } from '../../../../src/actions/nftables/nftables-action.js';
import { nftablesOptionsSchema, resolveNftablesOptions } from '../../../../src/actions/nftables/options.js';
import type { ActionSpec } from '../../../../src/actions/registry.js';
import { acceptsFor } from '../../../../src/actions/routing.js';
import { ActionRunner } from '../../../../src/actions/runner.js';
import { resolveConfig } from '../../../../src/config/load.js';
import { createManualClock } from '../../../../src/core/clock.js';
import type { Decision } from '../../../../src/core/types.js';
import type { DecisionListener } from '../../../../src/decisions/decision-book.js';
import { recordingAction } from '../../../helpers/recording-action.js';

const clock = createManualClock();
const ban = (target: string, jail = 'sshd'): Decision => ({
  target,
  jail,
  reason: 'test',
  startedAt: clock.now(),
  expiresAt: clock.now() + 60_000,
  banCount: 1,
  dryRun: false,
  origin: 'test',
});

function fakeNft(table: string | null = null) {
  const calls: { args: readonly string[]; input: string }[] = [];
  let listing = table;
  return {
    calls,
    set listing(value: string | null) {
      listing = value;
    },
    exec: async (args: readonly string[], input = '') => {
      calls.push({ args, input });
      if (args[0] === '-j') {
        if (listing === null) throw new Error('Error: No such file or directory; did you mean table ‘x’');
        return listing;
      }
      return '';
    },
  };
}

function action(nft: ReturnType<typeof fakeNft>, errors: string[] = []) {
  const config = resolveNftablesOptions('nftables', nftablesOptionsSchema.parse({ ports: [22] }));
  const logger = {
    debug() {},
    info() {},
    warn() {},
    error: (_f: object, m?: string) => errors.push(String(m)),
  };
  return createNftablesAction('nftables', config, { logger, clock, baseDir: null }, { exec: nft.exec });
}

describe('nftables action (nft faked)', () => {
  it('applies 10,000 bans in one nft call, and restores with a flush in the same script', async () => {
    const nft = fakeNft();
    const a = action(nft);
    await a.start();
    nft.calls.length = 0;
    const wave = Array.from({ length: 10_000 }, (_, i) => ban(`10.0.${i >> 8}.${i & 255}`));
    await a.apply(wave);
    expect(nft.calls).toHaveLength(1);
    expect(nft.calls[0]?.args).toEqual(['-f', '-']);
    await a.restore(wave.slice(0, 2));
    expect(nft.calls[1]?.input.split('\n').slice(0, 2)).toEqual([
      'flush set inet portcullis nftables_v4',
      'flush set inet portcullis nftables_v6',
    ]);
  });

  it('creates the set of a new prefix length with the batch that needs it, and keeps those it finds at start', async () => {
    const listing = JSON.stringify({
      nftables: [{ table: {} }, { set: { name: 'nftables_v6_64' } }, { set: { name: 'other_v4_8' } }],
    });
    const nft = fakeNft(listing);
    const a = action(nft);
    await a.start();
    expect(nft.calls[1]?.input).toContain('add set inet portcullis nftables_v6_64');
    expect(nft.calls[1]?.input).not.toContain('other_v4_8');
    await a.apply([ban('10.0.0.0/8')]);
    expect(nft.calls[2]?.input).toContain(
      'add set inet portcullis nftables_v4_8 { type ipv4_addr; flags interval, timeout; }',
    );
    // A revert of a network whose set never existed has nothing to remove.
    await a.revert([ban('172.16.0.0/12')]);
    expect(nft.calls).toHaveLength(3);
  });

  it('logs and drops hostile targets; the rest of the batch is applied', async () => {
    const nft = fakeNft();
    const errors: string[] = [];
    const a = action(nft, errors);
    await a.apply([
      ban('1.2.3.4; rm -rf /'),
      ban('1.2.3.4\n add element inet portcullis x { 0.0.0.0/0 }'),
      ban('192.0.2.1'),
    ]);
    expect(errors).toEqual([expect.stringContaining('2 target(s) refused')]);
    expect(nft.calls[0]?.input).not.toMatch(/rm -rf|0\.0\.0\.0|1\.2\.3\.4/);
    expect(nft.calls[0]?.input).toContain('192.0.2.1');
  });

  it('check re-creates a flushed ruleset and says false', async () => {
    const nft = fakeNft();
    const a = action(nft);
    await a.start();
    nft.listing = null;
    expect(await a.check()).toBe(false);
    nft.listing = JSON.stringify({
      nftables: [
        { table: {} },
        { set: { name: 'nftables_v4' } },
        { set: { name: 'nftables_v6' } },
        { chain: { name: 'nftables_input' } },
        { rule: { chain: 'nftables_input' } },
        { rule: { chain: 'nftables_input' } },
      ],
    });
    expect(await a.check()).toBe(true);
  });
});

describe('routing bans to actions by jail', () => {
  const spec = (name: string, firewall = true): ActionSpec => ({
    name,
    kind: 'nftables',
    options: {},
    firewall,
  });
  const ssh = spec('ssh-fw');
  const web = spec('nftables');
  const jails = [
    { name: 'sshd', actions: [ssh] },
    { name: 'web', actions: [web] },
  ];

  it('a jail ban goes to its jail actions only; manual bans to every firewall action', () => {
    expect(['sshd', 'web', 'manual'].map(acceptsFor(ssh, jails))).toEqual([true, false, true]);
    expect(['sshd', 'web', 'manual'].map(acceptsFor(web, jails))).toEqual([false, true, true]);
  });

  it('manual bans reach a notification listed in defaults.actions, not one only a jail lists', () => {
    const config = resolveConfig(
      {
        defaults: { actions: [{ webhook: { url: 'http://127.0.0.1:9/hook' } }] },
        jails: {
          sshd: { source: 'api' },
          web: { source: 'api', actions: [{ webhook: { url: 'http://127.0.0.1:9/other' } }] },
        },
      },
      { env: {} },
    );
    const [fromDefaults, fromJail] = config.actions ?? [];
    const route = (spec: typeof fromDefaults) =>
      ['sshd', 'web', 'manual'].map(
        acceptsFor(spec as NonNullable<typeof spec>, config.jails, config.defaultActions),
      );
    expect(route(fromDefaults)).toEqual([true, false, true]);
    expect(route(fromJail)).toEqual([false, true, false]);
  });

  it('the runner applies by jail and reverts what it applied, whichever jail the end names', async () => {
    const a = recordingAction('ssh-fw');
    const b = recordingAction('nftables');
    const runner = new ActionRunner(
      [
        { action: a, accepts: acceptsFor(ssh, jails) },
        { action: b, accepts: acceptsFor(web, jails) },
      ],
      { clock },
    );
    let listener: DecisionListener | undefined;
    await runner.start({
      subscribe: (l) => {
        listener = l;
        return () => {};
      },
    });
    listener?.ban?.(ban('192.0.2.1', 'sshd'), 'local');
    listener?.ban?.(ban('192.0.2.2', 'web'), 'local');
    await runner.idle();
    expect([...a.held]).toEqual(['192.0.2.1']);
    expect([...b.held]).toEqual(['192.0.2.2']);
    listener?.unban?.({ target: '192.0.2.1', jail: 'other', reason: 'unban' });
    await runner.idle();
    expect([...a.held]).toEqual([]);
    expect(b.calls.filter((c) => c.op === 'revert')).toEqual([]);
    await runner.close();
  });
});
