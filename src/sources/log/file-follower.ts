import { createHash } from 'node:crypto';
import { fstatSync } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { formatDuration } from '../../core/duration.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { LogPosition, Store } from '../../stores/store.js';
import { BatchQueue, type LineHandler } from './batch-queue.js';
import { type DirectoryWatch, rotatedFiles, watchDirectory } from './directory-watch.js';
import { FileLedger } from './file-ledger.js';
import { DEFAULT_MAX_LINE_LENGTH, LineSplitter } from './line-splitter.js';
import { LogThrottle } from './log-throttle.js';

/** The part of a store a follower needs to remember where it stopped. */
export type PositionStore = Pick<Store, 'getPosition' | 'setPosition'>;

/** Options of {@link FileFollower}. */
export interface FileFollowerOptions {
  /** The file to follow. Relative paths resolve against the working directory. */
  path: string;
  /** Receives every complete line, in batches; see {@link LineHandler} for when a batch counts as done. */
  onLines: LineHandler;
  /**
   * Where to load and save the read position (`<jail>:<absolute path>` is the usual id). Without
   * it the follower starts according to `start` every time.
   */
  positions?: { store: PositionStore; id: string };
  /**
   * Shared by the followers of one jail: a file (device + inode) is read by one of them at a time,
   * and one that meets it under another name (a rotated name a glob matches) continues where the
   * other stopped. Default none (each follower on its own).
   */
  ledger?: FileLedger;
  /**
   * Where to start when no position is saved: `end` (default) reads only lines written from now
   * on; `beginning` reads the whole file. A file that appears after the start is always read from
   * its beginning.
   */
  start?: 'end' | 'beginning';
  /** Longest line kept, in bytes; longer lines are cut. Default 16384. */
  maxLineLength?: number;
  /** How often the file is checked even when no change is notified, in ms. Default 1000. */
  pollIntervalMs?: number;
  /** How often an unreadable file is tried again, in ms. Default 5000. */
  retryIntervalMs?: number;
  /** Positions are saved at most this often (and at close), in ms. Default 1000. */
  saveIntervalMs?: number;
  /**
   * A rotated or deleted file is kept open and read until it has not grown for this long, in ms,
   * so lines its writer adds before reopening the log are not lost. Default 5000.
   */
  drainGraceMs?: number;
  /** Bytes read per read call. Default 131072. */
  chunkSize?: number;
  /** Batches handed to `onLines` and not yet settled before reading pauses. Default 16. */
  maxInFlight?: number;
  /** Use `fs.watch` on the directory for low latency (polling stays as the safety net). Default true. */
  watch?: boolean;
  logger?: Logger;
}

/** Counters of one follower. */
export interface FileFollowerStats {
  /** Complete lines handed to `onLines`. */
  lines: number;
  /** Bytes read. */
  bytes: number;
  /** Lines cut to `maxLineLength`. */
  truncatedLines: number;
  /** Rotations, truncations, replacements and deletions seen. */
  rotations: number;
}

const HEAD_BYTES = 512;
/** Saved in a rotated-file slot that is free (no real file has inode 0). */
const NO_POSITION: LogPosition = Object.freeze({ offset: 0, inode: 0, headHash: '' });
/** Rotated-file slots read at start, at most (a chain ends at the first free one). */
const MAX_ROTATED_SLOTS = 64;

/**
 * The id of the `index`th rotated-file slot of a follower saved under `id`: the position of a
 * rotated file still being read, so a restart continues it (see {@link FileFollower}).
 */
export function rotatedPositionId(id: string, index: number): string {
  return `${id}#rotated.${index}`;
}

/**
 * What a batch commits: the position in the file at the path (`undefined`: none known yet) and in
 * each rotated file still being read, oldest first.
 */
interface Snapshot {
  readonly current: LogPosition | undefined;
  readonly rotated: readonly LogPosition[];
}

