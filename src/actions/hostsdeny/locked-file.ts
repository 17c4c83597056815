import { randomUUID } from 'node:crypto';
import {
  type FileHandle,
  link,
  open,
  readFile,
  realpath,
  rename,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';

/**
 * Rewrites a shared file (hosts.deny) atomically and one writer at a time.
 *
 * - **Atomic**: the new text goes to a temp file in the same directory (same file system), is
 *   flushed to disk, given the old file's mode and owner, and renamed over it: a reader (a wrapped
 *   daemon accepting a connection) sees the old file or the new one, never half of one. A symlink
 *   is followed: the file it points to is replaced, the link stays.
 * - **One writer**: writers in this process queue on a promise per file; writers in other processes
 *   (several portcullis daemons sharing `/etc/hosts.deny`) take `<file>.portcullis.lock`, created
 *   with `O_EXCL`, holding `pid host token`. A lock older than `staleLockMs`, or whose process is
 *   gone (same host), is broken: its holder crashed between create and unlink.
 * - **Hand edits**: just before the rename the file is checked again (inode, size, mtime); if an
 *   admin (or a program that takes no lock) changed it meanwhile, the edit is made again on the
 *   new text, so their change is not overwritten.
 */

export interface LockedFileOptions {
  /** How long to wait for another writer's lock, ms. Default 10,000. */
  lockTimeoutMs?: number;
  /** A lock older than this is a crashed writer's and is broken, ms. Default 30,000. */
  staleLockMs?: number;
  /** Mode of a file created by the first write. Default 0o644. */
  createMode?: number;
}

/** Given the current text (`null`: no file), the new text, or `null` to leave the file as it is. */
export type FileEdit = (current: string | null) => string | null;

const DEFAULTS = { lockTimeoutMs: 10_000, staleLockMs: 30_000, createMode: 0o644 } as const;
/** Re-reads after a concurrent change before giving up. */
const MAX_ATTEMPTS = 8;

const queues = new Map<string, Promise<unknown>>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const code = (error: unknown) => (error as NodeJS.ErrnoException).code;

function failed(message: string, cause?: unknown): PortcullisError {
  return new PortcullisError(ErrorCodes.ACTION_FAILED, message, { cause });
}

/** The path written: a symlink's target (a missing file: the path itself). */
async function target(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    if (code(error) === 'ENOENT') return path;
    throw error;
  }
}

/**
 * Applies `edit` to the file under the lock and writes the result atomically. Resolves `true` when
 * it wrote. Rejects (`PC_ERR_ACTION_FAILED`) when the lock cannot be had in time, the directory is
 * not writable, or the owner cannot be kept.
 */
export async function rewriteLockedFile(
  path: string,
  edit: FileEdit,
  options: LockedFileOptions = {},
): Promise<boolean> {
  const file = await target(path);
  const previous = queues.get(file) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(() => locked(file, edit, { ...DEFAULTS, ...options }));
  queues.set(file, run);
  try {
    return await run;
  } finally {
    if (queues.get(file) === run) queues.delete(file);
  }
}

async function locked(file: string, edit: FileEdit, options: Required<LockedFileOptions>): Promise<boolean> {
  const lock = `${file}.portcullis.lock`;
  const token = await acquire(lock, options);
  try {
    for (let attempt = 1; ; attempt++) {
      const before = await snapshot(file);
      const next = edit(before?.text ?? null);
      if (next === null || next === before?.text) return false;
      const written = await writeTemp(file, next, before, options.createMode);
      const now = await snapshot(file, false);
      if (sameFile(before, now)) {
        await rename(written, file).catch(async (error) => {
          await unlink(written).catch(() => {});
          throw failed(`cannot replace ${file}: ${(error as Error).message}`, error);
        });
        await syncDir(dirname(file));
        return true;
      }
      await unlink(written).catch(() => {});
      if (attempt >= MAX_ATTEMPTS)
        throw failed(`${file} kept changing while being rewritten; retrying later`);
    }
  } finally {
    await release(lock, token);
  }
}

interface Snapshot {
  text: string;
  ino: number;
  size: number;
  mtimeMs: number;
  mode: number;
  uid: number;
  gid: number;
}

