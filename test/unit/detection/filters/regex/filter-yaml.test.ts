import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseFilterYaml } from '../../../../../src/detection/filters/regex/filter-yaml.js';

// The build parses the bundled filters (scripts/write-filter-cache.mjs) so that a CLI call does
// not load the yaml package; the cached value must be exactly what parsing the file gives.

const ROOT = join(import.meta.dirname, '../../../../..');
const RULES = join(ROOT, 'rules/filters');
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'pc-filter-cache-'));
const cache = join(dir, 'cache');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  await run(process.execPath, [join(ROOT, 'scripts/write-filter-cache.mjs'), cache]);
});

describe('the build-time cache of the bundled filters', () => {
  const files = readdirSync(RULES).filter((file) => file.endsWith('.yaml'));

  it('holds every bundled filter, parsed exactly as yaml parses it', () => {
    expect(readdirSync(cache).sort()).toEqual(files.map((file) => file.replace(/\.yaml$/, '.json')).sort());
    for (const file of files) {
      const text = readFileSync(join(RULES, file), 'utf8');
      expect(parseFilterYaml(text, join(RULES, file), cache)).toStrictEqual(
        parse(text, { uniqueKeys: true }),
      );
    }
  });

  it('is used for a file with exactly the cached text, whatever its directory', () => {
    writeFileSync(
      join(cache, 'probe.json'),
      JSON.stringify({ text: 'failregex: a\n', value: { from: 'cache' } }),
    );
    expect(parseFilterYaml('failregex: a\n', '/etc/portcullis/probe.yaml', cache)).toEqual({ from: 'cache' });
  });

  it('is not used once the file differs from the text cached (an edited filter)', () => {
    const text = readFileSync(join(RULES, 'sshd.yaml'), 'utf8');
    const edited = `${text}\n# edited\nedited_key: 7\n`;
    const value = parseFilterYaml(edited, join(RULES, 'sshd.yaml'), cache) as { edited_key?: number };
    expect(value.edited_key).toBe(7);
  });

  it('leaves a file it cannot read as JSON to yaml, errors included', () => {
    writeFileSync(join(cache, 'broken.json'), '{"text": ');
    expect(() => parseFilterYaml('a: 1\na: 2\n', join(dir, 'broken.yaml'), cache)).toThrow(/unique/i);
    expect(parseFilterYaml('failregex: b\n', join(dir, 'broken.yaml'), cache)).toEqual({ failregex: 'b' });
    expect(parseFilterYaml('failregex: c\n', join(dir, 'none.yaml'), join(dir, 'no-such-dir'))).toEqual({
      failregex: 'c',
    });
  });
});

describe('write-filter-cache.mjs', () => {
  it('caches only what a JSON copy gives back exactly and yaml parses without a word', async () => {
    const rules = join(dir, 'rules');
    const out = join(dir, 'out');
    mkdirSync(rules);
    writeFileSync(join(rules, 'plain.yaml'), 'failregex:\n  - "^a <HOST>$"\nmaxlines: 3\n');
    writeFileSync(join(rules, 'dup.yaml'), 'failregex: a\nfailregex: b\n');
    writeFileSync(join(rules, 'inf.yaml'), 'failregex: a\nmaxlines: .inf\n');
    writeFileSync(join(rules, 'warns.yaml'), '%FOO bar\n---\nfailregex: a\n');
    const { stderr } = await run(process.execPath, [
      join(ROOT, 'scripts/write-filter-cache.mjs'),
      out,
      rules,
    ]);
    expect(readdirSync(out)).toEqual(['plain.json']);
    expect(stderr).toContain('dup.yaml, inf.yaml, warns.yaml');
    expect(
      parseFilterYaml(readFileSync(join(rules, 'plain.yaml'), 'utf8'), join(rules, 'plain.yaml'), out),
    ).toEqual({
      failregex: ['^a <HOST>$'],
      maxlines: 3,
    });
  });
});
