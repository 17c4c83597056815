import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { createGuard } from '../../src/guard.js';
import { type LogJails, startLogJails } from '../../src/sources/log/log-jail.js';
import { MemoryStore } from '../../src/stores/memory/memory-store.js';
import { SqliteStore } from '../../src/stores/sqlite/sqlite-store.js';
import type { Store } from '../../src/stores/store.js';
import {
  exactlyOnce,
  makeTempDir,
  numberedLines,
  recordingGuard,
  reportedNumbers,
  standInFilter,
} from '../helpers/log-files.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A glob that matches rotated names (`app.log*`) sees the same file under two names after a
 * rotation; files are told apart by device and inode, so every line is counted exactly once,
 * across rotations and across a restart in between. Real files, real renames.
 */

let dir: string;
const closers: (() => Promise<void>)[] = [];
beforeEach(() => {
  dir = makeTempDir('portcullis-glob-');
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(store: Store): Promise<{ numbers: () => number[]; logJails: LogJails }> {
  const config = resolveConfig(
    {
      jails: {
        app: {
          source: { log: path.join(dir, 'app.log*'), start: 'beginning' },
          filter: 'sshd',
          maxretry: 1_000_000,
          findtime: '1d',
          ignoreip: [],
          ignoreself: false,
        },
      },
    },
    { env: {} },
  );
  const real = await createGuard(config, { store, env: {} });
  closers.push(() => real.close());
  const guard = recordingGuard(real);
  const logJails = await startLogJails(guard, {
    makeFilter: () => standInFilter(),
    pollIntervalMs: 30,
    globIntervalMs: 60,
    drainGraceMs: 150,
    saveIntervalMs: 20,
  });
  closers.push(() => logJails.close());
  return { numbers: () => reportedNumbers(guard.reports), logJails };
}

/** logrotate's rename + create: app.log.1 → app.log.2, app.log → app.log.1, new app.log. */
function rotate(): void {
  const log = path.join(dir, 'app.log');
  if (fs.existsSync(`${log}.1`)) fs.renameSync(`${log}.1`, `${log}.2`);
  fs.renameSync(log, `${log}.1`);
  fs.writeFileSync(log, '');
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a glob matching rotated names', () => {
  it('counts every line once through two rotations', async () => {
    const log = path.join(dir, 'app.log');
    fs.writeFileSync(log, numberedLines(1, 50));
    const store = new MemoryStore();
    const { numbers } = await start(store);
    await waitFor(() => numbers().length >= 50, { timeoutMs: 5000 });
    fs.appendFileSync(log, numberedLines(51, 60));
    rotate();
    fs.appendFileSync(log, numberedLines(61, 80));
    await waitFor(() => numbers().length >= 80, { timeoutMs: 5000 });
    rotate();
    fs.appendFileSync(log, numberedLines(81, 90));
    await waitFor(() => numbers().length >= 90, { timeoutMs: 5000 });
    // Long enough for every glob expansion and drain grace to have met app.log.1 and app.log.2.
    await settle(600);
    expect(exactlyOnce(numbers(), 90)).toBeUndefined();
  });

  it('leaves out compressed rotations the glob matches (app.log.2.gz), whatever they hold', async () => {
    const log = path.join(dir, 'app.log');
    fs.writeFileSync(log, numberedLines(1, 20));
    fs.writeFileSync(`${log}.1`, numberedLines(21, 30));
    // Named as compressed but holding lines: read, they would be counted.
    fs.writeFileSync(`${log}.2.gz`, numberedLines(1001, 1010));
    fs.writeFileSync(`${log}.3.xz`, numberedLines(2001, 2010));
    const { numbers } = await start(new MemoryStore());
    await waitFor(() => numbers().length >= 30, { timeoutMs: 5000 });
    await settle(300); // several expansions of the glob
    expect(exactlyOnce(numbers(), 30)).toBeUndefined();
  });

  it('a restart after a rotation does not read the rotated file again', async () => {
    const log = path.join(dir, 'app.log');
    fs.writeFileSync(log, numberedLines(1, 40));
    // A store that outlives the guard: positions are what the restart resumes from.
    const dbPath = path.join(dir, 'positions.db');
    const first = await start(new SqliteStore({ path: dbPath }));
    await waitFor(() => first.numbers().length >= 40, { timeoutMs: 5000 });
    const seen = first.numbers();
    await first.logJails.close();
    for (const close of closers.splice(0).reverse()) await close();
    // While stopped: more lines, then a rotation; the old file is now app.log.1.
    fs.appendFileSync(log, numberedLines(41, 45));
    rotate();
    fs.appendFileSync(log, numberedLines(46, 50));
    const second = await start(new SqliteStore({ path: dbPath }));
    await waitFor(() => second.numbers().length >= 10, { timeoutMs: 5000 });
    await settle(400);
    expect(exactlyOnce([...seen, ...second.numbers()], 50)).toBeUndefined();
  });
});