async function snapshot(file: string, withText = true): Promise<Snapshot | null> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw failed(`${file} is not a regular file`);
    const text = withText ? await readFile(file, 'utf8') : '';
    return {
      text,
      ino: info.ino,
      size: info.size,
      mtimeMs: info.mtimeMs,
      mode: info.mode,
      uid: info.uid,
      gid: info.gid,
    };
  } catch (error) {
    if (code(error) === 'ENOENT') return null;
    if (error instanceof PortcullisError) throw error;
    throw failed(`cannot read ${file}: ${(error as Error).message}`, error);
  }
}

function sameFile(a: Snapshot | null, b: Snapshot | null): boolean {
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Writes `text` to a new temp file beside `file` with the old file's mode and owner; its path. */
async function writeTemp(
  file: string,
  text: string,
  old: Snapshot | null,
  createMode: number,
): Promise<string> {
  const temp = join(
    dirname(file),
    `.${basename(file)}.portcullis-${process.pid}-${randomUUID().slice(0, 8)}`,
  );
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx', 0o600);
    await handle.writeFile(text, 'utf8');
    // Explicitly, whatever the umask: the old file's permission bits (setuid etc. included), or 0644.
    await handle.chmod(old === null ? createMode : old.mode & 0o7777);
    if (old !== null) {
      const mine = await handle.stat();
      if (mine.uid !== old.uid || mine.gid !== old.gid) await handle.chown(old.uid, old.gid);
    }
    await handle.datasync();
    await handle.close();
    handle = undefined;
    return temp;
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    const why =
      code(error) === 'EPERM' && old !== null
        ? `cannot keep its owner ${old.uid}:${old.gid} (run as root, or as that owner)`
        : (error as Error).message;
    throw failed(`cannot write ${file}: ${why}`, error);
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    await handle.sync().finally(() => handle.close());
  } catch {
    // Some file systems refuse fsync on a directory; the rename is done either way.
  }
}

async function acquire(lock: string, options: Required<LockedFileOptions>): Promise<string> {
  const token = `${process.pid} ${hostname()} ${randomUUID()}`;
  const deadline = Date.now() + options.lockTimeoutMs;
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      await writeFile(lock, `${token}\n`, { flag: 'wx', mode: 0o600 });
      return token;
    } catch (error) {
      if (code(error) !== 'EEXIST')
        throw failed(`cannot create the lock ${lock}: ${(error as Error).message}`, error);
    }
    if (await breakIfStale(lock, options.staleLockMs)) continue;
    if (Date.now() >= deadline)
      throw failed(`${lock} is held by another writer (${options.lockTimeoutMs} ms); retrying later`);
    await sleep(wait + Math.random() * wait);
  }
}

/** Removes the lock when its writer is gone; `true` when it did (or the lock went meanwhile). */
async function breakIfStale(lock: string, staleMs: number): Promise<boolean> {
  let content: string;
  let ageMs: number;
  try {
    ageMs = Date.now() - (await stat(lock)).mtimeMs;
    content = await readFile(lock, 'utf8');
  } catch (error) {
    if (code(error) === 'ENOENT') return true;
    throw error;
  }
  const [pid, host] = content.trim().split(' ');
  let dead = false;
  if (host === hostname() && pid !== undefined && /^\d+$/.test(pid)) {
    try {
      process.kill(Number(pid), 0);
    } catch (error) {
      dead = code(error) === 'ESRCH';
    }
  }
  if (!dead && ageMs < staleMs) return false;
  // Move it aside first and check it is the one judged stale: a fresh lock taken meanwhile is put back.
  const aside = `${lock}.stale-${randomUUID().slice(0, 8)}`;
  try {
    await rename(lock, aside);
  } catch (error) {
    if (code(error) === 'ENOENT') return true;
    throw error;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== content) {
    // link, not rename: never overwrite a lock created in between.
    await link(aside, lock).catch(() => {});
    await unlink(aside).catch(() => {});
    return false;
  }
  await unlink(aside).catch(() => {});
  return true;
}

async function release(lock: string, token: string): Promise<void> {
  const content = await readFile(lock, 'utf8').catch(() => '');
  if (content.trim() === token) await unlink(lock).catch(() => {});
}
