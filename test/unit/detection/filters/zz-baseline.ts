import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '/work/spine/src/config/load.js';
import { loadHttpRule } from '/work/spine/src/detection/filters/http/rules.js';
import { stringify } from 'yaml';
const cases: unknown[] = [
  { status: [401, '4x'], paht: '^/' },
  { status: null }, { status: [] }, { status: { a: 1 } }, { status: '404' }, { status: '0404' }, { status: 404.5 }, { status: 99 },
  { status: '40x' }, { status: '599-500' }, { status: '6xx' }, { status: true }, { status: ['4xx', null] },
  { method: 'P OST' }, { method: [] }, { method: ['GET', 5] }, { method: 5 }, { method: null }, { method: { a: 1 } },
  { path: 5 }, { path: null }, { path: ['a'] }, { path: '(?!x)' }, { user_agent: '(a)\\1' },
  { headers: { 'bad name': 'x' } }, { headers: { ok: 5 } }, { headers: 'x' }, { headers: { ok: '(?=' } }, { headers: [] },
  { all: [] }, { all: 'x' }, { all: ['x'] }, { any: [{ paht: 1, pat: 2 }] }, { not: 'x' }, { not: [] }, { not: null },
  { distinct: 'headers' }, { distinct: 5 }, { any: [{ distinct: 'path' }] }, { all: [{ not: { distinct: 'path' } }] },
  { status: 404, foo: 1, bar: 2 },
];
const out: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'fx-'));
for (const [i, c] of cases.entries()) {
  const yaml = stringify({ jails: { j: { source: 'http', filter: c } } });
  try { parseConfigText(yaml, 'p.yaml', { env: {} }); out.push(`${i} inline OK`); }
  catch (e) { out.push(`${i} inline ${JSON.stringify((e as { problems?: string[] }).problems ?? String(e))}`); }
  const file = join(dir, `r${i}.yaml`);
  writeFileSync(file, stringify({ description: 'x', filter: c }));
  try { loadHttpRule(file); out.push(`${i} rule OK`); }
  catch (e) { out.push(`${i} rule ${(e as Error).message.replace(file, 'FILE')}`); }
}
for (const r of [{ rate: '10/s', f: { status: 404, distinct: 'path' } }, { rate: '10/s', f: { any: [{ status: 404 }] } }]) {
  const yaml = stringify({ jails: { j: { source: 'http', filter: r.f, rate: r.rate } } });
  try { parseConfigText(yaml, 'p.yaml', { env: {} }); out.push(`rate OK`); }
  catch (e) { out.push(`rate ${JSON.stringify((e as { problems?: string[] }).problems)}`); }
}
console.log(out.join('\n'));
