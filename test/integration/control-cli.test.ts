import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pc-ctl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const log = join(dir, 'auth.log');
const socket = join(dir, 'pc.sock');
const file = join(dir, 'portcullis.yaml');

function configText(extra = ''): string {
  return [
    `store: { sqlite: ${join(dir, 'pc.db')} }`,
    `control: { socket: ${socket} }`,
    'jails:',
    '  sshd:',
    `    source: { log: ${log} }`,
    '    filter: { failregex: ["^fail <HOST>$"] }',
    '    maxretry: 3',
    '    ignoreself: false',
    extra,
    '',
  ].join('\n');
}

const cli = (...args: string[]) => runCli([...args, '-c', file]);
const json = async (...args: string[]) => {
  const result = await cli(...args, '--json');
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout);
};

/** One raw exchange on the control socket: what the daemon answers to `payload`. */
function raw(payload: string | Buffer): Promise<{ lines: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let text = '';
    let closed = false;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ lines: text.split('\n').filter(Boolean), closed });
    }, 1500);
    s.on('data', (chunk) => {
      text += chunk.toString();
    });
    s.on('end', () => {
      closed = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ lines: text.split('\n').filter(Boolean), closed });
    });
    s.on('error', reject);
    s.write(payload);
  });
}

describe('portcullis status / ban / unban / banned / reload / stop against a running daemon', () => {
  let daemon: ReturnType<typeof startCli>;

  beforeAll(async () => {
    writeFileSync(log, '');
    writeFileSync(file, configText());
    daemon = startCli(['run', '-c', file]);
    await daemon.waitFor(`control socket ${socket}`);
  });

  afterAll(async () => {
    if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    await daemon.exited;
  });

  it('opens the control socket with mode 0600', () => {
    const stat = statSync(socket);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
  });

  it('logs each counted failure and the ban, and status shows the four numbers', async () => {
    appendFileSync(log, 'fail 192.0.2.9\nfail 192.0.2.9\n');
    await daemon.waitFor('"msg":"sshd: found 192.0.2.9 (2/3)"');
    const before = await json('status');
    expect(before.jails).toEqual([
      expect.objectContaining({
        name: 'sshd',
        source: 'log',
        currentlyFailed: 1,
        totalFailed: 2,
        currentlyBanned: 0,
        totalBanned: 0,
        maxretry: 3,
      }),
    ]);
    expect(before.store).toEqual({ kind: 'sqlite', available: true, pendingWrites: 0 });

    appendFileSync(log, 'fail 192.0.2.9\n');
    await daemon.waitFor('"msg":"sshd: ban 192.0.2.9 for 10m (3 failures within 10m)"');
    const after = await json('status');
    expect(after.jails[0]).toMatchObject({
      currentlyFailed: 0,
      totalFailed: 3,
      currentlyBanned: 1,
      totalBanned: 1,
    });
    expect(after.activeBans).toBe(1);
    expect(Object.keys(after.sources)).toContain('log');

    const human = await cli('status');
    expect(human.status).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^portcullis \d+\.\d+\.\d+, pid \d+, up \d+s, store sqlite \(up\), 1 ban enforced$/,
    );
    const header = lines.find((line) => line.startsWith('JAIL'));
    expect(header).toMatch(
      /^JAIL +SOURCE +FAILED NOW +FAILED TOTAL +BANNED NOW +BANNED TOTAL +MAXRETRY +FINDTIME +BANTIME$/,
    );
    expect(lines).toContainEqual(expect.stringMatching(/^sshd +log +0 +3 +1 +1 +3 +10m +10m$/));
  }, 90_000);

  it('status JAIL lists the files watched and the bans, with relative times', async () => {
    const report = await json('status', 'sshd');
    expect(report.watching).toEqual([log]);
    expect(report.bans.map((d: { target: string }) => d.target)).toEqual(['192.0.2.9']);

    const human = await cli('status', 'sshd');
    expect(human.stdout).toContain(`watching: ${log}`);
    expect(human.stdout).toContain('currently banned: 1   total banned: 1');
    expect(human.stdout).toMatch(/^TARGET +ENDS +STARTED +REASON$/m);
    expect(human.stdout).toMatch(/^192\.0\.2\.9 +in 9m\d+s +\d+s ago +3 failures within 10m$/m);

    const unknown = await cli('status', 'nope');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('PC_ERR_UNKNOWN_JAIL: no jail named "nope"');
  }, 90_000);

  it('bans and unbans through the daemon, per jail, and answers banned', async () => {
    const decision = await json('ban', '203.0.113.5', '--jail', 'sshd', '--bantime', '2h');
    expect(decision).toMatchObject({ target: '203.0.113.5', jail: 'sshd', dryRun: false });
    expect(decision.expiresAt - decision.startedAt).toBe(2 * 3_600_000);
    // Enforced by the daemon itself, not only written to the store.
    expect((await json('status')).jails[0].currentlyBanned).toBe(2);

    const banned = await json('banned', '203.0.113.5');
    expect(banned).toMatchObject({ ip: '203.0.113.5', banned: true });
    expect(banned.decisions.map((d: { jail: string }) => d.jail)).toEqual(['sshd']);
    const human = await cli('ban', '198.51.100.7', '--bantime', '30m');
    expect(human.stdout).toMatch(
      /^banned 198\.51\.100\.7 until \d{4}-\d\d-\d\dT[\d:.]+Z \(in (?:29m\d+s|30m)\)\n$/,
    );

    const list = await cli('banned');
    expect(list.stdout).toMatch(/^TARGET +JAIL +ENDS +STARTED +REASON$/m);
    expect(list.stdout).toMatch(/^203\.0\.113\.5 +sshd +in 1h59m +\d+s ago +banned from the command line$/m);
    expect(list.stdout).toMatch(/^198\.51\.100\.7 +manual +in 29m\d+s/m);
    expect((await json('banned', '--jail', 'manual')).map((d: { target: string }) => d.target)).toEqual([
      '198.51.100.7',
    ]);

    // Another jail's unban does not lift sshd's ban.
    const wrongJail = await cli('unban', '203.0.113.5', '--jail', 'manual');
    expect(wrongJail.status).toBe(1);
    expect(wrongJail.stdout).toBe('203.0.113.5 was not banned by jail manual\n');
    const unknownJail = await cli('unban', '203.0.113.5', '--jail', 'sshdd');
    expect(unknownJail.stderr).toContain('PC_ERR_UNKNOWN_JAIL');
    expect(await json('unban', '203.0.113.5', '--jail', 'sshd')).toEqual({
      target: '203.0.113.5',
      lifted: 1,
    });
    expect((await cli('banned', '203.0.113.5')).stdout).toBe('203.0.113.5 is not banned\n');
    await daemon.waitFor('"msg":"sshd: unban 203.0.113.5 (unban)"');

    expect(await json('unban', '--all', '--jail', 'sshd')).toEqual({ lifted: 1 });
    expect((await cli('unban', '--all')).stdout).toBe('unbanned 1 ban\n');
    expect((await cli('banned')).stdout).toBe('no bans\n');
    expect(await json('banned')).toEqual([]);
    expect((await json('status')).jails[0]).toMatchObject({ currentlyBanned: 0, totalBanned: 2 });
  }, 120_000);

  it('reload re-reads the file, says it reloads every jail, and refuses a bad file', async () => {
    writeFileSync(file, configText('  web: { source: http }'));
    const answer = await json('reload', 'sshd');
    expect(answer).toEqual({ scope: 'all', requested: 'sshd', jails: ['sshd', 'web'] });
    expect((await json('status')).jails.map((j: { name: string }) => j.name)).toEqual(['sshd', 'web']);

    writeFileSync(file, configText('  web: { bantime: soon }'));
    const refused = await cli('reload');
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('configuration NOT reloaded (the running one is kept)');
    expect(refused.stderr).toContain('jails.web.bantime: expected a duration like "10m", got "soon"');
    writeFileSync(file, configText());
    expect((await json('reload')).jails).toEqual(['sshd']);
  }, 90_000);

  it('answers a request that is not JSON or too large with an error and keeps serving', async () => {
    const garbage = await raw('hello\n{"op":"ping"}\n');
    expect(JSON.parse(garbage.lines[0] as string)).toMatchObject({
      ok: false,
      error: { code: 'PC_ERR_CONTROL_REQUEST', message: expect.stringContaining('not JSON') },
    });
    expect(JSON.parse(garbage.lines[1] as string)).toMatchObject({ ok: true, result: { pong: true } });

    const unknown = await raw(
      '{"id":7,"op":"rm -rf","args":{}}\n{"id":8,"op":"ban","args":{"target":"x","bantimeMs":"1h"}}\n',
    );
    expect(JSON.parse(unknown.lines[0] as string)).toMatchObject({
      id: 7,
      ok: false,
      error: { code: 'PC_ERR_CONTROL_REQUEST' },
    });
    expect(JSON.parse(unknown.lines[1] as string).error.message).toContain('ban: args.bantimeMs');

    const huge = await raw(Buffer.alloc(80 * 1024, 'a'));
    expect(huge.closed).toBe(true);
    expect(JSON.parse(huge.lines[0] as string).error.message).toContain('request larger than 65536 bytes');
    expect((await json('ping')).pong).toBe(true);
  }, 90_000);

  it('stop ends the daemon, removes the socket; then commands say no daemon runs (exit 3)', async () => {
    const stopped = await json('stop');
    expect(stopped.stopped).toBe(true);
    expect(await daemon.exited).toBe(0);
    expect(daemon.output()).toContain('"msg":"stopped"');
    expect(existsSync(socket)).toBe(false);

    const status = await cli('status');
    expect(status.status).toBe(3);
    expect(status.stderr).toBe(
      `portcullis: no portcullis daemon at ${socket}: is \`portcullis run\` running?\n`,
    );
    for (const args of [['ping'], ['banned'], ['reload'], ['stop'], ['status', 'sshd']]) {
      const result = await runCli([...args, '--socket', join(dir, 'absent.sock')]);
      expect(result.status, args.join(' ')).toBe(3);
      expect(result.stderr).toContain('no portcullis daemon at');
    }
    // ban / unban without a daemon work on the configured store, as they always did.
    expect((await cli('ban', '192.0.2.50', '--bantime', '1h')).stdout).toMatch(
      /^banned 192\.0\.2\.50 until /,
    );
    expect((await cli('unban', '192.0.2.50')).stdout).toBe('unbanned 192.0.2.50\n');
    // ... unless the socket was named: then the daemon was meant.
    const named = await runCli(['ban', '192.0.2.51', '--socket', socket, '-c', file]);
    expect(named.status).toBe(3);
  }, 90_000);
});

describe('portcullis run: the control socket across a crash', () => {
  it('a stale socket left by kill -9 does not block the restart', async () => {
    writeFileSync(log, '');
    writeFileSync(file, configText());
    const first = startCli(['run', '-c', file]);
    await first.waitFor(`control socket ${socket}`);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(statSync(socket).isSocket()).toBe(true);

    const second = startCli(['run', '-c', file]);
    try {
      await second.waitFor(`control socket ${socket}`);
      expect(second.output()).toContain(`removing the stale control socket ${socket}`);
      const pong = JSON.parse((await cli('ping', '--json')).stdout);
      expect(pong.pid).toBe(second.child.pid);

      // A live daemon's socket is never taken over: a second daemon with the same explicit path fails.
      const third = await runCli(['run', '-c', file]);
      expect(third.status).toBe(1);
      expect(third.stderr).toContain(`PC_ERR_CONTROL_SOCKET: another portcullis daemon answers on ${socket}`);
      expect(JSON.parse((await cli('ping', '--json')).stdout).pid).toBe(second.child.pid);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
    expect(existsSync(socket)).toBe(false);
    expect(readFileSync(file, 'utf8')).toContain('control:');
  }, 90_000);
});
