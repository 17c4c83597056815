import fs from 'node:fs';
import nodePath from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCodes, PortcullisError } from '../core/errors.js';
import type { Decision } from '../core/types.js';

/** A write the store has not taken yet: a decision to put, or a target to delete. */
export type PendingWrite = { kind: 'put'; decision: Decision } | { kind: 'delete' };

/**
 * Writes decided while the store is unreachable, one per target (the latest wins), kept until the
 * store has them. {@link createOutbox} with a path keeps them in a local SQLite file so that a
 * process killed during an outage replays them at its next start.
 */
export interface Outbox {
  readonly size: number;
  /** The file behind it, or `null` in memory. */
  readonly path: string | null;
  get(target: string): PendingWrite | undefined;
  set(target: string, write: PendingWrite): void;
  delete(target: string): void;
  /** A snapshot, oldest write first. */
  entries(): [target: string, write: PendingWrite][];
  /** Idempotent. */
  close(): void;
}

/** An outbox in memory (lost with the process), or in the SQLite file at `path`. */
export function createOutbox(path: string | null): Outbox {
  return path === null ? new MemoryOutbox() : new FileOutbox(path);
}

class MemoryOutbox implements Outbox {
  readonly path: string | null = null;
  readonly #writes = new Map<string, PendingWrite>();

  get size(): number {
    return this.#writes.size;
  }

  get(target: string): PendingWrite | undefined {
    return this.#writes.get(target);
  }

  set(target: string, write: PendingWrite): void {
    // Re-insert so entries() stays in the order the writes were made.
    this.#writes.delete(target);
    this.#writes.set(target, write);
  }

  delete(target: string): void {
    this.#writes.delete(target);
  }

  entries(): [string, PendingWrite][] {
    return [...this.#writes];
  }

  close(): void {}
}

/**
 * The memory outbox mirrored into a SQLite file, written synchronously on every change (WAL,
 * `synchronous = NORMAL`: survives `kill -9`; an outage costs one small write per decision).
 */
class FileOutbox extends MemoryOutbox {
  override readonly path: string;
  readonly #db: Database.Database;
  readonly #put: Database.Statement<[string, string]>;
  readonly #del: Database.Statement<[string]>;
  #closed = false;

  constructor(path: string) {
    super();
    this.path = nodePath.resolve(path);
    try {
      fs.mkdirSync(nodePath.dirname(this.path), { recursive: false });
    } catch {
      // The directory exists (or cannot be made: the open below says so).
    }
    try {
      this.#db = new Database(this.path, { timeout: 5000 });
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.exec(
        'CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT UNIQUE NOT NULL, write TEXT NOT NULL)',
      );
    } catch (error) {
      throw new PortcullisError(
        ErrorCodes.STORE_UNAVAILABLE,
        `cannot open the outbox file ${this.path}: ${(error as Error).message}`,
        {
          cause: error,
          help: 'store.outbox must name a file in a directory portcullis may write (or null to keep the outbox in memory).',
        },
      );
    }
    this.#put = this.#db.prepare('INSERT OR REPLACE INTO outbox (target, write) VALUES (?, ?)');
    this.#del = this.#db.prepare('DELETE FROM outbox WHERE target = ?');
    const rows = this.#db.prepare('SELECT target, write FROM outbox ORDER BY seq').raw().all() as [
      string,
      string,
    ][];
    for (const [target, text] of rows) {
      const write = parseWrite(text);
      if (write !== undefined) super.set(target, write);
    }
  }

  override set(target: string, write: PendingWrite): void {
    super.set(target, write);
    if (!this.#closed) this.#put.run(target, JSON.stringify(write));
  }

  override delete(target: string): void {
    if (super.get(target) === undefined) return;
    super.delete(target);
    if (!this.#closed) this.#del.run(target);
  }

  override close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

function parseWrite(text: string): PendingWrite | undefined {
  try {
    const value = JSON.parse(text) as PendingWrite;
    if (value.kind === 'delete') return { kind: 'delete' };
    if (value.kind === 'put' && typeof value.decision?.target === 'string') return value;
  } catch {
    // A row from a newer or broken version: skip it rather than refuse to start.
  }
  return undefined;
}
