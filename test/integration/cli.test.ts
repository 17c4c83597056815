import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('portcullis check-config', () => {
  it('accepts a valid file', async () => {
    const file = writeConfig('ok.yaml', 'jails:\n  sshd: { maxretry: 3 }\n  web: {}\n');
    const result = await runCli(['check-config', '-c', file]);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(`${file}: OK (2 jails: sshd, web; store sqlite)\n`);
  });

  it('names the file, key path and bad value, and exits 2', async () => {
    const file = writeConfig('bad.yaml', 'jails:\n  sshd:\n    findtime: 10 minutes\n    maxretries: 3\n');
    const result = await runCli(['check-config', '-c', file]);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      `${file}: jails.sshd.findtime: expected a duration like "10m", got "10 minutes"\n` +
        `${file}: jails.sshd.maxretries: unknown setting (did you mean "maxretry"?)\n`,
    );
  });

  it('exits 2 for a missing file', async () => {
    const result = await runCli(['check-config', '-c', join(dir, 'absent.yaml')]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('absent.yaml: cannot read the configuration: no such file');
  });
});

describe('portcullis run', () => {
  it('starts, reloads on SIGHUP (keeping the old config when the new one is bad), stops on SIGTERM', async () => {
    const file = writeConfig('run.yaml', `store: { sqlite: ${join(dir, 'run.db')} }\njails:\n  sshd: {}\n`);
    const run = startCli(['run', '-c', file]);
    await run.waitFor('portcullis started: 1 jail, 0 bans enforced');

    writeFileSync(file, `store: { sqlite: ${join(dir, 'run.db')} }\njails:\n  sshd: {}\n  web: {}\n`);
    run.child.kill('SIGHUP');
    await run.waitFor('"jails":2,"msg":"configuration reloaded"');

    writeFileSync(file, 'jails:\n  sshd: { bantime: soon }\n');
    run.child.kill('SIGHUP');
    await run.waitFor('configuration NOT reloaded; keeping the running one');
    expect(run.output()).toContain('jails.sshd.bantime: expected a duration like \\"10m\\", got \\"soon\\"');

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('"msg":"stopped"');
  });

  it('exits 2 on an invalid config and 1 when the store cannot be opened', async () => {
    const bad = await runCli([
      'run',
      '-c',
      writeConfig('bad-run.yaml', 'jails: { sshd: { maxretry: -1 } }\n'),
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      'jails.sshd.maxretry: expected a whole number of failures, at least 1, got -1',
    );
    const noDir = await runCli([
      'run',
      '-c',
      writeConfig('nodir.yaml', `store: { sqlite: ${join(dir, 'missing/x.db')} }\n`),
    ]);
    expect(noDir.status).toBe(1);
    expect(noDir.stderr).toContain('PC_ERR_STORE_UNAVAILABLE');
    expect(noDir.stderr).toContain('missing/x.db');
  });
});

describe('portcullis ban / unban / decisions', () => {
  it('manages decisions in the configured store', async () => {
    const file = writeConfig('manage.yaml', `store: { sqlite: ${join(dir, 'manage.db')} }\n`);
    const ban = await runCli(['ban', '203.0.113.0/24', '-d', '2h', '-r', 'abuse report', '-c', file]);
    expect(ban.status).toBe(0);
    expect(ban.stdout).toMatch(/^banned 203\.0\.113\.0\/24 until \d{4}-\d\d-\d\dT/);
    expect((await runCli(['ban', '2001:db8::1', '-d', '-1', '-c', file])).stdout).toBe(
      'banned 2001:db8::1 permanently\n',
    );

    const list = await runCli(['decisions', '-c', file]);
    expect(list.stdout).toContain('203.0.113.0/24\tmanual\t1h59m');
    expect(list.stdout).toContain('abuse report');
    expect(list.stdout).toContain('2001:db8::1\tmanual\tpermanent');

    expect((await runCli(['unban', '203.0.113.0/24', '-c', file])).stdout).toBe('unbanned 203.0.113.0/24\n');
    const again = await runCli(['unban', '203.0.113.0/24', '-c', file]);
    expect(again.status).toBe(1);
    const json = await runCli(['decisions', '--json', '-c', file]);
    expect(
      json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).target),
    ).toEqual(['2001:db8::1']);

    const garbage = await runCli(['ban', 'not-an-ip', '-c', file]);
    expect(garbage.status).toBe(1);
    expect(garbage.stderr).toContain('PC_ERR_INVALID_IP: not an IP address or CIDR range: "not-an-ip"');
  });
});
