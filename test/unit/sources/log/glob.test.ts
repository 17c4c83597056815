import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expandGlob, hasMagic, segmentMatcher } from '../../../../src/sources/log/glob.js';
import { makeTempDir } from '../../../helpers/log-files.js';

describe('segmentMatcher', () => {
  it.each([
    ['*.log', 'access.log', true],
    ['*.log', 'access.log.1', false],
    ['*.log', '.hidden.log', false],
    ['.*.log', '.hidden.log', true],
    ['auth.log?', 'auth.log1', true],
    ['auth.log?', 'auth.log', false],
    ['app-[0-9].log', 'app-7.log', true],
    ['app-[!0-9].log', 'app-7.log', false],
    ['app-[^0-9].log', 'app-x.log', true],
    ['a[]]b', 'a]b', true],
    ['weird[', 'weird[', true],
    ['a.b', 'axb', false],
    ['(x)+*', '(x)+yz', true],
    ['star\\*', 'star*', true],
    ['star\\*', 'stars', false],
  ])('%s vs %s → %s', (segment, name, expected) => {
    expect(segmentMatcher(segment)(name)).toBe(expected);
  });

  it('hasMagic ignores escaped characters', () => {
    expect(hasMagic('/var/log/auth.log')).toBe(false);
    expect(hasMagic('/var/log/*.log')).toBe(true);
    expect(hasMagic('/var/log/a\\*b')).toBe(false);
  });
});

describe('expandGlob', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir('portcullis-glob-');
    for (const file of ['a.log', 'b.log', 'c.txt', 'sub/d.log', 'sub/deeper/e.log', 'other/f.log']) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), '');
    }
    fs.mkdirSync(path.join(dir, 'dir.log'));
    fs.symlinkSync(path.join(dir, 'a.log'), path.join(dir, 'link.log'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('matches regular files (and symlinks to them) in one directory, sorted', async () => {
    expect(await expandGlob(path.join(dir, '*.log'))).toEqual(
      ['a.log', 'b.log', 'link.log'].map((name) => path.join(dir, name)),
    );
  });

  it('matches directory segments with * and any depth with **', async () => {
    expect(await expandGlob(path.join(dir, '*/d.log'))).toEqual([path.join(dir, 'sub/d.log')]);
    expect(await expandGlob(path.join(dir, '**/*.log'))).toEqual(
      ['a.log', 'b.log', 'link.log', 'other/f.log', 'sub/d.log', 'sub/deeper/e.log'].map((name) =>
        path.join(dir, name),
      ),
    );
  });

  it('matches nothing in a directory that does not exist', async () => {
    expect(await expandGlob(path.join(dir, 'missing/*.log'))).toEqual([]);
  });
});
