import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pc-pack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm pack', () => {
  it('builds first (prepack), so a checkout without dist/ still packs the CLI; ships no source maps', async () => {
    // A fresh checkout: the sources, no dist/. node_modules is the installed one.
    for (const entry of [
      'package.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'src',
      'rules',
      'schema',
      'scripts',
      'README.md',
      'LICENSE',
    ])
      cpSync(join(root, entry), join(dir, entry), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    expect(existsSync(join(dir, 'dist'))).toBe(false);

    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--loglevel=error'], {
      cwd: dir,
      maxBuffer: 32 * 1024 * 1024,
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    const [pack] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { files: { path: string }[] }[];
    const files = (pack?.files ?? []).map((f) => f.path);
    expect(files).toContain('dist/surfaces/cli/main.js');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('rules/filters/sshd.yaml');
    // The bundled filters parsed at build time: `portcullis test` starts without loading yaml.
    expect(files).toContain('dist/detection/filters/regex/filter-cache/sshd.json');
    expect(files).toContain('schema/portcullis.schema.json');
    expect(files).toContain('LICENSE');
    // Maps would point at src/, which is not shipped: neither is shipped.
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);

    // The packed entry point runs.
    const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version as string;
    const cli = await run(process.execPath, [join(dir, 'dist/surfaces/cli/main.js'), '--version'], {
      cwd: dir,
    });
    expect(cli.stdout.trim()).toBe(version);
    expect(
      readFileSync(join(dir, 'dist/surfaces/cli/main.js'), 'utf8').startsWith('#!/usr/bin/env node\n'),
    ).toBe(true);
  }, 240_000);

  it('the LICENSE is MIT, for the portcullis contributors, 2026', () => {
    const text = readFileSync(join(root, 'LICENSE'), 'utf8');
    expect(text.startsWith('MIT License\n\nCopyright (c) 2026 portcullis contributors\n')).toBe(true);
    expect(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).license).toBe('MIT');
  });
});