interface OpenFile {
  readonly fh: FileHandle;
  readonly ino: number;
  /** `dev:ino`, for the ledger. */
  readonly key: string;
  /** The first line (at most HEAD_BYTES), once the file has one. */
  head: Buffer | undefined;
  headHash: string;
  /** Next byte to read. */
  offset: number;
  readonly splitter: LineSplitter;
  lastGrowthMs: number;
}

/**
 * Follows one log file the way fail2ban does, and survives what logrotate and friends do to it:
 *
 * - **rename + create**: the old file is read to its end (and kept open for `drainGraceMs` in case
 *   its writer has not reopened yet), the new one is read from byte 0;
 * - **copytruncate**: the size falls below the read offset: read again from 0;
 * - **replaced in place** (same inode, different first line): read again from 0;
 * - **deleted**: what is left is read, then the follower waits for the path to come back and reads
 *   the new file from 0;
 * - **missing or unreadable**: logged once, retried; the follower never throws after `start()`.
 *
 * With `positions`, the offset after the last line whose batch was fully handled is saved (at most
 * every `saveIntervalMs`, and at close) with the file's inode and a hash of its first line; on the
 * next start the follower resumes there if the file is still the same one, otherwise reads it from 0.
 * A rotated file still being read has its own saved position ({@link rotatedPositionId}; slots
 * `0..n-1`, the first free one holds inode 0). On start, a saved file that is no longer at the path
 * (rotated while stopped, or while being read) is looked for by inode and first line among the
 * rotated names in the same directory (`auth.log.1`, `auth.log-20261201`; not compressed ones,
 * also after a second rotation such as `.1` → `.2`), read on from its saved position, then
 * forgotten. One that is gone is reported once (a warning) and forgotten.
 */
