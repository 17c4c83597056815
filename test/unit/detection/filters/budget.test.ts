import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateFieldFilter } from '../../../../src/detection/filters/fields/filter-schema.js';
import {
  compileFieldFilter,
  defineFieldCatalogue,
  scanned,
} from '../../../../src/detection/filters/fields/index.js';
import { HTTP_FIELDS } from '../../../../src/detection/filters/http/http-fields.js';
import { re2BudgetProblem, re2Cost } from '../../../../src/detection/filters/re2-cache.js';
import { event } from '../../../helpers/http-events.js';

const PATHOLOGICAL = '[ab]*a[ab]{60}K';

/** Every regex of the bundled HTTP rules. */
function bundledPatterns(): string[] {
  const dir = new URL('../../../../rules/http/', import.meta.url);
  const out: string[] = [];
  const walk = (node: unknown, key: string): void => {
    if (typeof node === 'string' && key !== 'distinct' && key !== 'method') out.push(node);
    else if (node !== null && typeof node === 'object')
      for (const [k, v] of Object.entries(node)) walk(v, Array.isArray(node) ? key : k);
  };
  for (const file of readdirSync(dir)) walk(parse(readFileSync(new URL(file, dir), 'utf8')).filter, '');
  return out;
}

describe('regex budget', () => {
  it('finds every bundled rule pattern within the soft limit', () => {
    const patterns = bundledPatterns();
    expect(patterns.length).toBeGreaterThan(5);
    for (const pattern of patterns) expect([pattern, re2Cost(pattern).verdict]).toEqual([pattern, 'ok']);
  });

  it('refuses a counted repetition after a star, naming the pattern and its cost', () => {
    const problem = re2BudgetProblem(PATHOLOGICAL);
    expect(problem?.level).toBe('error');
    expect(problem?.message).toContain(JSON.stringify(PATHOLOGICAL));
    expect(problem?.message).toMatch(/\d+ µs per KiB of input \(limit 300 µs\)/);
    const { problems } = validateFieldFilter(HTTP_FIELDS, { user_agent: PATHOLOGICAL });
    expect(problems.map((p) => p.path)).toEqual([['user_agent']]);
  });

  it('probes a pattern once: later calls answer the figure measured first', () => {
    // A fresh probe is a new timing and never lands on the same nanosecond figure twice in a row.
    const first = re2Cost('.*x.{20}Y');
    for (let i = 0; i < 5; i++) expect(re2Cost('.*x.{20}Y')).toEqual(first);
    expect(first.nsPerKiB).toBeGreaterThan(0);
  });
});

describe('scan limit', () => {
  it('matches a value longer than the limit on its first characters only', () => {
    const ua = (text: string) => compileFieldFilter(HTTP_FIELDS, { user_agent: text }).matches;
    const padded = `${'x'.repeat(5_000)}sqlmap`;
    expect(ua('sqlmap')(event({ userAgent: padded }))).toBe(false);
    expect(ua('sqlmap')(event({ userAgent: `sqlmap${'x'.repeat(5_000)}` }))).toBe(true);
    // `$` matches at the cut: the value is matched as if it ended there.
    expect(ua('x$')(event({ userAgent: `${'x'.repeat(4_096)}y` }))).toBe(true);
    // Header maps and merged alternations are cut too.
    const header = compileFieldFilter(HTTP_FIELDS, { headers: { 'x-a': 'evil' } }).matches;
    expect(header(event({ headers: { 'x-a': `${'x'.repeat(5_000)}evil` } }))).toBe(false);
    const any = compileFieldFilter(HTTP_FIELDS, { any: [{ user_agent: 'foo' }, { user_agent: 'bar' }] });
    expect(any.matches(event({ userAgent: `${'x'.repeat(5_000)}bar` }))).toBe(false);
  });

  it('takes the limit from the field, else from the catalogue', () => {
    type E = { a: string; b: string };
    const catalogue = defineFieldCatalogue<E>(
      'test',
      {
        a: { type: 'text', description: 'a', get: (e) => e.a },
        b: { type: 'text', description: 'b', get: (e) => e.b, scanLimit: 8 },
      },
      { scanLimit: 4 },
    );
    const match = (spec: Record<string, string>, e: E) => compileFieldFilter(catalogue, spec).matches(e);
    expect(match({ a: 'x' }, { a: 'aaaax', b: '' })).toBe(false);
    expect(match({ a: 'x' }, { a: 'aaax', b: '' })).toBe(true);
    expect(match({ b: 'x' }, { a: '', b: 'aaaaaaax' })).toBe(true);
    expect(match({ b: 'x' }, { a: '', b: 'aaaaaaaax' })).toBe(false);
    expect(() => defineFieldCatalogue('bad', {}, { scanLimit: 0 })).toThrow(/scanLimit/);
  });

  it('never cuts a surrogate pair in half', () => {
    expect(scanned('ab😀', 3)).toBe('ab');
    expect(scanned('ab😀', 4)).toBe('ab😀');
    expect(scanned('abc', 5)).toBe('abc');
  });

  it('a 100 KB user agent costs about what a 4 KB one does', () => {
    // A slow-but-accepted pattern, so the cost of the scanned text dominates.
    const { matches } = compileFieldFilter(HTTP_FIELDS, { user_agent: '[ab]*a[ab]{8}K' });
    const text = (n: number) => {
      let state = 0x2545f491;
      let out = '';
      for (let i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        out += state & 1 ? 'a' : 'b';
      }
      return out; // in no repeating order: a periodic text would let the DFA cache it
    };
    const small = event({ userAgent: text(4_096) });
    const large = event({ userAgent: text(100_000) });
    const time = (e: typeof small) => {
      let best = Number.POSITIVE_INFINITY;
      for (let round = 0; round < 5; round++) {
        const started = process.hrtime.bigint();
        for (let i = 0; i < 20; i++) matches(e);
        best = Math.min(best, Number(process.hrtime.bigint() - started));
      }
      return best;
    };
    time(small); // warm the DFA
    const ratio = time(large) / time(small);
    expect(ratio).toBeLessThan(3); // uncut, it would be ~25
  });
});
