import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Yaml from 'yaml';
import { lazyRequire } from '../../../core/lazy-require.js';

const yaml = lazyRequire<typeof Yaml>('yaml');

/**
 * The bundled filters, parsed at build time (`scripts/write-filter-cache.mjs`, run by
 * `npm run build`): `<name>.json` holds `{ text, value }`, the file's text and what
 * `yaml.parse(text, { uniqueKeys: true })` made of it. Loading the yaml package is most of the
 * cost of reading one small filter, and `portcullis test` starts once per call. Absent when
 * running from the sources: every file is then parsed.
 */
export const FILTER_CACHE_DIR = fileURLToPath(new URL('./filter-cache/', import.meta.url));

/**
 * What `yaml.parse(text, { uniqueKeys: true })` returns (and throws), taken from the build's
 * cache when a file of that name was cached with exactly this text: a filter edited since, or
 * a user's own file, is parsed. The value is the cache's own copy each call.
 */
export function parseFilterYaml(text: string, file: string, cacheDir: string = FILTER_CACHE_DIR): unknown {
  if (file.endsWith('.yaml')) {
    const cached = readCached(`${cacheDir}/${basename(file, '.yaml')}.json`);
    if (cached !== undefined && cached.text === text) return cached.value;
  }
  return yaml().parse(text, { uniqueKeys: true });
}

function readCached(path: string): { text: unknown; value: unknown } | undefined {
  try {
    const entry = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (typeof entry !== 'object' || entry === null || !('text' in entry) || !('value' in entry))
      return undefined;
    return entry as { text: unknown; value: unknown };
  } catch {
    return undefined;
  }
}
