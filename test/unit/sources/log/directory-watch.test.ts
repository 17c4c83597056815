import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isRotatedName, rotatedFiles, watchDirectory } from '../../../../src/sources/log/directory-watch.js';
import { makeTempDir } from '../../../helpers/log-files.js';
import { waitFor } from '../../../helpers/wait-for.js';

let dir: string;
beforeEach(() => {
  dir = makeTempDir('portcullis-watch-');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

it('notifies subscribers of their own file name, and catch-all subscribers of everything', async () => {
  const calls = { a: 0, b: 0, all: 0 };
  const a = watchDirectory(dir, 'a.log', () => calls.a++);
  const b = watchDirectory(dir, 'b.log', () => calls.b++);
  const all = watchDirectory(dir, undefined, () => calls.all++);
  fs.writeFileSync(path.join(dir, 'a.log'), 'x\n');
  await waitFor(() => calls.a > 0 && calls.all > 0);
  expect(calls.b).toBe(0);
  fs.writeFileSync(path.join(dir, 'other.log'), 'x\n');
  const before = calls.all;
  await waitFor(() => calls.all > before);
  expect(calls.b).toBe(0);
  a.close();
  b.close();
  all.close();
  a.close();
});

it('throws for a directory that does not exist, so the caller can fall back to polling', () => {
  expect(() => watchDirectory(path.join(dir, 'missing'), 'x.log', () => {})).toThrow();
});

it('reports a broken watch when its directory is removed', async () => {
  const sub = path.join(dir, 'sub');
  fs.mkdirSync(sub);
  const watch = watchDirectory(sub, 'x.log', () => {});
  expect(watch.broken).toBe(false);
  fs.rmSync(sub, { recursive: true });
  await waitFor(() => watch.broken, { timeoutMs: 5000, message: 'the watch to break' });
  watch.close();
});

it('names rotated copies of a log as logrotate and savelog make them, never compressed ones', () => {
  for (const name of ['auth.log.1', 'auth.log.12', 'auth.log-20261201', 'auth.log_old', 'auth.log.0'])
    expect(isRotatedName('auth.log', name), name).toBe(true);
  // logrotate `extension .log`: the date goes before the extension.
  expect(isRotatedName('app.log', 'app-20261201.log')).toBe(true);
  expect(isRotatedName('app.log', 'app.1.log')).toBe(true);
  for (const name of [
    'auth.log',
    'auth.log.2.gz',
    'auth.log.1.bz2',
    'auth.log-20261201.xz',
    'auth.log.3.zst',
    'auth.logger',
    'authxlog.1',
    'other.log.1',
    'app-20261201.txt',
  ])
    expect(isRotatedName('auth.log', name), name).toBe(false);
  expect(isRotatedName('app.log', 'app-20261201.log.gz')).toBe(false);
});

it('lists the regular files under rotated names by inode, skipping directories and other logs', async () => {
  const log = path.join(dir, 'auth.log');
  fs.writeFileSync(log, 'now\n');
  fs.writeFileSync(`${log}.1`, 'one\n');
  fs.writeFileSync(`${log}.2.gz`, 'zipped');
  fs.mkdirSync(`${log}.d`);
  fs.writeFileSync(path.join(dir, 'syslog.1'), 'other\n');
  fs.linkSync(`${log}.1`, `${log}-20261201`);
  const found = await rotatedFiles(dir, 'auth.log');
  const one = fs.statSync(`${log}.1`);
  expect([...found.keys()]).toEqual([one.ino]);
  // Two names of one file: the first in name order.
  expect(found.get(one.ino)).toEqual({ path: `${log}-20261201`, dev: one.dev, ino: one.ino });
  expect((await rotatedFiles(path.join(dir, 'missing'), 'auth.log')).size).toBe(0);
});
