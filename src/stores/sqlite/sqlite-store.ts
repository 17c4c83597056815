import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import nodePath from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import { FailureWindows } from '../../core/failure-windows.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { Decision } from '../../core/types.js';
import { mergeDecision } from '../merge-decision.js';
import type { FailureInput, FailureResult, LogPosition, Store, StoreEventMap } from '../store.js';

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * Path of the database file (`store.sqlite` in the configuration); `':memory:'` keeps everything
   * in memory, for tests. The file is created when missing; its directory is not.
   */
  path: string;
  /** Where the store reports a corrupt file it moved aside. Default: silent. */
  logger?: Logger;
  /**
   * How often to check whether another process (the `portcullis ban` CLI) changed the file, in
   * ms; a change emits `'up'` so the guard reloads its decisions. Default 1000; 0 disables.
   */
  watchIntervalMs?: number;
}

/** `PRAGMA user_version` of the schema below; bump it with a migration in `migrate()`. */
const SCHEMA_VERSION = 1;
/** How long a write waits for another connection (the CLI on the same file) to finish, in ms. */
const BUSY_TIMEOUT_MS = 5000;
/** Decisions handed to `loadDecisions`' callback at a time. */
const LOAD_BATCH_SIZE = 10_000;
const CORRUPT_MESSAGE = 'SQLite file is corrupt; moved aside and starting with an empty database';
const OPEN_HELP =
  'Check that store.sqlite names a file in an existing directory that portcullis may read and write.';

// `bans` is WITHOUT ROWID: its rows are small and always looked up or paged by target, so one
// b-tree keyed by target replaces a rowid table plus an index on target.
const SCHEMA_V1 = `
  CREATE TABLE bans (
    target TEXT PRIMARY KEY NOT NULL,
    jail TEXT NOT NULL,
    reason TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    expires_at INTEGER,
    ban_count INTEGER NOT NULL,
    dry_run INTEGER NOT NULL,
    origin TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX bans_expires_at ON bans (expires_at);
  CREATE TABLE ban_history (
    target TEXT NOT NULL,
    jail TEXT NOT NULL,
    time_ms INTEGER NOT NULL
  );
  CREATE INDEX ban_history_target_time ON ban_history (target, time_ms);
  CREATE INDEX ban_history_time ON ban_history (time_ms);
  CREATE TABLE log_positions (
    id TEXT PRIMARY KEY NOT NULL,
    "offset" INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    head_hash TEXT NOT NULL
  ) WITHOUT ROWID;
`;
// ban_history_time exists so that purge() deletes old history without scanning the whole table.

const BAN_COLUMNS = 'target, jail, reason, started_at, expires_at, ban_count, dry_run, origin';
const ACTIVE = '(expires_at IS NULL OR expires_at > @nowMs)';

type BanRow = [
  target: string,
  jail: string,
  reason: string,
  startedAt: number,
  expiresAt: number | null,
  banCount: number,
  dryRun: number,
  origin: string,
];
type BanParams = [string, string, string, number, number | null, number, number, string];
type Statement<P extends unknown[] | object, R = unknown> = Database.Statement<P, R>;

interface Statements {
  getBan: Statement<[string], BanRow>;
  upsertBan: Statement<BanParams>;
  deleteBan: Statement<[string], BanRow>;
  addHistory: Statement<[string, string, number]>;
  loadFirst: Statement<{ nowMs: number; limit: number }, BanRow>;
  loadAfter: Statement<{ nowMs: number; limit: number; after: string }, BanRow>;
  countAll: Statement<[string, number], number>;
  countJail: Statement<[string, number, string], number>;
  purgeBans: Statement<[number]>;
  purgeHistory: Statement<[number]>;
  getPosition: Statement<[string], [number, number, string]>;
  setPosition: Statement<[string, number, number, string]>;
}

interface Connection {
  db: Database.Database;
  statements: Statements;
  put: (decision: Decision) => Decision;
  putMany: (decisions: readonly Decision[]) => Decision[];
  deleteMany: (targets: readonly string[]) => (Decision | undefined)[];
  purge: (nowMs: number, historyBeforeMs: number) => void;
}

