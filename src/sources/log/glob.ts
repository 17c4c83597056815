import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** How deep `**` descends below the directory it starts in. */
const MAX_GLOBSTAR_DEPTH = 16;

/**
 * True when `pattern` has an unescaped glob character (`*`, `?`, `[`), i.e. names a set of files
 * rather than one path.
 */
export function hasMagic(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/**
 * Compiles one path segment of a glob: `*` (any run of characters), `?` (one character),
 * `[abc]`, `[a-z]`, `[!a-z]` / `[^a-z]` (a character class), `\x` (a literal x). As in a shell, a
 * name starting with `.` is matched only by a segment that starts with `.` too.
 */
export function segmentMatcher(segment: string): (name: string) => boolean {
  let source = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '\\' && i + 1 < segment.length) {
      source += escapeRegExp(segment[++i] as string);
    } else if (c === '*') {
      source += '.*';
    } else if (c === '?') {
      source += '.';
    } else if (c === '[') {
      const end = classEnd(segment, i);
      if (end === -1) {
        source += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, end);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      source += `[${negate ? '^' : ''}${body.replace(/[\\\]^[]/g, '\\$&')}]`;
      i = end;
    } else {
      source += escapeRegExp(c);
    }
  }
  const re = new RegExp(`^${source}$`, 'su');
  const dotOk = segment.startsWith('.');
  return (name) => (dotOk || !name.startsWith('.')) && re.test(name);
}

/**
 * The regular files (or symlinks to them) matching an absolute or relative glob, sorted.
 * Besides the segment syntax of {@link segmentMatcher}, a whole segment `**` matches any number of
 * directories (real directories only, at most 16 deep; symbolic links are not descended). Missing
 * or unreadable directories simply match nothing.
 */
export async function expandGlob(pattern: string): Promise<string[]> {
  const absolute = resolve(pattern);
  const segments = absolute.split('/').filter((segment) => segment !== '');
  const found = new Set<string>();
  await walk('/', segments, 0, found, 0);
  return [...found].sort();
}

async function walk(
  dir: string,
  segments: string[],
  index: number,
  found: Set<string>,
  depth: number,
): Promise<void> {
  if (index === segments.length) {
    if (await isFile(dir)) found.add(dir);
    return;
  }
  const segment = segments[index] as string;
  const last = index === segments.length - 1;
  if (segment === '**') {
    await walk(dir, segments, index + 1, found, depth);
    if (depth >= MAX_GLOBSTAR_DEPTH) return;
    for (const entry of await list(dir)) {
      if (entry.isDirectory() && !entry.name.startsWith('.')) {
        await walk(join(dir, entry.name), segments, index, found, depth + 1);
      }
    }
    return;
  }
  if (!hasMagic(segment)) {
    await walk(join(dir, segment.replace(/\\(.)/g, '$1')), segments, index + 1, found, depth);
    return;
  }
  const matches = segmentMatcher(segment);
  for (const entry of await list(dir)) {
    if (!matches(entry.name)) continue;
    const path = join(dir, entry.name);
    if (last) {
      if (entry.isFile() || (entry.isSymbolicLink() && (await isFile(path)))) found.add(path);
    } else if (entry.isDirectory() || entry.isSymbolicLink()) {
      await walk(path, segments, index + 1, found, depth);
    }
  }
}

async function list(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Index of the `]` closing the class opened at `open`, or -1 (then `[` is a literal). */
function classEnd(segment: string, open: number): number {
  let i = open + 1;
  if (segment[i] === '!' || segment[i] === '^') i++;
  if (segment[i] === ']') i++;
  return segment.indexOf(']', i);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
