import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHostsFile } from '../../../../src/actions/hostsdeny/hosts-file.js';
import {
  createHostsdenyAction,
  type HostsdenyAction,
} from '../../../../src/actions/hostsdeny/hostsdeny-action.js';
import {
  hostsdenyOptionsSchema,
  resolveHostsdenyOptions,
} from '../../../../src/actions/hostsdeny/options.js';
import { ActionRunner } from '../../../../src/actions/runner.js';
import { createManualClock } from '../../../../src/core/clock.js';
import type { Decision } from '../../../../src/core/types.js';
import { createGuard } from '../../../../src/guard.js';
import { MemoryStore } from '../../../../src/stores/memory/memory-store.js';

const clock = createManualClock();
const HAND = '# hosts.deny by hand\nvsftpd: 198.51.100.9\nALL: .example.org\n';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pc-hostsdeny-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const ban = (target: string, extra: Partial<Decision> = {}): Decision => ({
  target,
  jail: 'sshd',
  reason: 'test',
  startedAt: clock.now(),
  expiresAt: clock.now() + 60_000,
  banCount: 1,
  dryRun: false,
  origin: 'test',
  ...extra,
});

function action(
  file: string,
  options: Record<string, unknown> = {},
  errors: string[] = [],
  name = 'hostsdeny',
) {
  const config = resolveHostsdenyOptions(
    name,
    hostsdenyOptionsSchema.parse({ file, daemon: 'sshd', ...options }),
  );
  const logger = {
    debug() {},
    info() {},
    warn() {},
    error: (_f: object, m?: string) => errors.push(String(m)),
  };
  return createHostsdenyAction(name, config, { logger, clock, baseDir: null });
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

describe('hostsdeny action (real files)', () => {
  it('creates a missing file with mode 0644 at start, and writes nothing else', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    const a = action(file);
    const umask = process.umask(0o077);
    try {
      await a.start();
    } finally {
      process.umask(umask);
    }
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect(await readFile(file, 'utf8')).toBe('');
  });

  it('writes a batch of 1,000 bans in one rewrite, without duplicates, and leaves hand-written lines', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    await writeFile(file, HAND);
    const a = action(file);
    await a.start();
    const wave = Array.from({ length: 1000 }, (_, i) => ban(`10.1.${i >> 8}.${i & 255}`));
    await a.apply([...wave, ban('10.1.0.0'), ban('2001:db8::/64'), ban('2001:db8::7')]);
    expect(a.writes).toBe(1);
    const text = await readFile(file, 'utf8');
    expect(text.startsWith(HAND)).toBe(true);
    const ours = parseHostsFile(text, 'hostsdeny').targets;
    expect(ours).toHaveLength(1002);
    expect(lines(text)).toContain('sshd: [2001:db8::]/64');
    expect(lines(text)).toContain('sshd: [2001:db8::7]');
    await a.apply(wave.slice(0, 10)); // already there: no rewrite
    expect(a.writes).toBe(1);
    await a.flush();
    expect(await readFile(file, 'utf8')).toBe(HAND);
  });

  it('restore replaces its lines with exactly the bans in force; close leaves them', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    const a = action(file);
    await a.start();
    await a.apply([ban('192.0.2.1'), ban('192.0.2.2')]);
    await a.restore([ban('192.0.2.2'), ban('192.0.2.3'), ban('192.0.2.4', { expiresAt: clock.now() })]);
    expect(parseHostsFile(await readFile(file, 'utf8'), 'hostsdeny').targets).toEqual([
      '192.0.2.2',
      '192.0.2.3',
    ]);
    await a.close();
    expect(lines(await readFile(file, 'utf8'))).toContain('sshd: 192.0.2.3');
  });

  it('never writes a hostile target: each is refused with a logged error', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    await writeFile(file, HAND);
    const errors: string[] = [];
    const a = action(file, {}, errors);
    await a.start();
    const hostile = ['1.2.3.4\nALL: ALL', '1.2.3.4 # x', 'root', '$(id)', '1.2.3.4, ALL', '1.2.3.4:ALL'];
    await a.apply([...hostile.map((t) => ban(t)), ban('192.0.2.1')]);
    const text = await readFile(file, 'utf8');
    expect(lines(text).filter((line) => !line.startsWith('#'))).toEqual([
      'vsftpd: 198.51.100.9',
      'ALL: .example.org',
      'sshd: 192.0.2.1',
    ]);
    expect(errors).toEqual([expect.stringContaining('6 target(s) refused')]);
    await a.revert(hostile.map((t) => ban(t)));
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it.runIf(process.getuid?.() === 0)('keeps mode and owner (as root: a file of uid 1234)', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    await writeFile(file, HAND);
    await chown(file, 1234, 1235);
    await chmod(file, 0o640);
    const a = action(file);
    await a.start();
    await a.apply([ban('192.0.2.1')]);
    const info = await stat(file);
    expect([info.uid, info.gid, info.mode & 0o7777]).toEqual([1234, 1235, 0o640]);
    expect(await readFile(file, 'utf8')).toContain('sshd: 192.0.2.1');
  });

  it('replaces the file a symlink points to and keeps the link; leaves no temp or lock file', async () => {
    const dir = await tempDir();
    const real = join(dir, 'real.deny');
    await writeFile(real, HAND);
    await symlink(real, join(dir, 'hosts.deny'));
    const a = action(join(dir, 'hosts.deny'));
    await a.start();
    await a.apply([ban('192.0.2.1')]);
    expect((await readFile(real, 'utf8')).startsWith(HAND)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['hosts.deny', 'real.deny']);
  });

  it('breaks the lock of a writer that died, and waits for a live one', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    await writeFile(`${file}.portcullis.lock`, `999999999 ${hostname()} x\n`);
    const a = action(file);
    await a.apply([ban('192.0.2.1')]);
    expect(await readFile(file, 'utf8')).toContain('sshd: 192.0.2.1');
    const held = `${process.pid} ${hostname()} other\n`;
    await writeFile(`${file}.portcullis.lock`, held);
    const config = resolveHostsdenyOptions(
      'hostsdeny',
      hostsdenyOptionsSchema.parse({ file, daemon: 'sshd' }),
    );
    const impatient = createHostsdenyAction(
      'hostsdeny',
      config,
      { logger: silentish, clock, baseDir: null },
      { lockTimeoutMs: 50 },
    );
    await expect(impatient.apply([ban('192.0.2.2')])).rejects.toThrow(/held by another writer/);
    await rm(`${file}.portcullis.lock`);
    await impatient.apply([ban('192.0.2.2')]);
    expect(parseHostsFile(await readFile(file, 'utf8'), 'hostsdeny').targets).toEqual([
      '192.0.2.1',
      '192.0.2.2',
    ]);
  });

  it('200 concurrent bans and unbans through the runner and a real guard leave exactly the expected lines', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    await writeFile(file, HAND);
    const store = new MemoryStore();
    const guard = await createGuard(
      { jails: { sshd: { maxretry: 1, findtime: '10m', bantime: '1h', ignoreip: [], ignoreself: false } } },
      { clock, store, env: {} },
    );
    cleanups.push(() => guard.close());
    // Two actions on one file, as two portcullis processes would be (each its own block).
    const a = action(file);
    const b = action(file, { daemon: 'ALL' }, [], 'hostsdeny-b');
    const runner = new ActionRunner([a, b], { clock, backoffMs: 5, maxBackoffMs: 20, checkIntervalMs: 0 });
    cleanups.unshift(() => runner.close());
    await runner.start(guard);
    const targets = Array.from({ length: 200 }, (_, i) =>
      i % 4 === 0 ? `2001:db8::${i.toString(16)}` : `192.0.2.${i}`,
    );
    await Promise.all(
      targets.map((t, i) => (i % 2 === 0 ? guard.ban(t) : guard.report(t, { jail: 'sshd' }))),
    );
    await runner.idle();
    const unbanned = targets.filter((_, i) => i % 3 === 0);
    await Promise.all(unbanned.map((t) => guard.unban(t)));
    await runner.idle();
    const expected = targets.filter((t) => !unbanned.includes(t)).sort();
    const text = await readFile(file, 'utf8');
    expect(text.startsWith(HAND)).toBe(true);
    expect(parseHostsFile(text, 'hostsdeny').targets.sort()).toEqual(expected);
    expect(parseHostsFile(text, 'hostsdeny-b').targets.sort()).toEqual(expected);
    expect(lines(text)).toHaveLength(3 + 2 * (expected.length + 2));
    expect(new Set(lines(text)).size).toBe(lines(text).length);
    expect(runner.stats().hostsdeny?.failures).toBe(0);
    expect(a.writes).toBeLessThan(20);
  });

  it('serialises with writers in other processes through the lock file', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    await writeFile(file, HAND);
    const child = fileURLToPath(new URL('./writer-child.ts', import.meta.url));
    const run = promisify(execFile);
    const a = action(file);
    const mine = (async () => {
      for (let i = 0; i < 40; i++) await a.apply([ban(`192.0.2.${i}`)]);
    })();
    await Promise.all([
      run(process.execPath, ['--import', 'tsx', child, file, 'child-1', '40']),
      run(process.execPath, ['--import', 'tsx', child, file, 'child-2', '40']),
      mine,
    ]);
    const text = await readFile(file, 'utf8');
    expect(text.startsWith(HAND)).toBe(true);
    expect(parseHostsFile(text, 'hostsdeny').targets).toHaveLength(40);
    expect(parseHostsFile(text, 'child-1').targets).toHaveLength(40);
    expect(parseHostsFile(text, 'child-2').targets).toHaveLength(40);
  }, 60_000);

  it('check says false when the file or its lines are gone', async () => {
    const file = join(await tempDir(), 'hosts.deny');
    const a: HostsdenyAction = action(file);
    await a.start();
    expect(await a.check()).toBe(true);
    await a.apply([ban('192.0.2.1')]);
    await writeFile(file, HAND);
    expect(await a.check()).toBe(false);
    await rm(file);
    expect(await a.check()).toBe(false);
    expect(await readFile(file, 'utf8')).toBe('');
  });
});

const silentish = { debug() {}, info() {}, warn() {}, error() {} };
