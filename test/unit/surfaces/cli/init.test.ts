import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../../src/config/load.js';
import { runInit, STARTER_CONFIG } from '../../../../src/surfaces/cli/init.js';
import { runCli } from '../../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pc-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('portcullis init', () => {
  it('writes a commented starter config that the real loader accepts as described', () => {
    const file = join(dir, 'portcullis.yaml');
    expect(runInit(file)).toBe('written');
    const config = loadConfigFile(file, { env: {} });
    expect(config.warnings).toEqual([]);
    expect(config.store).toEqual({ kind: 'sqlite', path: join(dir, 'portcullis.db') });
    expect(config.proxy?.targets).toEqual(['http://127.0.0.1:3000']);
    expect(config.proxy?.listen.map((l) => l.address)).toEqual(['0.0.0.0:8080']);
    const sshd = config.jails.find((j) => j.name === 'sshd');
    expect(sshd?.source).toMatchObject({ kind: 'log', paths: ['/var/log/auth.log'] });
    expect(sshd?.actions.map((a) => [a.name, a.kind])).toEqual([['ssh-fw', 'nftables']]);
    expect(config.jails.map((j) => j.name)).toEqual(['scanners', 'web-auth', 'sshd']);
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(STARTER_CONFIG);
    // Commented: every section says what it is for.
    expect(text.split('\n').filter((l) => l.trim().startsWith('#')).length).toBeGreaterThan(20);
  });

  it('refuses to replace an existing file without --force (exit 2), replaces it with --force', async () => {
    const file = join(dir, 'mine.yaml');
    writeFileSync(file, 'jails: { mine: {} }\n');
    const refused = await runCli(['init', file]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toBe(`portcullis: ${file} exists; not replaced (use --force to overwrite it)\n`);
    expect(readFileSync(file, 'utf8')).toBe('jails: { mine: {} }\n');
    const forced = await runCli(['init', file, '--force']);
    expect(forced.status).toBe(0);
    expect(forced.stdout).toContain(`wrote ${file}`);
    expect(readFileSync(file, 'utf8')).toBe(STARTER_CONFIG);
    const checked = await runCli(['check-config', '-c', file]);
    expect(checked.stdout).toBe(`${file}: OK (3 jails: scanners, web-auth, sshd; store sqlite)\n`);
  });
});
