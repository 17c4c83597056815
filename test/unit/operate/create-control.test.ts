import { afterEach, describe, expect, it } from 'vitest';
import type { PortcullisOptions } from '../../../src/config/schema.js';
import { createManualClock, type ManualClock } from '../../../src/core/clock.js';
import { createGuard, type Guard } from '../../../src/guard.js';
import type { ControlEvent } from '../../../src/operate/control.js';
import { createControl, type OperatedControl } from '../../../src/operate/create-control.js';
import { MemoryStore } from '../../../src/stores/memory/memory-store.js';

const MIN = 60_000;
let open: { guard: Guard; control: OperatedControl }[] = [];

afterEach(async () => {
  for (const { guard, control } of open) {
    control.close();
    await guard.close();
  }
  open = [];
});

const config: PortcullisOptions = {
  jails: {
    sshd: { maxretry: 3, findtime: '10m', bantime: '1h', ignoreip: [], ignoreself: false },
    web: { source: 'http', maxretry: 2, findtime: '1m', bantime: '5m', ignoreip: [], ignoreself: false },
  },
};

async function setup(clock: ManualClock = createManualClock()) {
  const guard = await createGuard(config, { clock, store: new MemoryStore(), env: {}, random: () => 0.5 });
  const calls = { reload: 0, stop: 0 };
  let reloadOutcome: { ok: true } | { ok: false; error: string } = { ok: true };
  const control = createControl({
    guard,
    sourceStats: () => ({ log: { lines: 3 } }),
    actionStats: () => ({ nftables: { applied: 1 } }),
    reload: async () => {
      calls.reload++;
      return reloadOutcome;
    },
    stop: async () => {
      calls.stop++;
    },
    version: '9.9.9',
    startedAt: clock.now(),
  });
  open.push({ guard, control });
  return {
    guard,
    control,
    clock,
    calls,
    failReload: (error: string) => {
      reloadOutcome = { ok: false, error };
    },
  };
}

describe('createControl: status', () => {
  it("counts fail2ban's four numbers per jail from the guard's reports and bans", async () => {
    const { guard, control, clock } = await setup();
    await guard.report('192.0.2.1', { jail: 'sshd' });
    await guard.report('192.0.2.2', { jail: 'sshd' });
    await guard.report('192.0.2.2', { jail: 'sshd' });
    let sshd = control.status().jails.find((j) => j.name === 'sshd');
    expect(sshd).toMatchObject({ currentlyFailed: 2, totalFailed: 3, currentlyBanned: 0, totalBanned: 0 });

    // The third failure bans 192.0.2.2: it is banned now, no longer "currently failed".
    expect((await guard.report('192.0.2.2', { jail: 'sshd' })).outcome).toBe('banned');
    sshd = control.status().jails.find((j) => j.name === 'sshd');
    expect(sshd).toMatchObject({ currentlyFailed: 1, totalFailed: 4, currentlyBanned: 1, totalBanned: 1 });

    // Past findtime, 192.0.2.1's failure is no longer current; past bantime the ban has ended.
    clock.advance(61 * MIN);
    guard.tick();
    sshd = control.status().jails.find((j) => j.name === 'sshd');
    expect(sshd).toMatchObject({ currentlyFailed: 0, totalFailed: 4, currentlyBanned: 0, totalBanned: 1 });
    expect(control.status().jails.find((j) => j.name === 'web')).toMatchObject({
      source: 'http',
      totalFailed: 0,
      maxretry: 2,
      findtimeMs: MIN,
      bantimeMs: 5 * MIN,
    });
  });

  it('reports store, sources, actions, version, uptime and ignores clients not counted', async () => {
    const { guard, control, clock } = await setup();
    await guard.report('not-an-ip', { jail: 'sshd' });
    clock.advance(5000);
    const status = control.status();
    expect(status).toMatchObject({
      version: '9.9.9',
      pid: process.pid,
      instanceId: guard.instanceId,
      uptimeMs: 5000,
      store: { kind: 'memory', available: true, pendingWrites: 0 },
      sources: { log: { lines: 3 } },
      actions: { nftables: { applied: 1 } },
      activeBans: 0,
    });
    expect(status.jails.find((j) => j.name === 'sshd')?.totalFailed).toBe(0);
    expect(JSON.parse(JSON.stringify(status))).toEqual(status);
  });

  it('counts bans made by hand under their jail, and the one a jail reload moved', async () => {
    const { control } = await setup();
    await control.ban('198.51.100.0/24', { jail: 'web' });
    await control.ban('198.51.100.9', {});
    const web = control.status().jails.find((j) => j.name === 'web');
    expect(web).toMatchObject({ currentlyBanned: 1, totalBanned: 1 });
    expect(control.status().activeBans).toBe(2);
    // Banned again under another jail: it moves over, it is not counted twice as "now".
    await control.ban('198.51.100.0/24', { jail: 'sshd', bantimeMs: 2 * 3_600_000 });
    const jails = control.status().jails;
    expect(jails.find((j) => j.name === 'web')?.currentlyBanned).toBe(0);
    expect(jails.find((j) => j.name === 'sshd')?.currentlyBanned).toBe(1);
  });
});