/**
 * The embedded store: decisions, ban history and log positions in one SQLite file on this host
 * (`store: { sqlite: ./portcullis.db }`). Nothing is shared with other hosts, so it never emits
 * `message`; a CLI may write to the same file at the same time (WAL, busy timeout).
 *
 * A file SQLite reports as corrupt (not a database, malformed) is moved aside to
 * `<path>.corrupt-<time>` and replaced by an empty database, with one error logged: the process
 * keeps running instead of crash-looping on the same file. Found at `open()`, that is all; found
 * later, the call that found it rejects with `PC_ERR_STORE_CORRUPT` and the store then emits
 * `'lost'` and `'up'` (write back what you enforce, then reload). Every method rejects with
 * `PC_ERR_CLOSED` after `close()`.
 */
export class SqliteStore extends EventEmitter<StoreEventMap> implements Store {
  readonly kind = 'sqlite' as const;
  readonly shared = false;
  // Failure counters live in process memory, as in fail2ban: they are short-lived (findtime) and
  // cheap to lose on a restart, while writing every failed request to disk would put I/O on the
  // hot path. What must survive a crash is in the file: bans, ban history and log positions.
  readonly #windows = new FailureWindows();
  readonly #path: string;
  readonly #logger: Logger;
  #connection: Connection | undefined;
  #closed = false;
  readonly #watchIntervalMs: number;
  #watchTimer: NodeJS.Timeout | undefined;
  #dataVersion = -1;
  /** Decisions put but not written yet (see putDecision), and the write's timer. */
  #pendingPuts: {
    decision: Decision;
    resolve: (stored: Decision) => void;
    reject: (error: unknown) => void;
  }[] = [];
  #flushTimer: NodeJS.Immediate | undefined;
  readonly #pendingTargets = new Set<string>();

  constructor(options: SqliteStoreOptions) {
    super();
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new PortcullisError(
        ErrorCodes.CONFIG_INVALID,
        `SqliteStoreOptions.path: expected a file path or ":memory:", got ${JSON.stringify(options?.path)}`,
      );
    }
    this.#path = options.path;
    this.#logger = options.logger ?? silentLogger;
    this.#watchIntervalMs = options.watchIntervalMs ?? 1000;
  }

  /** The database file this store was created with. */
  get path(): string {
    return this.#path;
  }

  /**
   * Opens (or creates) the file. A corrupt file is moved aside and replaced; any other failure
   * (missing directory, permissions, a file of another application) rejects with
   * `PC_ERR_STORE_UNAVAILABLE` naming the path. Opening an open store does nothing.
   */
  async open(): Promise<void> {
    this.#assertNotClosed();
    if (this.#connection !== undefined) return;
    let movedAside = false;
    try {
      this.#connection = connect(this.#path, this.#logger, (err) => {
        this.#moveAside(err);
        movedAside = true;
      });
    } catch (err) {
      if (!movedAside) throw openError(this.#path, err);
      try {
        this.#connection = connect(this.#path, this.#logger);
      } catch (retryError) {
        throw openError(this.#path, retryError);
      }
    }
    this.#startWatching();
  }

  /**
   * `PRAGMA data_version` changes only when another connection commits, so polling it is how a
   * running daemon notices a ban or unban made by the CLI on the same file (there is no pub/sub
   * on one host). One cheap pragma per interval.
   */
  #startWatching(): void {
    if (this.#watchIntervalMs <= 0 || this.#path === ':memory:') return;
    this.#dataVersion = this.#readDataVersion();
    this.#watchTimer = setInterval(() => {
      const version = this.#readDataVersion();
      if (version !== this.#dataVersion && version !== -1) {
        this.#dataVersion = version;
        this.emit('up');
      }
    }, this.#watchIntervalMs).unref();
  }

  #readDataVersion(): number {
    try {
      return Number(this.#connection?.db.pragma('data_version', { simple: true }) ?? -1);
    } catch {
      return -1;
    }
  }

  async addFailure(input: FailureInput): Promise<FailureResult> {
    this.#assertNotClosed();
    return this.#windows.add(input);
  }

  async clearFailures(jail: string, key: string): Promise<void> {
    this.#assertNotClosed();
    this.#windows.clear(jail, key);
  }

  /**
   * Stores a decision with the others put in the same turn of the event loop: one transaction for
   * all of them at the next turn, or at once before anything that must come after them (an unban,
   * a load of the decisions, a purge, a saved log position, closing, and a count of earlier bans
   * of a target one of them bans). A burst of bans (a log backlog) costs one commit, not one each
   * (~80 µs here).
   */
  async putDecision(decision: Decision): Promise<Decision> {
    this.#run('store a decision', () => undefined); // closed or not open: rejects now
    return new Promise((resolve, reject) => {
      this.#pendingPuts.push({ decision, resolve, reject });
      this.#pendingTargets.add(decision.target);
      this.#flushTimer ??= setImmediate(() => this.#flushPuts());
    });
  }

  /** Writes the decisions {@link putDecision} holds, in one transaction. */
  #flushPuts(): void {
    if (this.#flushTimer !== undefined) {
      clearImmediate(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    const pending = this.#pendingPuts;
    if (pending.length === 0) return;
    this.#pendingPuts = [];
    this.#pendingTargets.clear();
    let stored: Decision[];
    try {
      stored = this.#run('store a decision', (c) => c.putMany(pending.map((put) => put.decision)));
    } catch (error) {
      for (const put of pending) put.reject(error);
      return;
    }
    pending.forEach((put, i) => {
      put.resolve(stored[i] as Decision);
    });
  }

  async deleteDecision(target: string): Promise<Decision | undefined> {
    this.#flushPuts();
    const row = this.#run('delete a decision', (c) => c.statements.deleteBan.get(target));
    return row === undefined ? undefined : toDecision(row);
  }

  /** One IMMEDIATE transaction for the whole batch: all of it is stored, or none. */
  async putDecisions(decisions: readonly Decision[]): Promise<Decision[]> {
    this.#flushPuts();
    if (decisions.length === 0) return this.#run('store decisions', () => []);
    return this.#run('store decisions', (c) => c.putMany(decisions));
  }

  /** One IMMEDIATE transaction for the whole batch: all of it is removed, or none. */
  async deleteDecisions(targets: readonly string[]): Promise<(Decision | undefined)[]> {
    this.#flushPuts();
    if (targets.length === 0) return this.#run('delete decisions', () => []);
    return this.#run('delete decisions', (c) => c.deleteMany(targets));
  }

  /**
   * Pages through the active decisions by target (keyset pagination, no OFFSET), yielding to the
   * event loop between batches so a large restore does not stall traffic, and so no statement is
   * left open across an `await` (better-sqlite3 forbids other statements while one iterates).
   */
  async loadDecisions(nowMs: number, onBatch: (batch: Decision[]) => void): Promise<number> {
    this.#flushPuts();
    let delivered = 0;
    let rows = this.#run('load decisions', (c) =>
      c.statements.loadFirst.all({ nowMs, limit: LOAD_BATCH_SIZE }),
    );
    for (;;) {
      if (rows.length === 0) return delivered;
      const batch = rows.map(toDecision);
      onBatch(batch);
      delivered += batch.length;
      if (rows.length < LOAD_BATCH_SIZE) return delivered;
      const after = (batch[batch.length - 1] as Decision).target;
      await yieldToEventLoop();
      rows = this.#run('load decisions', (c) =>
        c.statements.loadAfter.all({ nowMs, limit: LOAD_BATCH_SIZE, after }),
      );
    }
  }

  async countBans(target: string, jail: string | null, sinceMs: number): Promise<number> {
    // Only a held ban of this target changes the count (bantime_increment asks at every ban).
    if (this.#pendingTargets.has(target)) this.#flushPuts();
    return this.#run('count bans', (c) =>
      jail === null
        ? (c.statements.countAll.get(target, sinceMs) ?? 0)
        : (c.statements.countJail.get(target, sinceMs, jail) ?? 0),
    );
  }

  async purge(nowMs: number, historyBeforeMs: number): Promise<void> {
    this.#flushPuts();
    this.#run('purge', (c) => c.purge(nowMs, historyBeforeMs));
    this.#windows.prune(nowMs);
  }

  async getPosition(id: string): Promise<LogPosition | undefined> {
    const row = this.#run('read a log position', (c) => c.statements.getPosition.get(id));
    return row === undefined ? undefined : { offset: row[0], inode: row[1], headHash: row[2] };
  }

  async setPosition(id: string, position: LogPosition): Promise<void> {
    this.#flushPuts();
    this.#run('save a log position', (c) =>
      c.statements.setPosition.run(id, position.offset, position.inode, position.headHash),
    );
  }

  /** Idempotent. Closing checkpoints the WAL into the main file. */
  async close(): Promise<void> {
    if (!this.#closed && this.#connection !== undefined) this.#flushPuts();
    this.#closed = true;
    clearInterval(this.#watchTimer);
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.db.close();
  }

  #assertNotClosed(): void {
    if (this.#closed) throw new PortcullisError(ErrorCodes.CLOSED, 'the SQLite store is closed');
  }

  /**
   * Runs one synchronous database step and translates SQLite's errors: corruption found while
   * running moves the file aside like at open (and rejects this call with PC_ERR_STORE_CORRUPT);
   * anything else SQLite reports (busy past the timeout, disk full, I/O) is PC_ERR_STORE_UNAVAILABLE.
   */
  #run<T>(operation: string, step: (connection: Connection) => T): T {
    this.#assertNotClosed();
    const connection = this.#connection;
    if (connection === undefined) {
      throw new PortcullisError(
        ErrorCodes.STORE_UNAVAILABLE,
        `the SQLite store ${this.#path} is not open; call open() first`,
      );
    }
    try {
      return step(connection);
    } catch (err) {
      if (!isSqliteError(err)) throw err;
      if (isCorruption(err) && !isInMemory(this.#path)) throw this.#recover(operation, connection, err);
      throw new PortcullisError(
        ErrorCodes.STORE_UNAVAILABLE,
        `SQLite database ${this.#path}: cannot ${operation}: ${err.message}`,
        { cause: err },
      );
    }
  }

  #recover(operation: string, connection: Connection, err: Error): PortcullisError {
    this.#connection = undefined;
    try {
      let movedTo: string;
      try {
        movedTo = this.#moveAside(err);
      } finally {
        // Only after the move: closing the last connection deletes the -wal file by name.
        connection.db.close();
      }
      this.#connection = connect(this.#path, this.#logger);
      // A new connection counts data_version afresh; the 'up' below already says "reload".
      if (this.#watchTimer !== undefined) this.#dataVersion = this.#readDataVersion();
      // After the caller has seen the rejection: the decisions this instance enforces are no
      // longer in the file, so it is asked to write them back, then to reload.
      setImmediate(() => {
        if (this.#closed) return;
        this.emit('lost');
        this.emit('up');
      });
      return new PortcullisError(
        ErrorCodes.STORE_CORRUPT,
        `SQLite database ${this.#path} turned out corrupt while trying to ${operation}; it was moved to ${movedTo} and an empty database replaces it`,
        {
          cause: err,
          help: 'The moved file keeps what was stored before, for inspection with the sqlite3 shell.',
        },
      );
    } catch (recoveryError) {
      // Left without a connection: later calls reject until open() succeeds again.
      return openError(this.#path, recoveryError);
    }
  }

  /** Moves the corrupt file (and its WAL, shared-memory and journal files) aside; logs once. */
  #moveAside(err: unknown): string {
    let movedTo: string;
    try {
      movedTo = moveAside(this.#path, new Date());
    } catch (moveError) {
      throw new PortcullisError(
        ErrorCodes.STORE_UNAVAILABLE,
        `cannot open SQLite database ${this.#path}: the file is corrupt and cannot be moved aside: ${reasonOf(moveError)}`,
        { cause: err, help: OPEN_HELP },
      );
    }
    this.#logger.error({ path: this.#path, movedTo, err }, CORRUPT_MESSAGE);
    return movedTo;
  }
}

/**
 * Opens the file, applies the pragmas and schema, and prepares every statement. When SQLite
 * reports corruption, `onCorrupt` runs while the file is still open: closing the last connection
 * deletes its -wal file, which may hold the latest commits and belongs with the evidence.
 */
function connect(file: string, logger: Logger, onCorrupt?: (err: unknown) => void): Connection {
  if (!isInMemory(file)) assertDirectory(file);
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    // Before anything writes to the file: refuse another application's database untouched.
    const version = checkSchemaVersion(db);
    // In WAL mode a commit is in the WAL file before it returns; synchronous=NORMAL only skips the
    // fsync, so a killed process (kill -9, OOM) loses nothing: the kernel still writes the page
    // cache. Only an OS crash or power loss can drop the last transactions. FULL would fsync
    // every ban for a risk fail2ban does not cover either.
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal' && !isInMemory(file)) {
      // Some network file systems cannot share WAL memory; SQLite then keeps its rollback journal.
      logger.warn(
        { path: file, journalMode: mode },
        'SQLite could not switch to WAL mode; writes will block readers',
      );
    }
    db.pragma('synchronous = NORMAL');
    if (version !== SCHEMA_VERSION) migrate(db);
    const statements = prepare(db);
    return {
      db,
      statements,
      // IMMEDIATE: take the write lock before reading, so a concurrent CLI writer makes us wait
      // (busy timeout) instead of failing the upgrade from a read to a write transaction.
      put: db.transaction((decision: Decision) => putDecision(statements, decision)).immediate,
      putMany: db.transaction((decisions: readonly Decision[]) =>
        decisions.map((decision) => putDecision(statements, decision)),
      ).immediate,
      deleteMany: db.transaction((targets: readonly string[]) =>
        targets.map((target) => {
          const row = statements.deleteBan.get(target);
          return row === undefined ? undefined : toDecision(row);
        }),
      ).immediate,
      purge: db.transaction((nowMs: number, historyBeforeMs: number) => {
        statements.purgeBans.run(nowMs);
        statements.purgeHistory.run(historyBeforeMs);
      }).immediate,
    };
  } catch (err) {
    try {
      if (onCorrupt !== undefined && isCorruption(err) && !isInMemory(file)) onCorrupt(err);
    } finally {
      db.close();
    }
    throw err;
  }
}

function assertDirectory(file: string): void {
  const directory = nodePath.dirname(nodePath.resolve(file));
  let stats: fs.Stats;
  try {
    stats = fs.statSync(directory);
  } catch {
    throw new Error(`directory ${directory} does not exist`);
  }
  if (!stats.isDirectory()) throw new Error(`${directory} is not a directory`);
}

/** Reads the schema version: the first read of the file, so a non-database fails here. */
function checkSchemaVersion(db: Database.Database): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `schema version ${version} was written by a newer portcullis (this one knows up to ${SCHEMA_VERSION})`,
    );
  }
  if (version === 0) {
    const tables = db
      .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .pluck()
      .all();
    // Never add tables to another application's database (e.g. fail2ban's own file).
    if (tables.length > 0) {
      throw new Error(
        `not a portcullis database (it holds the tables ${tables.join(', ')}); give portcullis a file of its own`,
      );
    }
  }
  return version;
}

