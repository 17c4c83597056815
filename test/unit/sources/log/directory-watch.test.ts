import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { watchDirectory } from '../../../../src/sources/log/directory-watch.js';
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