describe('createControl: decisions, ban, unban', () => {
  it('jail() names the TCP listener or packet watcher a socket jail watches', async () => {
    const guard = await createGuard(
      {
        tcp: { ssh: { listen: '127.0.0.1:2222', target: '127.0.0.1:22' } },
        packets: { edge: { interface: 'eth9', filter: 'tcp', local: ['192.0.2.1'] } },
        jails: {
          'ssh-flood': { source: { socket: 'ssh' }, filter: 'conn-flood' },
          scan: { source: { packets: 'edge' }, filter: 'port-scan' },
        },
      },
      { store: new MemoryStore(), env: {} },
    );
    const control = createControl({
      guard,
      sourceStats: () => ({}),
      actionStats: () => ({}),
      reload: async () => ({ ok: true }),
      stop: async () => {},
      version: '9.9.9',
      startedAt: 0,
    });
    open.push({ guard, control });
    expect((await control.jail('ssh-flood')).watching).toEqual(['tcp:ssh 127.0.0.1:2222 -> 127.0.0.1:22']);
    expect((await control.jail('scan')).watching).toEqual(['packets:edge on eth9 (tcp)']);
  });

  it('jail() lists the bans of the jail and what it watches; an unknown jail is an error', async () => {
    const { control } = await setup();
    await control.ban('203.0.113.7', { jail: 'sshd', reason: 'test' });
    await control.ban('203.0.113.8', {});
    const report = await control.jail('sshd');
    expect(report.bans.map((d) => d.target)).toEqual(['203.0.113.7']);
    expect(report.watching).toEqual(['report() calls']);
    expect((await control.jail('web')).watching).toEqual([
      'report() / Express middleware (no proxy: section)',
    ]);
    await expect(control.jail('nope')).rejects.toMatchObject({ code: 'PC_ERR_UNKNOWN_JAIL' });
    await expect(control.ban('203.0.113.9', { jail: 'nope' })).rejects.toMatchObject({
      code: 'PC_ERR_UNKNOWN_JAIL',
    });
  });

  it('banned(ip) finds the range that covers an address; decisions filter by jail, ip and limit', async () => {
    const { control, clock } = await setup();
    await control.ban('10.0.0.0/8', { jail: 'sshd' });
    clock.advance(1000);
    await control.ban('10.1.2.3', { jail: 'web' });
    clock.advance(1000);
    await control.ban('2001:db8::/64', {});
    const answer = await control.banned('10.1.2.3');
    expect(answer.banned).toBe(true);
    expect(answer.decisions.map((d) => d.target).sort()).toEqual(['10.0.0.0/8', '10.1.2.3']);
    expect((await control.banned('2001:db8::5')).decisions.map((d) => d.target)).toEqual(['2001:db8::/64']);
    expect(await control.banned('192.0.2.1')).toEqual({ ip: '192.0.2.1', banned: false, decisions: [] });
    await expect(control.banned('10.0.0.0/8')).rejects.toMatchObject({ code: 'PC_ERR_INVALID_IP' });

    // Newest first.
    expect((await control.decisions()).map((d) => d.target)).toEqual([
      '2001:db8::/64',
      '10.1.2.3',
      '10.0.0.0/8',
    ]);
    expect((await control.decisions({ jail: 'sshd' })).map((d) => d.target)).toEqual(['10.0.0.0/8']);
    expect((await control.decisions({ ip: '10.9.9.9' })).map((d) => d.target)).toEqual(['10.0.0.0/8']);
    expect(await control.decisions({ limit: 1 })).toHaveLength(1);
  });

  it("unban with a jail lifts only that jail's ban; unbanAll lifts every ban or one jail's", async () => {
    const { guard, control } = await setup();
    await control.ban('192.0.2.10', { jail: 'sshd' });
    await control.ban('192.0.2.11', { jail: 'web' });
    await control.ban('192.0.2.12', {});
    expect(await control.unban('192.0.2.10', { jail: 'web' })).toBe(0);
    expect(guard.isBanned('192.0.2.10')).toBe(true);
    await expect(control.unban('192.0.2.10', { jail: 'nope' })).rejects.toMatchObject({
      code: 'PC_ERR_UNKNOWN_JAIL',
    });
    expect(await control.unban('192.0.2.10', { jail: 'sshd' })).toBe(1);
    expect(guard.isBanned('192.0.2.10')).toBe(false);
    expect(await control.unban('192.0.2.10')).toBe(0);

    expect(await control.unbanAll({ jail: 'manual' })).toBe(1);
    expect(guard.isBanned('192.0.2.12')).toBe(false);
    expect(guard.isBanned('192.0.2.11')).toBe(true);
    await control.ban('192.0.2.13', {});
    expect(await control.unbanAll()).toBe(2);
    expect(guard.stats.activeBans).toBe(0);
    expect(await control.unbanAll()).toBe(0);
  });
});

