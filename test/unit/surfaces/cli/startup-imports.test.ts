import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Start-up is part of every CLI call (`portcullis test` is raced against fail2ban-regex, 3-line
// file included): what a command's modules import at load time, every call pays. This follows
// the static imports (not `import type`, not `import()`, not lazyRequire) from each entry point
// and names what must not be among them.

const SRC = resolve(import.meta.dirname, '../../../../src');
const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g;

/** Local files (relative to src/) and packages loaded by importing `entries`. */
function loadedBy(entries: readonly string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(resolve(SRC, file), 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      if (match[2] !== undefined) continue; // import type: erased
      const spec = match[3] as string;
      if (spec.startsWith('.')) {
        const target = relative(SRC, resolve(dirname(resolve(SRC, file)), spec)).replace(/\.js$/, '.ts');
        expect(existsSync(resolve(SRC, target)), `${file} imports ${spec}`).toBe(true);
        visit(target);
      } else if (!spec.startsWith('node:')) {
        packages.add(
          spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string),
        );
      }
    }
  };
  for (const entry of entries) visit(entry);
  return { files, packages };
}

/** Packages only the daemon, the config loader or an action needs. */
const HEAVY_PACKAGES = [
  'zod',
  'yaml',
  'ipaddr.js',
  'pino',
  'ioredis',
  'express',
  'better-sqlite3',
  'prom-client',
  'nodemailer',
  'rate-limiter-flexible',
  'http-proxy-3',
  'ws',
];
const HEAVY_FILES = ['guard.ts', 'config/load.ts', 'config/schema.ts', 'surfaces/cli/run.ts'];

function heavy(entries: readonly string[]): string[] {
  const { files, packages } = loadedBy(entries);
  return [
    ...HEAVY_PACKAGES.filter((name) => packages.has(name)),
    ...HEAVY_FILES.filter((file) => files.has(file)),
  ];
}

describe('CLI start-up imports', () => {
  it('`portcullis test` loads no schema library, YAML parser, store or daemon module', () => {
    expect(heavy(['surfaces/cli/main.ts', 'surfaces/cli/test-command.ts'])).toEqual([]);
  });

  it('`portcullis --help` (every command registered) loads none of them either', () => {
    expect(
      heavy(['surfaces/cli/main.ts', 'surfaces/cli/control-commands.ts', 'surfaces/cli/test-command.ts']),
    ).toEqual([]);
  });

  it('`portcullis run --help` loads only core modules besides main.ts', () => {
    const { files, packages } = loadedBy(['surfaces/cli/main.ts']);
    expect([...files].filter((file) => file !== 'surfaces/cli/main.ts' && !file.startsWith('core/'))).toEqual(
      [],
    );
    expect([...packages]).toEqual([]);
  });

  it('the log filter loader leaves yaml and zod to a filter that needs them', () => {
    const { packages } = loadedBy(['detection/filters/regex/filter-definition.ts']);
    expect(packages.has('yaml')).toBe(false);
    expect(packages.has('zod')).toBe(false);
  });

  it('follows imports (the check would see a heavy import)', () => {
    const { files, packages } = loadedBy(['surfaces/cli/control-commands.ts', 'config/load.ts']);
    expect(files.has('surfaces/cli/human.ts')).toBe(true);
    expect(packages.has('zod')).toBe(true);
    expect(packages.has('yaml')).toBe(true);
  });
});
