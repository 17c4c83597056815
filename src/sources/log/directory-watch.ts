import { type FSWatcher, stat, statSync, watch } from 'node:fs';
import { readdir, stat as statAsync } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';

type Listener = () => void;

interface Watched {
  readonly watcher: FSWatcher;
  /** Listeners per file name; `''` holds those that want every event of the directory. */
  readonly listeners: Map<string, Set<Listener>>;
}

/** A change notification subscription; see {@link watchDirectory}. */
export interface DirectoryWatch {
  /** True once the watcher failed (directory removed, ...): subscribe again later. */
  readonly broken: boolean;
  /** Stops the notifications. Idempotent. */
  close(): void;
}

const watched = new Map<string, Watched>();

/**
 * Calls `listener` when something changes in `dir` under the file name `name` (or any name when
 * `name` is `undefined`). Every subscriber of a directory shares one `fs.watch` (one inotify watch),
 * so a thousand followed files in `/var/log` cost one watch and a map look-up per event, not a
 * thousand callbacks. The watcher does not keep the process alive. Throws when `dir` cannot be
 * watched (it does not exist): callers retry later. When the directory itself is removed or
 * replaced, the watch reports `broken` (inotify watches the old inode forever): subscribe again.
 */
export function watchDirectory(dir: string, name: string | undefined, listener: Listener): DirectoryWatch {
  let entry = watched.get(dir);
  if (entry === undefined) {
    const listeners = new Map<string, Set<Listener>>();
    const inode = statSync(dir).ino;
    const self = basename(dir);
    const notifyAll = () => {
      for (const set of listeners.values()) for (const notify of set) notify();
    };
    const watcher = watch(dir, { persistent: false }, (_event, filename) => {
      // The directory itself renamed or removed shows up as an event named like it.
      if (filename === self) {
        stat(dir, (error, info) => {
          if (error === null && info.ino === inode) return;
          broken();
          notifyAll();
        });
      }
      const named = filename === null ? undefined : listeners.get(filename);
      if (named !== undefined) for (const notify of named) notify();
      const all = listeners.get('');
      if (all !== undefined) for (const notify of all) notify();
      // No file name: something happened, we do not know to what.
      if (filename === null)
        for (const [key, set] of listeners) if (key !== '') for (const notify of set) notify();
    });
    const created: Watched = { watcher, listeners };
    const broken = () => {
      watcher.close();
      if (watched.get(dir) === created) watched.delete(dir);
    };
    watcher.on('error', broken);
    entry = created;
    watched.set(dir, entry);
  }
  const current = entry;
  const key = name ?? '';
  let set = current.listeners.get(key);
  if (set === undefined) {
    set = new Set();
    current.listeners.set(key, set);
  }
  set.add(listener);
  let closed = false;
  return {
    get broken() {
      return watched.get(dir) !== current;
    },
    close() {
      if (closed) return;
      closed = true;
      const listeners = current.listeners.get(key);
      listeners?.delete(listener);
      if (listeners?.size === 0) current.listeners.delete(key);
      if (current.listeners.size === 0 && watched.get(dir) === current) {
        watched.delete(dir);
        current.watcher.close();
      }
    },
  };
}

/** Suffixes of compressed rotations (`auth.log.2.gz`): their lines cannot be read as they are. */
const COMPRESSED = /\.(?:gz|bz2|xz|zst|lz4|lzma|lz|z|zip|br|7z)$/i;

/** True when `path` ends like a compressed rotation (`auth.log.2.gz`, `app.log.xz`). */
export function isCompressedName(path: string): boolean {
  return COMPRESSED.test(path);
}

/**
 * True when `name` is what log rotation calls `base` once rotated, in the same directory:
 * `auth.log.1`, `auth.log-20261201`, `auth.log_old` (and, for logrotate's `extension .log`,
 * `app-20261201.log` for `app.log`). Compressed rotations (`auth.log.2.gz`) are not: they cannot
 * be read as they are.
 */
export function isRotatedName(base: string, name: string): boolean {
  if (name === base || COMPRESSED.test(name)) return false;
  const separated = (prefix: string) =>
    name.length > prefix.length && name.startsWith(prefix) && '.-_'.includes(name[prefix.length] as string);
  if (separated(base)) return true;
  const ext = extname(base);
  return ext !== '' && ext !== base && name.endsWith(ext) && separated(base.slice(0, -ext.length));
}

/** A regular file in a log's directory under a rotated name of it; see {@link rotatedFiles}. */
export interface RotatedFile {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

/**
 * The regular files of `dir` under a rotated name of `base` ({@link isRotatedName}), on the
 * directory's own device, by inode. A saved position of a file that was rotated while portcullis
 * was stopped is looked up here. An unreadable directory has none.
 */
export async function rotatedFiles(dir: string, base: string): Promise<Map<number, RotatedFile>> {
  const found = new Map<number, RotatedFile>();
  let names: string[];
  let dev: number;
  try {
    dev = (await statAsync(dir)).dev;
    names = await readdir(dir);
  } catch {
    return found;
  }
  for (const name of names.filter((entry) => isRotatedName(base, entry)).sort()) {
    const path = join(dir, name);
    try {
      const info = await statAsync(path);
      if (info.isFile() && info.dev === dev && !found.has(info.ino))
        found.set(info.ino, { path, dev: info.dev, ino: info.ino });
    } catch {
      // Gone between readdir and stat: not there.
    }
  }
  return found;
}
