import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, isPortcullisError } from '../../../src/core/errors.js';
import type { Logger } from '../../../src/core/logger.js';
import type { Decision } from '../../../src/core/types.js';
import { SqliteStore } from '../../../src/stores/sqlite/sqlite-store.js';
import { decision, storeContract } from '../../helpers/store-contract.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

let dir: string;
let fileCount = 0;
const opened: SqliteStore[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-sqlite-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function freshPath(): string {
  fileCount++;
  return path.join(dir, `store-${fileCount}.db`);
}

/** A store the test closes itself; afterEach closes it too when an assertion failed first. */
function track(store: SqliteStore): SqliteStore {
  opened.push(store);
  return store;
}

async function loadAll(store: SqliteStore, nowMs: number): Promise<Decision[]> {
  const all: Decision[] = [];
  await store.loadDecisions(nowMs, (batch) => all.push(...batch));
  return all.sort((a, b) => a.target.localeCompare(b.target));
}

interface LoggedCall {
  level: string;
  fields: Record<string, unknown>;
  message: string | undefined;
}

function recordingLogger(calls: LoggedCall[]): Logger {
  const record =
    (level: string) =>
    (fields: object, message?: string): void => {
      calls.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
}

storeContract('sqlite', async () => new SqliteStore({ path: freshPath() }));
storeContract('sqlite :memory:', async () => new SqliteStore({ path: ':memory:' }));

describe('SqliteStore', () => {
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it('keeps bans, permanent bans, ban history and log positions across close and reopen', async () => {
    const file = freshPath();
    const first = track(new SqliteStore({ path: file }));
    await first.open();
    await first.putDecision(decision('192.0.2.1', { expiresAt: T0 + 3_600_000 }));
    await first.putDecision(decision('10.0.0.0/8', { jail: 'manual', expiresAt: null, origin: 'cli:1' }));
    await first.putDecision(decision('2001:db8::/64', { dryRun: true, banCount: 3, reason: 'dry' }));
    await first.putDecision(decision('192.0.2.1', { startedAt: T0 + 1000, jail: 'web', banCount: 2 }));
    await first.setPosition('/var/log/auth.log', { offset: 987_654_321, inode: 4_242, headHash: 'f00d' });
    await first.close();

    const second = track(new SqliteStore({ path: file }));
    await second.open();
    expect(await loadAll(second, T0)).toEqual([
      decision('10.0.0.0/8', { jail: 'manual', expiresAt: null, origin: 'cli:1' }),
      decision('192.0.2.1', { startedAt: T0 + 1000, jail: 'web', banCount: 2 }),
      decision('2001:db8::/64', { dryRun: true, banCount: 3, reason: 'dry' }),
    ]);
    expect(await second.countBans('192.0.2.1', null, 0)).toBe(2);
    expect(await second.countBans('192.0.2.1', 'web', 0)).toBe(1);
    expect(await second.getPosition('/var/log/auth.log')).toEqual({
      offset: 987_654_321,
      inode: 4_242,
      headHash: 'f00d',
    });
  });

  it('streams active decisions in batches of 10 000', async () => {
    const store = track(new SqliteStore({ path: freshPath() }));
    await store.open();
    for (let i = 0; i < 25_003; i++) {
      const target = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      // every 1000th has expired at T0 and must be left out
      await store.putDecision(decision(target, { expiresAt: i % 1000 === 0 ? T0 : T0 + 60_000 }));
    }
    const sizes: number[] = [];
    const targets = new Set<string>();
    const delivered = await store.loadDecisions(T0, (batch) => {
      sizes.push(batch.length);
      for (const d of batch) targets.add(d.target);
    });
    expect(delivered).toBe(25_003 - 26);
    expect(sizes).toEqual([10_000, 10_000, 4_977]);
    expect(targets.size).toBe(delivered);
  });

  it('lets a second connection (the CLI) write to the same file while the first is open', async () => {
    const file = freshPath();
    const daemon = track(new SqliteStore({ path: file }));
    const cli = track(new SqliteStore({ path: file }));
    await daemon.open();
    await cli.open();
    await Promise.all([
      daemon.putDecision(decision('192.0.2.1')),
      cli.putDecision(decision('192.0.2.2', { jail: 'manual' })),
    ]);
    expect((await loadAll(daemon, T0)).map((d) => d.target)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect((await cli.deleteDecision('192.0.2.1'))?.target).toBe('192.0.2.1');
    expect((await loadAll(daemon, T0)).map((d) => d.target)).toEqual(['192.0.2.2']);
  });

  it('writes the bans put in one turn of the event loop in one transaction, before anything else touches the file', async () => {
    const file = freshPath();
    const daemon = track(new SqliteStore({ path: file, watchIntervalMs: 0 }));
    await daemon.open();
    const reader = new Database(file, { readonly: true });
    try {
      const commits = () => Number(reader.pragma('data_version', { simple: true }));
      const before = commits();
      // A burst (a log backlog's bans): all enforced at once by the caller, written together.
      const targets = Array.from({ length: 500 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
      const stored = await Promise.all(targets.map((target) => daemon.putDecision(decision(target))));
      expect(stored.map((d) => d.target)).toEqual(targets);
      // Another connection sees one commit, holding all 500.
      expect(commits()).toBe(before + 1);
      expect(reader.prepare('SELECT count(*) FROM bans').pluck().get()).toBe(500);

      // A delete, a count of earlier bans or a saved position right after a put comes after it.
      const put = daemon.putDecision(decision('203.0.113.9'));
      expect((await daemon.deleteDecision('203.0.113.9'))?.target).toBe('203.0.113.9');
      expect((await put).target).toBe('203.0.113.9');
      void daemon.putDecision(decision('203.0.113.10'));
      // bantime_increment counts a target's earlier bans at each ban: another target's count
      // leaves the held ones held, this target's writes them first.
      const held = commits();
      expect(await daemon.countBans('203.0.113.99', null, 0)).toBe(0);
      expect(commits()).toBe(held);
      expect(await daemon.countBans('203.0.113.10', null, 0)).toBe(1);
      expect(commits()).toBe(held + 1);
      void daemon.putDecision(decision('203.0.113.11'));
      await daemon.setPosition('auth', { offset: 42, inode: 7, headHash: 'h' });
      expect(reader.prepare('SELECT count(*) FROM bans WHERE target = ?').pluck().get('203.0.113.11')).toBe(
        1,
      );
      // Closing writes what is still held.
      void daemon.putDecision(decision('203.0.113.12'));
      await daemon.close();
      expect(reader.prepare('SELECT count(*) FROM bans WHERE target = ?').pluck().get('203.0.113.12')).toBe(
        1,
      );
    } finally {
      reader.close();
    }
  });

  it('overwrites a saved log position', async () => {
    const store = track(new SqliteStore({ path: freshPath() }));
    await store.open();
    await store.setPosition('auth', { offset: 1, inode: 2, headHash: 'a' });
    await store.setPosition('auth', { offset: 10, inode: 3, headHash: 'b' });
    expect(await store.getPosition('auth')).toEqual({ offset: 10, inode: 3, headHash: 'b' });
  });

  it('moves a corrupt file aside, logs one error and starts with an empty database', async () => {
    const file = freshPath();
    const garbage = randomBytes(16_384);
    fs.writeFileSync(file, garbage);
    fs.writeFileSync(`${file}-wal`, randomBytes(4096));
    const calls: LoggedCall[] = [];
    const store = track(new SqliteStore({ path: file, logger: recordingLogger(calls) }));

    await store.open();

    const moved = fs.readdirSync(dir).filter((name) => name.startsWith(`${path.basename(file)}.corrupt-`));
    const main = moved.find((name) => !name.endsWith('-wal'));
    expect(main).toMatch(/\.corrupt-\d{4}-\d\d-\d\dT\d{6}\.\d{3}Z$/);
    expect(moved).toContain(`${main}-wal`);
    expect(fs.readFileSync(path.join(dir, main as string))).toEqual(garbage);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      level: 'error',
      message: 'SQLite file is corrupt; moved aside and starting with an empty database',
      fields: { path: file, movedTo: path.join(dir, main as string) },
    });
    expect(calls[0]?.fields.err).toMatchObject({ code: 'SQLITE_NOTADB' });

    // the fresh database works and survives a reopen without another warning
    expect(await loadAll(store, T0)).toEqual([]);
    await store.putDecision(decision('192.0.2.9'));
    await store.close();
    const again = track(new SqliteStore({ path: file, logger: recordingLogger(calls) }));
    await again.open();
    expect((await loadAll(again, T0)).map((d) => d.target)).toEqual(['192.0.2.9']);
    expect(calls).toHaveLength(1);
  });

  it('moves the file aside when corruption shows up after open, and carries on with an empty one', async () => {
    const file = freshPath();
    const seed = track(new SqliteStore({ path: file }));
    await seed.open();
    for (let i = 0; i < 500; i++) {
      await seed.putDecision(decision(`10.0.${i >> 8}.${i & 255}`, { jail: 'manual', expiresAt: null }));
    }
    await seed.close();
    // Keep page 1 (header and schema) so open() succeeds; zero every data page after it.
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBeGreaterThan(4096 * 4);
    bytes.fill(0, 4096);
    fs.writeFileSync(file, bytes);
    const calls: LoggedCall[] = [];
    const store = track(new SqliteStore({ path: file, logger: recordingLogger(calls) }));
    await store.open();
    const events: string[] = [];
    for (const event of ['up', 'down', 'lost'] as const) store.on(event, () => events.push(event));
    const upAfterLost = once(store, 'up', { signal: AbortSignal.timeout(5000) });

    await expect(store.loadDecisions(T0, () => {})).rejects.toMatchObject({
      code: ErrorCodes.STORE_CORRUPT,
      message: expect.stringContaining(`${file} turned out corrupt`),
    });
    // told to write back what it enforces, then to reload
    await upAfterLost;
    expect(events).toEqual(['lost', 'up']);
    expect(calls.map((call) => call.message)).toEqual([
      'SQLite file is corrupt; moved aside and starting with an empty database',
    ]);
    expect(fs.existsSync(calls[0]?.fields.movedTo as string)).toBe(true);
    expect(await loadAll(store, T0)).toEqual([]);
    await store.putDecision(decision('192.0.2.1'));
    expect((await loadAll(store, T0)).map((d) => d.target)).toEqual(['192.0.2.1']);
  });

  it('rejects open() for a path in a missing directory, naming the path', async () => {
    const file = path.join(dir, 'no-such-dir', 'portcullis.db');
    const store = track(new SqliteStore({ path: file }));
    const error = await store.open().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isPortcullisError(error, ErrorCodes.STORE_UNAVAILABLE)).toBe(true);
    expect((error as Error).message).toContain(`cannot open SQLite database ${file}`);
    expect((error as Error).message).toContain('does not exist');
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it('refuses a SQLite file that belongs to another application and leaves it untouched', async () => {
    const file = freshPath();
    const other = new Database(file);
    other.exec('CREATE TABLE bans (jail TEXT, ip TEXT, timeofban INTEGER)');
    other.close();
    const before = fs.readFileSync(file);

    const foreign = track(new SqliteStore({ path: file }));
    await expect(foreign.open()).rejects.toMatchObject({
      code: ErrorCodes.STORE_UNAVAILABLE,
      message: expect.stringContaining('not a portcullis database'),
    });
    expect(fs.readFileSync(file)).toEqual(before);
  });

  it('rejects every method with PC_ERR_CLOSED after close(), which is idempotent', async () => {
    const store = track(new SqliteStore({ path: freshPath() }));
    await store.open();
    await store.close();
    await store.close();
    const closed = { code: ErrorCodes.CLOSED };
    await expect(store.open()).rejects.toMatchObject(closed);
    await expect(store.putDecision(decision('192.0.2.1'))).rejects.toMatchObject(closed);
    await expect(store.loadDecisions(T0, () => {})).rejects.toMatchObject(closed);
    await expect(store.countBans('192.0.2.1', null, 0)).rejects.toMatchObject(closed);
    await expect(store.getPosition('auth')).rejects.toMatchObject(closed);
    await expect(
      store.addFailure({
        jail: 'sshd',
        key: '192.0.2.1',
        timeMs: T0,
        weight: 1,
        findTimeMs: 1000,
        maxRetry: 3,
      }),
    ).rejects.toMatchObject(closed);
  });

  it('rejects with PC_ERR_STORE_UNAVAILABLE when used before open()', async () => {
    const store = track(new SqliteStore({ path: freshPath() }));
    await expect(store.putDecision(decision('192.0.2.1'))).rejects.toMatchObject({
      code: ErrorCodes.STORE_UNAVAILABLE,
    });
  });
});