/** Creates (later: upgrades) the schema. Version 0 is an empty file. */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    // Re-check under the write lock: a CLI opening the same new file may have created it meanwhile.
    if (checkSchemaVersion(db) === SCHEMA_VERSION) return;
    db.exec(SCHEMA_V1);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function prepare(db: Database.Database): Statements {
  return {
    getBan: db.prepare<[string], BanRow>(`SELECT ${BAN_COLUMNS} FROM bans WHERE target = ?`).raw(),
    upsertBan: db.prepare<BanParams>(
      `INSERT INTO bans (${BAN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (target) DO UPDATE SET jail = excluded.jail, reason = excluded.reason,
         started_at = excluded.started_at, expires_at = excluded.expires_at,
         ban_count = excluded.ban_count, dry_run = excluded.dry_run, origin = excluded.origin`,
    ),
    deleteBan: db
      .prepare<[string], BanRow>(`DELETE FROM bans WHERE target = ? RETURNING ${BAN_COLUMNS}`)
      .raw(),
    addHistory: db.prepare<[string, string, number]>(
      'INSERT INTO ban_history (target, jail, time_ms) VALUES (?, ?, ?)',
    ),
    loadFirst: db
      .prepare<{ nowMs: number; limit: number }, BanRow>(
        `SELECT ${BAN_COLUMNS} FROM bans WHERE ${ACTIVE} ORDER BY target LIMIT @limit`,
      )
      .raw(),
    loadAfter: db
      .prepare<{ nowMs: number; limit: number; after: string }, BanRow>(
        `SELECT ${BAN_COLUMNS} FROM bans WHERE target > @after AND ${ACTIVE} ORDER BY target LIMIT @limit`,
      )
      .raw(),
    countAll: db
      .prepare<[string, number], number>('SELECT count(*) FROM ban_history WHERE target = ? AND time_ms >= ?')
      .pluck(),
    countJail: db
      .prepare<[string, number, string], number>(
        'SELECT count(*) FROM ban_history WHERE target = ? AND time_ms >= ? AND jail = ?',
      )
      .pluck(),
    // NULL (permanent) never compares <=, so permanent bans are never purged.
    purgeBans: db.prepare<[number]>('DELETE FROM bans WHERE expires_at <= ?'),
    purgeHistory: db.prepare<[number]>('DELETE FROM ban_history WHERE time_ms < ?'),
    getPosition: db
      .prepare<[string], [number, number, string]>(
        'SELECT "offset", inode, head_hash FROM log_positions WHERE id = ?',
      )
      .raw(),
    setPosition: db.prepare<[string, number, number, string]>(
      `INSERT INTO log_positions (id, "offset", inode, head_hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET "offset" = excluded."offset", inode = excluded.inode,
         head_hash = excluded.head_hash`,
    ),
  };
}

