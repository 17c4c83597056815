import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The layering of shared/DESIGN.md, checked on the source: imports flow one way
// (surfaces → sources/detection/decisions/actions → stores → core), with no cycle.

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

interface Edge {
  to: string;
  /** `import type` / `export type`: erased at run time. */
  typeOnly: boolean;
  dynamic: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g;
const DYNAMIC = /import\(\s*['"]([^'"]+)['"]\s*\)/g;

function graph(): Map<string, Edge[]> {
  const edges = new Map<string, Edge[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const out: Edge[] = [];
    const add = (spec: string, typeOnly: boolean, dynamic: boolean) => {
      const to = spec.startsWith('.')
        ? relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts')
        : spec;
      out.push({ to, typeOnly, dynamic });
    };
    for (const match of text.matchAll(IMPORT)) add(match[3] as string, match[2] !== undefined, false);
    for (const match of text.matchAll(DYNAMIC)) add(match[1] as string, false, true);
    edges.set(relative(SRC, file), out);
  }
  return edges;
}

const edges = graph();
const local = (to: string) => edges.has(to);

describe('architecture', () => {
  it('finds the source files and their imports', () => {
    expect(edges.size).toBeGreaterThan(50);
    expect(edges.get('guard.ts')?.some((e) => e.to === 'decisions/decision-book.ts')).toBe(true);
  });

  it('has no import cycle in src/ (type-only imports included)', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      stack.push(file);
      for (const edge of edges.get(file) ?? []) {
        if (!local(edge.to)) continue;
        if (state.get(edge.to) === 'open')
          cycles.push([...stack.slice(stack.indexOf(edge.to)), edge.to].join(' → '));
        else if (state.get(edge.to) === undefined) visit(edge.to);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of edges.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it('keeps core free of the other layers and stores below the engine', () => {
    const wrong: string[] = [];
    for (const [file, out] of edges) {
      for (const edge of out) {
        if (!local(edge.to)) continue;
        const from = file.split('/')[0];
        const to = edge.to.split('/')[0];
        if (from === 'core' && to !== 'core') wrong.push(`${file} → ${edge.to}`);
        // Stores may read the shape of their own config section, nothing else above them.
        const configType = to === 'config' && edge.typeOnly;
        if (from === 'stores' && to !== 'stores' && to !== 'core' && !configType)
          wrong.push(`${file} → ${edge.to}`);
        const engine = ['sources', 'detection', 'decisions', 'actions', 'stores', 'config'];
        if (engine.includes(from as string) && to === 'surfaces') wrong.push(`${file} → ${edge.to}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('only index.ts and the CLI import the composition root', () => {
    const importers = [...edges]
      .filter(([, out]) => out.some((e) => e.to === 'guard.ts'))
      .map(([file]) => file)
      .sort();
    expect(importers.every((file) => file === 'index.ts' || file.startsWith('surfaces/cli/'))).toBe(true);
  });

  it('importing the package does not load the HTTP proxy or Express surfaces', () => {
    const loaded = new Set<string>();
    const walk = (file: string) => {
      if (loaded.has(file)) return;
      loaded.add(file);
      for (const edge of edges.get(file) ?? []) if (!edge.typeOnly && !edge.dynamic) walk(edge.to);
    };
    walk('index.ts');
    const heavy = [...loaded].filter(
      (f) => f.startsWith('surfaces/') || f === 'http-proxy-3' || f === 'express' || f === 'pino',
    );
    expect(heavy).toEqual([]);
  });
});
