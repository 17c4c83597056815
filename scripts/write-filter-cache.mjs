// Parses the bundled log filters (rules/filters/*.yaml) once, at build time (run by `npm run
// build`), into dist/detection/filters/regex/filter-cache/<name>.json = { text, value }: at run
// time src/detection/filters/regex/filter-yaml.ts takes `value` for a file with exactly that
// text instead of loading the yaml package. Only what a JSON copy gives back exactly is written:
// a file yaml warns about or refuses, or whose value JSON would change, is left to be parsed.
// Usage: node scripts/write-filter-cache.mjs [outDir] [rulesDir]
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';

const out =
  process.argv[2] ?? fileURLToPath(new URL('../dist/detection/filters/regex/filter-cache/', import.meta.url));
const rules = process.argv[3] ?? fileURLToPath(new URL('../rules/filters/', import.meta.url));

/** `parse(text)` as the filter loader calls it, or undefined when it throws or warns. */
function parsedQuietly(text) {
  const { emitWarning } = process;
  const { warn } = console;
  let warned = false;
  process.emitWarning = () => {
    warned = true;
  };
  console.warn = () => {
    warned = true;
  };
  try {
    const value = parse(text, { uniqueKeys: true });
    return warned ? undefined : { value };
  } catch {
    return undefined;
  } finally {
    process.emitWarning = emitWarning;
    console.warn = warn;
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
let written = 0;
const skipped = [];
for (const file of readdirSync(rules)
  .filter((name) => name.endsWith('.yaml'))
  .sort()) {
  const text = readFileSync(join(rules, file), 'utf8');
  const parsed = parsedQuietly(text);
  const json = parsed === undefined ? undefined : JSON.stringify({ text, value: parsed.value });
  if (json === undefined || !isDeepStrictEqual(JSON.parse(json).value, parsed.value)) {
    skipped.push(file);
    continue;
  }
  writeFileSync(join(out, `${file.slice(0, -'.yaml'.length)}.json`), json);
  written++;
}
if (skipped.length > 0)
  process.stderr.write(`filter cache: not cached (parsed at run time): ${skipped.join(', ')}\n`);
process.stdout.write(`filter cache: ${written} bundled filters parsed into ${out}\n`);