/** The memory store's semantics, inside one transaction. */
function putDecision(statements: Statements, decision: Decision): Decision {
  const existing = statements.getBan.get(decision.target);
  const stored = mergeDecision(existing === undefined ? undefined : toDecision(existing), decision);
  statements.upsertBan.run(
    stored.target,
    stored.jail,
    stored.reason,
    stored.startedAt,
    stored.expiresAt,
    stored.banCount,
    stored.dryRun ? 1 : 0,
    stored.origin,
  );
  if (decision.jail !== 'manual' && !decision.dryRun) {
    statements.addHistory.run(decision.target, decision.jail, decision.startedAt);
  }
  return stored;
}

function toDecision(row: BanRow): Decision {
  return {
    target: row[0],
    jail: row[1],
    reason: row[2],
    startedAt: row[3],
    expiresAt: row[4],
    banCount: row[5],
    dryRun: row[6] === 1,
    origin: row[7],
  };
}

/**
 * Renames `file` to `<file>.corrupt-<ISO time without colons>`, with its `-wal`, `-shm` and
 * `-journal` companions: a stale journal left next to the fresh database would be replayed into it.
 */
function moveAside(file: string, now: Date): string {
  const stamp = now.toISOString().replaceAll(':', '');
  let movedTo = `${file}.corrupt-${stamp}`;
  // Never overwrite evidence of an earlier corruption.
  for (let n = 1; fs.existsSync(movedTo); n++) movedTo = `${file}.corrupt-${stamp}-${n}`;
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    try {
      fs.renameSync(file + suffix, movedTo + suffix);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return movedTo;
}

function openError(file: string, err: unknown): PortcullisError {
  if (err instanceof PortcullisError) return err;
  return new PortcullisError(
    ErrorCodes.STORE_UNAVAILABLE,
    `cannot open SQLite database ${file}: ${reasonOf(err)}`,
    { cause: err, help: OPEN_HELP },
  );
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isSqliteError(err: unknown): err is InstanceType<typeof Database.SqliteError> {
  return err instanceof Database.SqliteError;
}

/** SQLITE_NOTADB: not a database at all (random bytes); SQLITE_CORRUPT*: a malformed one. */
function isCorruption(err: unknown): boolean {
  return isSqliteError(err) && (err.code === 'SQLITE_NOTADB' || err.code.startsWith('SQLITE_CORRUPT'));
}

function isInMemory(file: string): boolean {
  return file === ':memory:';
}
