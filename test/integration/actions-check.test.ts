import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pc-actions-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, ['store: { memory: true }', ...lines, ''].join('\n'));
  return file;
}

const SECRET_URL = 'https://hooks.slack.com/services/T000/B000/very-secret-token';

describe('portcullis actions check', () => {
  it('prints what each action creates and exits 0 when every program, permission and secret is there', async () => {
    const file = config('fine.yaml', [
      'actions:',
      '  hook: { webhook: { url_env: PC_CHECK_HOOK, format: slack } }',
      'jails:',
      '  sshd:',
      `    actions: [{ hostsdeny: { file: ./hosts.deny, daemon: sshd } }, nginx-deny, mail-ops, hook]`,
    ]);
    const result = await runCli(['actions', 'check', '-c', file], { PC_CHECK_HOOK: SECRET_URL });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(
      `creates: lines "sshd: ADDRESS" in a marked block of ${join(dir, 'hosts.deny')}`,
    );
    expect(result.stdout).toContain('creates: geo include file /etc/nginx/portcullis-banned.conf');
    expect(result.stdout).toContain('needs nginx: ok');
    expect(result.stdout).toContain('creates: e-mail to root@localhost');
    expect(result.stdout).toContain('needs $PC_CHECK_HOOK: ok (set)');
    expect(result.stdout).toContain('4 action(s), all requirements met');
    // The webhook URL is a secret: never printed.
    expect(result.stdout).not.toContain('very-secret-token');
    expect(result.status).toBe(0);
  });

  it('exits 1 naming what is missing: a program, a secret, a writable directory', async () => {
    const file = config('missing.yaml', [
      'actions:',
      '  hook: { webhook: { url_env: PC_CHECK_UNSET, format: slack } }',
      'jails:',
      '  sshd:',
      '    actions:',
      '      - { command: { ban: [/bin/true, "<ip>"], unban: [pc-no-such-program, "<ip>"] } }',
      '      - hook',
      `      - { nginx: { file: ${join(dir, 'no', 'such', 'dir', 'banned.conf')} } }`,
    ]);
    const result = await runCli(['actions', 'check', '-c', file], { PC_CHECK_UNSET: '' });
    expect(result.stdout).toContain('FAIL command-sshd (command) for sshd');
    expect(result.stdout).toContain('needs pc-no-such-program: MISSING (not found on PATH)');
    expect(result.stdout).toContain('needs $PC_CHECK_UNSET: MISSING (not set or empty)');
    expect(result.stdout).toMatch(
      /needs write access: MISSING \(.*no\/such\/dir is missing or not writable\)/,
    );
    expect(result.stdout).toContain('3 of 3 action(s) cannot run here');
    expect(result.status).toBe(1);
  });

  it('--json: the firewall kinds list their kernel objects and the CAP_NET_ADMIN check', async () => {
    const file = config('fw.yaml', [
      'defaults:',
      '  actions: [nftables-ssh, { ipset-allports: { chain: docker-user } }, iptables-allports]',
      'jails:',
      '  sshd: {}',
    ]);
    const result = await runCli(['actions', 'check', '-c', file, '--json']);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      actions: { name: string; kind: string; creates: string[]; needs: { what: string; ok: boolean }[] }[];
    };
    expect(report.actions.map((a) => `${a.name}:${a.kind}`)).toEqual([
      'nftables-ssh:nftables',
      'ipset-allports-defaults:ipset',
      'iptables-allports:iptables',
    ]);
    const [nft, ipset, iptables] = report.actions;
    expect(nft?.creates).toContain('nftables table inet portcullis');
    expect(ipset?.creates.join('\n')).toContain('pc-ipset-allports-defaults-v4 (hash:ip family inet)');
    expect(ipset?.creates).toContain('jump to pc-ipset-allports-defaults at the top of DOCKER-USER');
    expect(iptables?.needs.map((n) => n.what)).toEqual([
      'iptables',
      'ip6tables',
      'iptables-restore',
      'ip6tables-restore',
      'CAP_NET_ADMIN',
    ]);
    const root = process.getuid?.() === 0;
    for (const action of report.actions)
      expect(action.needs.find((n) => n.what === 'CAP_NET_ADMIN')?.ok).toBe(root);
    expect(result.status).toBe(report.ok ? 0 : 1);
  });

  it('an invalid configuration exits 2 with the key path', async () => {
    const file = config('bad.yaml', ['jails:', '  sshd: { actions: [{ ipset: { maxelem: 5 } }] }']);
    const result = await runCli(['actions', 'check', '-c', file]);
    expect(result.stderr).toContain(
      'jails.sshd.actions.0.ipset.maxelem: expected at least 1024 entries, got 5',
    );
    expect(result.status).toBe(2);
  });
});