export class FileFollower {
  readonly path: string;
  readonly #options: Required<
    Omit<FileFollowerOptions, 'positions' | 'onLines' | 'logger' | 'path' | 'ledger'>
  >;
  readonly #positions: FileFollowerOptions['positions'];
  readonly #ledger: FileLedger | undefined;
  #announcedShared = false;
  readonly #logger: Logger;
  readonly #queue: BatchQueue<Snapshot>;
  #buffer: Buffer;
  readonly #stats: FileFollowerStats = { lines: 0, bytes: 0, truncatedLines: 0, rotations: 0 };
  readonly #truncationLog = new LogThrottle(60_000, 1);
  #current: OpenFile | undefined;
  #old: OpenFile[] = [];
  /** Where to resume at the next open, if that file is still the same one. */
  #resume: LogPosition | undefined;
  #state: 'new' | 'waiting' | 'error' | 'open' = 'new';
  #errorCode: string | undefined;
  #retryAtMs = 0;
  #announcedWaiting = false;
  #watching: DirectoryWatch | undefined;
  #watchingAll: DirectoryWatch | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  #committed: Snapshot | undefined;
  #saved: LogPosition | undefined;
  /** What the rotated-file slots hold in the store, as far as this follower knows. */
  #savedRotated: LogPosition[] = [];
  #saving: Promise<void> = Promise.resolve();
  #running: Promise<void> | undefined;
  #again = false;
  #started = false;
  #starting: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: FileFollowerOptions) {
    this.path = resolve(options.path);
    this.#options = {
      start: options.start ?? 'end',
      maxLineLength: options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      retryIntervalMs: options.retryIntervalMs ?? 5000,
      saveIntervalMs: options.saveIntervalMs ?? 1000,
      drainGraceMs: options.drainGraceMs ?? 5000,
      chunkSize: options.chunkSize ?? 128 * 1024,
      maxInFlight: options.maxInFlight ?? 16,
      watch: options.watch ?? true,
    };
    if (this.#options.start !== 'end' && this.#options.start !== 'beginning') {
      throw new RangeError(
        `start: expected "end" or "beginning", got ${JSON.stringify(this.#options.start)}`,
      );
    }
    for (const key of [
      'pollIntervalMs',
      'retryIntervalMs',
      'saveIntervalMs',
      'chunkSize',
      'maxInFlight',
    ] as const) {
      const value = this.#options[key];
      if (!Number.isFinite(value) || value <= 0)
        throw new RangeError(`${key}: expected a positive number, got ${value}`);
    }
    this.#positions = options.positions;
    this.#ledger = options.ledger;
    this.#logger = options.logger ?? silentLogger;
    // Grown to chunkSize on the first full read: idle followers of a big glob stay small.
    this.#buffer = Buffer.allocUnsafe(Math.min(16_384, this.#options.chunkSize));
    this.#queue = new BatchQueue<Snapshot>(options.onLines, {
      maxInFlight: this.#options.maxInFlight,
      onCommit: (snapshot) => {
        this.#committed = snapshot;
        this.#scheduleSave();
      },
      onError: (error) =>
        this.#logger.error(
          { err: error, path: this.path },
          `${this.path}: lines could not be handled; its position will not advance until restart`,
        ),
    });
  }

  get stats(): FileFollowerStats {
    return { ...this.#stats, truncatedLines: this.#truncatedLines() };
  }

  /**
   * Bytes of the open file not read yet (its size now minus the read offset), for the follow-lag
   * metric; `undefined` while no file is open. One `fstat`, so call it at scrape time only.
   */
  get lagBytes(): number | undefined {
    const current = this.#current;
    if (current === undefined) return undefined;
    try {
      return Math.max(0, fstatSync(current.fh.fd).size - current.offset);
    } catch {
      return undefined;
    }
  }

  /** True while a file is open (or a rotated one still being read) or lines are being handled. */
  get active(): boolean {
    return this.#current !== undefined || this.#old.length > 0 || this.#queue.inFlight > 0;
  }

  /** The last position in the file at the path whose lines were all handled (saved or about to be). */
  get committedPosition(): LogPosition | undefined {
    return this.#committed?.current;
  }

  /** Positions in the rotated files still being read, oldest first, as last committed. */
  get committedRotated(): readonly LogPosition[] {
    return this.#committed?.rotated ?? [];
  }

  /**
   * Loads the saved position, opens the file if it exists and starts watching. Resolves once the
   * start offset is decided; reading continues in the background. Never rejects for file problems.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#started = true;
    let rotated: LogPosition[] = [];
    if (this.#positions !== undefined) {
      const { store, id } = this.#positions;
      try {
        this.#resume = await store.getPosition(id);
        this.#saved = this.#resume;
        for (let index = 0; index < MAX_ROTATED_SLOTS; index++) {
          const slot = await store.getPosition(rotatedPositionId(id, index));
          if (slot === undefined || slot.inode === 0) break;
          rotated.push(slot);
        }
        this.#savedRotated = [...rotated];
        for (const position of [...(this.#resume === undefined ? [] : [this.#resume]), ...rotated])
          this.#ledger?.seed(position);
      } catch (error) {
        rotated = [];
        this.#logger.warn(
          { err: error, path: this.path },
          `${this.path}: saved position unavailable; starting afresh`,
        );
      }
    }
    if (this.#closed) return;
    const reopened = await this.#reopenRotated(rotated);
    if (this.#closed) return;
    await this.#open(true);
    if (this.#closed) return;
    // Forget rotated files that are gone, and save where the ones found continue.
    if (reopened) this.#queue.mark(this.#snapshot());
    this.#watch();
    this.#pollTimer = setInterval(() => {
      this.#watch();
      this.#schedule();
    }, this.#options.pollIntervalMs).unref();
    this.#schedule();
  }

  /**
   * Stops reading, waits until every batch already handed to `onLines` has settled, saves the
   * position and closes the files. A partial last line stays unread (it is read whole next time).
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      clearInterval(this.#pollTimer);
      clearTimeout(this.#saveTimer);
      this.#watching?.close();
      this.#watchingAll?.close();
      await this.#starting?.catch(() => {});
      await this.#running;
      await this.#queue.drain();
      const files = [...this.#old, ...(this.#current === undefined ? [] : [this.#current])];
      this.#old = [];
      this.#current = undefined;
      for (const file of files) this.#release(file);
      await Promise.all(files.map((file) => file.fh.close().catch(() => {})));
      await this.#save();
    })();
    return this.#closing;
  }

  #schedule(): void {
    if (this.#closed || !this.#started) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#cycle();
      } catch (error) {
        await this.#failed(error);
      }
    } while (this.#again && !this.#closed);
    this.#running = undefined;
  }

  async #cycle(): Promise<void> {
    for (const old of [...this.#old]) await this.#drainOld(old);
    if (this.#closed) return;
    if (this.#current === undefined) {
      if (this.#state === 'error' && Date.now() < this.#retryAtMs) return;
      if (!(await this.#open(false))) return;
    }
    const file = this.#current as OpenFile;
    const { size } = await file.fh.stat();
    if (size < file.offset) {
      await this.#restart(file, size, 'truncated');
    } else if (file.head === undefined) {
      this.#setHead(file, await readHead(file.fh, size));
    } else {
      const head = await readHead(file.fh, size);
      if (head === undefined || !head.equals(file.head)) await this.#restart(file, size, 'replaced');
    }
    await this.#drain(file, true);
    if (this.#closed) return;
    let ino: number;
    try {
      ino = (await stat(this.path)).ino;
    } catch (error) {
      if (!isMissing(error)) throw error;
      this.#retire(file, 'deleted');
      return;
    }
    if (ino !== file.ino) {
      this.#retire(file, 'rotated');
      this.#again = true;
    }
  }

  /**
   * At start: finds the saved files that are no longer at the path among its rotated names and
   * queues them (oldest first) to be read on from their saved positions; reports the ones that are
   * gone. Returns true when saved rotated positions changed (some to save or forget).
   */
  async #reopenRotated(slots: readonly LogPosition[]): Promise<boolean> {
    const main = this.#resume;
    if ((main === undefined || main.inode === 0) && slots.length === 0) return false;
    let atPath: number | undefined;
    try {
      const info = await stat(this.path);
      if (info.isFile()) atPath = info.ino;
    } catch {
      // Missing or unreadable: #open() says so.
    }
    const wanted: LogPosition[] = [];
    const mainMoved = main !== undefined && main.inode !== 0 && main.inode !== atPath;
    if (mainMoved) wanted.push(main);
    for (const slot of slots) {
      // The file came back to the path (renamed back): it resumes there, not as a rotated one.
      if (slot.inode === atPath) {
        if (main?.inode !== atPath) this.#resume = slot;
        continue;
      }
      const same = wanted.findIndex(
        (other) => other.inode === slot.inode && other.headHash === slot.headHash,
      );
      if (same === -1) wanted.push(slot);
      else if (slot.offset > (wanted[same] as LogPosition).offset) wanted[same] = slot;
    }
    if (wanted.length === 0) return slots.length > 0;
    const found = await rotatedFiles(dirname(this.path), basename(this.path));
    let mainFound = false;
    for (const position of wanted) {
      const candidate = found.get(position.inode);
      const file = candidate === undefined ? undefined : await this.#openRotated(candidate.path, position);
      if (file === 'elsewhere') continue;
      if (file !== undefined) {
        if (file.ino === main?.inode) mainFound = true;
        this.#old.push(file);
        this.#logger.info(
          { path: this.path, rotated: candidate?.path, offset: file.offset },
          `${this.path} was rotated: reading ${candidate?.path} on from byte ${file.offset}, then ${this.path}`,
        );
        continue;
      }
      this.#logger.warn(
        { path: this.path, inode: position.inode, offset: position.offset },
        `${this.path}: the rotated file being read (inode ${position.inode}, read to byte ${position.offset}) is gone or compressed; lines written to it after that were not read`,
      );
    }
    // Read on as a rotated file: the path's own next file is a new one, read from 0.
    if (mainFound && atPath === undefined) this.#resume = NO_POSITION;
    return true;
  }

  /**
   * Opens a rotated file found under `path` for a saved position, if it is still that file (inode,
   * first line, long enough). `'elsewhere'`: another follower of the jail is reading it.
   */
  async #openRotated(path: string, position: LogPosition): Promise<OpenFile | 'elsewhere' | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch {
      return undefined;
    }
    try {
      const info = await fh.stat();
      const head = await readHead(fh, info.size);
      const file: OpenFile = {
        fh,
        ino: info.ino,
        key: FileLedger.key(info.dev, info.ino),
        head: undefined,
        headHash: '',
        offset: position.offset,
        splitter: new LineSplitter(this.#options.maxLineLength),
        lastGrowthMs: Date.now(),
      };
      this.#setHead(file, head);
      const same =
        info.isFile() &&
        info.ino === position.inode &&
        (position.headHash === '' || position.headHash === file.headHash) &&
        position.offset <= info.size;
      if (!same) {
        await fh.close();
        return undefined;
      }
      if (this.#ledger !== undefined && !this.#ledger.claim(file.key, this)) {
        await fh.close();
        return 'elsewhere';
      }
      return file;
    } catch {
      await fh.close().catch(() => {});
      return undefined;
    }
  }

  /** Opens the path; decides where to start. Returns false when it is missing or unreadable. */
  async #open(initial: boolean): Promise<boolean> {
    let fh: FileHandle;
    try {
      // Refuse directories, FIFOs and devices before open(): a FIFO would block the reading thread.
      const info = await stat(this.path);
      if (!info.isFile()) throw notAFile(this.path, info.isDirectory());
      fh = await open(this.path, 'r');
    } catch (error) {
      this.#openFailed(error);
      return false;
    }
    try {
      const info = await fh.stat();
      if (!info.isFile()) throw notAFile(this.path, info.isDirectory());
      if (this.#closed) {
        await fh.close();
        return false;
      }
      const key = FileLedger.key(info.dev, info.ino);
      if (this.#ledger !== undefined && !this.#ledger.claim(key, this)) {
        // Another path of this jail is reading this very file (a glob matching rotated names).
        await fh.close();
        this.#state = 'waiting';
        if (!this.#announcedShared) {
          this.#announcedShared = true;
          this.#logger.info(
            { path: this.path },
            `${this.path} is being read under another name; waiting for it`,
          );
        }
        return false;
      }
      this.#announcedShared = false;
      const head = await readHead(fh, info.size);
      const file: OpenFile = {
        fh,
        ino: info.ino,
        key,
        head: undefined,
        headHash: '',
        offset: 0,
        splitter: new LineSplitter(this.#options.maxLineLength),
        lastGrowthMs: Date.now(),
      };
      this.#setHead(file, head);
      const resume = this.#resume;
      this.#resume = undefined;
      let how: string;
      let elsewhere: number | undefined;
      if (resume !== undefined) {
        const same =
          resume.inode === file.ino &&
          (resume.headHash === '' || resume.headHash === file.headHash) &&
          resume.offset <= info.size;
        const elsewhere = same ? undefined : this.#readElsewhere(file, info.size);
        file.offset = same ? resume.offset : (elsewhere ?? 0);
        how = same
          ? `resuming at byte ${file.offset}`
          : elsewhere !== undefined
            ? `it was read to byte ${elsewhere} under another name; continuing there`
            : initial
              ? 'it changed while stopped; reading it from the start'
              : 'reading it from the start';
      } else if (this.#readElsewhere(file, info.size) !== undefined) {
        elsewhere = this.#readElsewhere(file, info.size) as number;
        file.offset = elsewhere;
        how = `it was read to byte ${elsewhere} under another name; continuing there`;
      } else if (initial && this.#options.start === 'end') {
        file.offset = await lastLineStart(fh, info.size);
        how = 'reading new lines only';
      } else {
        how = 'reading it from the start';
      }
      if (this.#errorCode !== undefined)
        this.#logger.info({ path: this.path }, `${this.path} is readable again`);
      this.#errorCode = undefined;
      this.#announcedWaiting = false;
      this.#state = 'open';
      this.#current = file;
      this.#queue.mark(this.#snapshot());
      this.#logger.info({ path: this.path, offset: file.offset }, `following ${this.path}: ${how}`);
      return true;
    } catch (error) {
      await fh.close().catch(() => {});
      this.#openFailed(error);
      return false;
    }
  }

  #openFailed(error: unknown): void {
    if (isMissing(error)) {
      this.#state = 'waiting';
      if (!this.#announcedWaiting) {
        this.#announcedWaiting = true;
        this.#logger.info({ path: this.path }, `${this.path} does not exist (yet); waiting for it`);
      }
      return;
    }
    const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    this.#state = 'error';
    this.#retryAtMs = Date.now() + this.#options.retryIntervalMs;
    if (code !== this.#errorCode) {
      this.#errorCode = code;
      this.#logger.error(
        { path: this.path, code },
        `cannot read ${this.path}: ${describeError(error)}; retrying every ${formatDuration(this.#options.retryIntervalMs)}`,
      );
    }
  }

  /** An unexpected error while reading an open file: close it, retry later from the same place. */
  async #failed(error: unknown): Promise<void> {
    const file = this.#current;
    if (file !== undefined) {
      this.#current = undefined;
      this.#resume = this.#positionOf(file);
      this.#release(file);
      this.#stats.truncatedLines += file.splitter.truncatedLines;
      await file.fh.close().catch(() => {});
    }
    this.#openFailed(error);
  }

  /** Reads to the end of the file, handing complete lines to the queue. */
  async #drain(file: OpenFile, tracked: boolean): Promise<boolean> {
    let grew = false;
    while (!this.#closed) {
      const { bytesRead } = await file.fh.read(this.#buffer, 0, this.#buffer.length, file.offset);
      if (bytesRead === 0) break;
      grew = true;
      file.offset += bytesRead;
      this.#stats.bytes += bytesRead;
      const before = file.splitter.truncatedLines;
      const lines = file.splitter.push(this.#buffer.subarray(0, bytesRead));
      if (file.splitter.truncatedLines !== before) this.#noteTruncated(file, before);
      if (lines.length > 0) {
        if (tracked && file.head === undefined) this.#setHead(file, await readHead(file.fh, file.offset));
        await this.#hand(lines, this.#snapshot());
      }
      if (bytesRead < this.#buffer.length) break;
      if (this.#buffer.length < this.#options.chunkSize)
        this.#buffer = Buffer.allocUnsafe(this.#options.chunkSize);
    }
    return grew;
  }

  async #drainOld(file: OpenFile): Promise<void> {
    let grew = false;
    try {
      grew = await this.#drain(file, false);
    } catch {
      // An old file that cannot be read any more is simply done.
      file.lastGrowthMs = Number.NEGATIVE_INFINITY;
    }
    const now = Date.now();
    if (grew) file.lastGrowthMs = now;
    if (this.#closed || now - file.lastGrowthMs < this.#options.drainGraceMs) return;
    const tail = file.splitter.flush();
    this.#old = this.#old.filter((other) => other !== file);
    // Its slot is freed once its last line is handled: a restart before that reads the line again.
    await this.#hand(tail === undefined ? [] : [tail], this.#snapshot());
    this.#stats.truncatedLines += file.splitter.truncatedLines;
    this.#release(file);
    await file.fh.close().catch(() => {});
    this.#watch();
  }

  /** Lets the ledger know this follower is done with `file` (and how far it read it). */
  #release(file: OpenFile): void {
    this.#ledger?.release(file.key, this, file.offset - file.splitter.heldBytes, file.headHash);
  }

  /** Where another follower of the jail (or a saved position) left this file, if it fits. */
  #readElsewhere(file: OpenFile, size: number): number | undefined {
    const offset = this.#ledger?.readTo(file.key, file.ino, file.headHash);
    return offset !== undefined && offset <= size ? offset : undefined;
  }

  /** The current file went away (deleted) or the path names another file now (rotated). */
  #retire(file: OpenFile, how: 'deleted' | 'rotated'): void {
    this.#current = undefined;
    // Whatever shows up at the path next is a new file: saved as such, so a restart reads it from 0.
    this.#resume = NO_POSITION;
    this.#stats.rotations++;
    file.lastGrowthMs = Date.now();
    this.#old.push(file);
    this.#watch();
    if (how === 'deleted') {
      this.#state = 'waiting';
      this.#announcedWaiting = true;
      this.#logger.info(
        { path: this.path },
        `${this.path} was deleted; reading what is left, then waiting for it`,
      );
    } else {
      this.#logger.info(
        { path: this.path },
        `${this.path} was rotated; finishing the old file, then the new one`,
      );
    }
  }

  /** Copytruncate or in-place replacement: the same file now holds other lines. */
  async #restart(file: OpenFile, size: number, how: 'truncated' | 'replaced'): Promise<void> {
    this.#stats.rotations++;
    const tail = file.splitter.flush();
    if (tail !== undefined) await this.#hand([tail], undefined);
    file.splitter.reset();
    file.offset = 0;
    this.#setHead(file, await readHead(file.fh, size));
    this.#queue.mark(this.#snapshot());
    this.#logger.info({ path: this.path }, `${this.path} was ${how}; reading it from the start`);
  }

  async #hand(lines: string[], mark: Snapshot | undefined): Promise<void> {
    if (lines.length === 0) {
      if (mark !== undefined) this.#queue.mark(mark);
      return;
    }
    this.#stats.lines += lines.length;
    const full = this.#queue.push({ lines, source: this.path }, mark);
    if (full !== undefined) await full;
  }

  /** Where every open file stands now (its lines handed over so far). */
  #snapshot(): Snapshot {
    const current = this.#current === undefined ? this.#resume : this.#positionOf(this.#current);
    return { current, rotated: this.#old.map((file) => this.#positionOf(file)) };
  }

  #setHead(file: OpenFile, head: Buffer | undefined): void {
    file.head = head === undefined ? undefined : Buffer.from(head);
    file.headHash = head === undefined ? '' : createHash('sha256').update(head).digest('hex').slice(0, 32);
  }

  #positionOf(file: OpenFile): LogPosition {
    return { offset: file.offset - file.splitter.heldBytes, inode: file.ino, headHash: file.headHash };
  }

  #noteTruncated(file: OpenFile, before: number): void {
    const { allowed, suppressed } = this.#truncationLog.take();
    if (!allowed) return;
    const more = suppressed > 0 ? ` (and ${suppressed} more since the last warning)` : '';
    this.#logger.warn(
      {
        path: this.path,
        cut: file.splitter.truncatedLines - before,
        maxLineLength: this.#options.maxLineLength,
      },
      `${this.path}: line longer than ${this.#options.maxLineLength} bytes cut${more}`,
    );
  }

  #truncatedLines(): number {
    let count = this.#stats.truncatedLines;
    for (const file of [...this.#old, ...(this.#current === undefined ? [] : [this.#current])]) {
      count += file.splitter.truncatedLines;
    }
    return count;
  }

  /**
   * Subscribes to changes of our file name in its directory, and while a rotated file is still
   * being read, to every change there (its writes show up under its new name).
   */
  #watch(): void {
    if (!this.#options.watch || this.#closed) return;
    const dir = dirname(this.path);
    if (this.#watching === undefined || this.#watching.broken) {
      this.#watching?.close();
      this.#watching = subscribe(dir, basename(this.path), this.#onChange);
    }
    if (this.#old.length > 0) {
      if (this.#watchingAll === undefined || this.#watchingAll.broken) {
        this.#watchingAll?.close();
        this.#watchingAll = subscribe(dir, undefined, this.#onChange);
      }
    } else if (this.#watchingAll !== undefined) {
      this.#watchingAll.close();
      this.#watchingAll = undefined;
    }
  }

  readonly #onChange = (): void => this.#schedule();

  #scheduleSave(): void {
    if (this.#positions === undefined || this.#saveTimer !== undefined || this.#closed) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      void this.#save();
    }, this.#options.saveIntervalMs).unref();
  }

  /**
   * Saves the committed positions that moved; saves never overlap. Rotated-file slots go first and
   * the path's position last, freed slots from the highest down: a crash between two writes leaves
   * a file known twice (the restart keeps the furthest position), never a file forgotten.
   */
  #save(): Promise<void> {
    this.#saving = this.#saving.then(async () => {
      const positions = this.#positions;
      const snapshot = this.#committed;
      if (positions === undefined || snapshot === undefined) return;
      const { store, id } = positions;
      try {
        const saved = this.#savedRotated;
        for (const [index, position] of snapshot.rotated.entries()) {
          if (samePosition(position, saved[index])) continue;
          await store.setPosition(rotatedPositionId(id, index), position);
          saved[index] = position;
        }
        for (let index = saved.length - 1; index >= snapshot.rotated.length; index--) {
          await store.setPosition(rotatedPositionId(id, index), NO_POSITION);
          saved.length = index;
        }
        const position = snapshot.current;
        if (position === undefined || samePosition(position, this.#saved)) return;
        await store.setPosition(id, position);
        this.#saved = position;
      } catch (error) {
        this.#logger.warn({ err: error, path: this.path }, `${this.path}: could not save the read position`);
        this.#scheduleSave();
      }
    });
    return this.#saving;
  }
}