describe('createControl: reload, stop, events', () => {
  it('reload says it reloaded every jail, rejects a refused file and an unknown jail', async () => {
    const { control, calls, failReload } = await setup();
    expect(await control.reload('sshd')).toEqual({ scope: 'all', requested: 'sshd', jails: ['sshd', 'web'] });
    expect(await control.reload()).toMatchObject({ requested: null });
    await expect(control.reload('nope')).rejects.toMatchObject({ code: 'PC_ERR_UNKNOWN_JAIL' });
    expect(calls.reload).toBe(2);
    failReload('x.yaml: jails.sshd.bantime: expected a duration');
    await expect(control.reload()).rejects.toMatchObject({
      code: 'PC_ERR_CONFIG_INVALID',
      message: expect.stringContaining('NOT reloaded (the running one is kept): x.yaml: jails.sshd.bantime'),
    });
  });

  it('stop resolves at once and stops on the next turn', async () => {
    const { control, calls } = await setup();
    await control.stop();
    expect(calls.stop).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.stop).toBe(1);
  });

  it('the event feed carries failures, bans and unbans; a throwing subscriber harms no one', async () => {
    const { guard, control } = await setup();
    const events: ControlEvent[] = [];
    const off = control.subscribe((event) => events.push(event));
    control.subscribe(() => {
      throw new Error('a broken stream');
    });
    await guard.report('192.0.2.5', { jail: 'web' });
    await guard.report('192.0.2.5', { jail: 'web' });
    await control.unban('192.0.2.5');
    expect(events.map((e) => e.type)).toEqual(['failure', 'ban', 'failure', 'unban']);
    expect(events[0]).toMatchObject({
      type: 'failure',
      jail: 'web',
      ip: '192.0.2.5',
      failures: 1,
      maxretry: 2,
    });
    expect(events[1]).toMatchObject({
      type: 'ban',
      origin: 'local',
      decision: { target: '192.0.2.5', jail: 'web' },
    });
    expect(events[3]).toMatchObject({ type: 'unban', target: '192.0.2.5', jail: 'web', reason: 'unban' });
    off();
    await guard.report('192.0.2.6', { jail: 'web' });
    expect(events).toHaveLength(4);
  });

  it('close() detaches it from the guard', async () => {
    const { guard, control } = await setup();
    control.close();
    await guard.report('192.0.2.7', { jail: 'sshd' });
    expect(control.status().jails.find((j) => j.name === 'sshd')?.totalFailed).toBe(0);
  });
});
