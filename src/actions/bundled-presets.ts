import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The bundled action presets: `rules/actions/<name>.yaml` at the package root. */
export const BUNDLED_ACTIONS_DIR = fileURLToPath(new URL('../../rules/actions/', import.meta.url));

/** One bundled preset: `{ kind: options }`, as a user would write it under the top-level `actions:`. */
export interface BundledPreset {
  readonly name: string;
  readonly kind: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** The file's leading comment: what the preset does and creates on the host. */
  readonly description: string;
  readonly file: string;
}

let cache: Map<string, BundledPreset> | undefined;

/**
 * Every bundled preset, by name, read once. A file that is not `{ kind: { ... } }` throws: the
 * package is broken (a unit test loads them all), not the user's config.
 */
export function bundledActionPresets(dir: string = BUNDLED_ACTIONS_DIR): ReadonlyMap<string, BundledPreset> {
  if (dir === BUNDLED_ACTIONS_DIR && cache !== undefined) return cache;
  const presets = new Map<string, BundledPreset>();
  let names: string[];
  try {
    names = readdirSync(dir).filter((file) => file.endsWith('.yaml'));
  } catch {
    names = [];
  }
  for (const file of names.sort()) {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    const value = parse(text) as unknown;
    const keys =
      value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];
    if (keys.length !== 1) throw new Error(`${path}: expected one action kind with its options`);
    const kind = keys[0] as string;
    const options = (value as Record<string, unknown>)[kind] ?? {};
    const description = text
      .split('\n')
      .filter((line) => line.startsWith('#'))
      .map((line) => line.replace(/^#\s?/, ''))
      .join('\n');
    const name = file.slice(0, -'.yaml'.length);
    presets.set(
      name,
      Object.freeze({
        name,
        kind,
        options: Object.freeze(options) as Readonly<Record<string, unknown>>,
        description,
        file: path,
      }),
    );
  }
  if (dir === BUNDLED_ACTIONS_DIR) cache = presets;
  return presets;
}