/** The file's first line (at most 512 bytes), or `undefined` while it has no complete one. */
async function readHead(fh: FileHandle, size: number): Promise<Buffer | undefined> {
  const length = Math.min(size, HEAD_BYTES);
  if (length === 0) return undefined;
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buffer, 0, length, 0);
  const newline = buffer.subarray(0, bytesRead).indexOf(0x0a);
  if (newline !== -1) return buffer.subarray(0, newline + 1);
  return bytesRead === HEAD_BYTES ? buffer : undefined;
}

/** Offset just after the last `\n` before `size` (looking back 64 KiB at most), for `start: end`. */
async function lastLineStart(fh: FileHandle, size: number): Promise<number> {
  const length = Math.min(size, 65_536);
  if (length === 0) return 0;
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buffer, 0, length, size - length);
  const newline = buffer.subarray(0, bytesRead).lastIndexOf(0x0a);
  if (newline !== -1) return size - length + newline + 1;
  return length === size ? 0 : size;
}

/** A directory watch, or `undefined` when the directory cannot be watched (yet): polling covers it. */
function subscribe(dir: string, name: string | undefined, listener: () => void): DirectoryWatch | undefined {
  try {
    return watchDirectory(dir, name, listener);
  } catch {
    return undefined;
  }
}

function samePosition(a: LogPosition, b: LogPosition | undefined): boolean {
  return b !== undefined && a.offset === b.offset && a.inode === b.inode && a.headHash === b.headHash;
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function notAFile(path: string, directory: boolean): NodeJS.ErrnoException {
  return Object.assign(new Error(`${path} is not a regular file`), {
    code: directory ? 'EISDIR' : 'ENOTREG',
  });
}

function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'ENOTREG') return 'not a regular file';
  if (code === 'ELOOP') return 'too many symbolic links';
  return error instanceof Error ? error.message : String(error);
}
