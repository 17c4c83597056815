import { type FSWatcher, stat, statSync, watch } from 'node:fs';
import { basename } from 'node:path';

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
