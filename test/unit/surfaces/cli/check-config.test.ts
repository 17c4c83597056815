import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-check-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const BOMB = [
  'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
  'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
  'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
  'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
  'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
  'f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]',
].join('\n');

describe('check-config', () => {
  it('prints warnings on stderr and still says OK', async () => {
    const file = writeConfig('warn.yaml', 'defaults:\n  ignoreip: [10.1.2.3/8]\njails:\n  sshd: {}\n');
    const result = await runCli(['check-config', '-c', file]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe(`warning: ${file}: defaults.ignoreip.0: 10.1.2.3/8 means 10.0.0.0/8\n`);
    expect(result.stdout).toBe(`${file}: OK (1 jail: sshd; store sqlite; 1 warning)\n`);
  });

  it('says what a log jail will warn of when it starts: a literal path named like a compressed file', async () => {
    const file = writeConfig(
      'gz.yaml',
      [
        'jails:',
        '  sshd:',
        '    source: { log: [auth.log.2.gz, "/var/log/auth.log*"] }',
        '    filter: sshd',
        '  old:',
        '    enabled: false',
        '    source: { log: /var/log/old.log.xz }',
        '    filter: sshd',
      ].join('\n'),
    );
    const result = await runCli(['check-config', '-c', file]);
    expect(result.status).toBe(0);
    // Relative to the configuration file, as the jail reads it; a glob leaves such names out.
    expect(result.stderr).toBe(
      `warning: jail sshd: ${join(dir, 'auth.log.2.gz')} is named like a compressed file; its bytes are read as lines as they are (no decompression)\n`,
    );
    expect(result.stdout).toBe(`${file}: OK (1 jail: sshd; store sqlite; 1 warning)\n`);
  });

  it('refuses a billion-laughs file in one line, exit 2, for check-config and run alike', async () => {
    const file = writeConfig('bomb.yaml', BOMB);
    const expected = `${file}:2:8: invalid YAML: too many alias expansions (more than 100: aliases of aliases multiply); write the values out\n`;
    for (const command of ['check-config', 'run']) {
      const result = await runCli([command, '-c', file]);
      expect(result.status).toBe(2);
      expect(result.stderr).toBe(expected);
    }
  });

  it('refuses what run would refuse, printing each problem once', async () => {
    const file = writeConfig(
      'proxy.yaml',
      'proxy:\n  listen: "256.0.0.1:8080"\n  target: http://127.0.0.1:3000\n  timeouts: { header: 0 }\n',
    );
    for (const command of ['check-config', 'run']) {
      const result = await runCli([command, '-c', file]);
      expect(result.status).toBe(2);
      expect(result.stderr).toBe(
        `${file}: proxy.listen: expected an address like "0.0.0.0:8080", "[::]:8080" or ":8080" (an IP address or host name, and a port from 0 to 65535), got "256.0.0.1:8080"\n` +
          `${file}: proxy.timeouts.header: expected a duration longer than 0, got 0\n`,
      );
    }
  });
});
