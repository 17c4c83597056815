import type { LogPosition } from '../../stores/store.js';

/**
 * Which follower of a jail reads which file, by device and inode rather than by name: a glob
 * that matches rotated names (`auth.log*`) sees the same file under `auth.log` and, after
 * rotation, `auth.log.1`. Only one follower reads a file at a time; the next one to meet it under
 * another name waits until the first lets go, then continues at the byte it stopped at, so no
 * line is counted twice. Saved positions seed it at start, those of rotated files still being read
 * included (a file read before a restart under another name continues there, when its first line
 * is still the same): whichever follower of the jail claims the file first reads it on.
 */
export class FileLedger {
  readonly #owners = new Map<string, object>();
  /** Files a follower let go of: how far they were read. */
  readonly #released = new Map<string, { offset: number; headHash: string }>();
  /** Saved positions of the jail's paths (inode, first-line hash, offset). */
  readonly #saved: LogPosition[] = [];

  /** `dev:ino`. */
  static key(dev: number, ino: number): string {
    return `${dev}:${ino}`;
  }

  /** True when `owner` may read the file (no one else is). */
  claim(key: string, owner: object): boolean {
    const current = this.#owners.get(key);
    if (current !== undefined && current !== owner) return false;
    this.#owners.set(key, owner);
    return true;
  }

  /** `owner` stopped reading the file at `offset`. */
  release(key: string, owner: object, offset: number, headHash: string): void {
    if (this.#owners.get(key) !== owner) return;
    this.#owners.delete(key);
    this.#released.set(key, { offset, headHash });
  }

  /** Remembers a saved position (before any file is opened). */
  seed(position: LogPosition): void {
    this.#saved.push(position);
  }

  /** How far the file was read under another name (or before a restart); `undefined`: never. */
  readTo(key: string, ino: number, headHash: string): number | undefined {
    const released = this.#released.get(key);
    if (released !== undefined && (released.headHash === '' || released.headHash === headHash))
      return released.offset;
    let best: number | undefined;
    for (const saved of this.#saved) {
      if (saved.inode === ino && saved.headHash === headHash && saved.offset > (best ?? -1))
        best = saved.offset;
    }
    return best;
  }
}
