import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import RE2 from 're2';
import { afterEach, describe, expect, it } from 'vitest';
import { hasSurrogate, jsTwin } from '../../../../../src/detection/filters/regex/js-twin.js';
import {
  type CompiledLogFilter,
  type LineResult,
  type LogFilterOptions,
  loadLogFilter,
} from '../../../../../src/detection/filters/regex/log-filter.js';

/**
 * V8 twins (js-twin.ts) must match exactly what RE2 matches and capture exactly what RE2 captures;
 * they are checked against RE2 itself here, construct by construct and over every bundled and
 * Debian fail2ban filter on the sample logs, with lines mutated the ways attackers and odd
 * daemons write them.
 */

const FIXTURES = join(import.meta.dirname, '../../../../fixtures/logs');
const FAIL2BAN = '/etc/fail2ban/filter.d';

/** RE2's answer: the captures array (undefined for groups that took no part), or null. */
const re2s = new Map<string, RE2>();

function re2Exec(pattern: string, text: string): (string | undefined)[] | null {
  const re = re2s.get(pattern) ?? new RE2(pattern);
  re2s.set(pattern, re);
  const m = re.exec(text);
  return m === null ? null : [...m];
}

const twins = new Map<string, ReturnType<typeof jsTwin>>();

function twinExec(pattern: string, text: string): (string | undefined)[] | null {
  const twin = twins.get(pattern) ?? jsTwin(pattern);
  twins.set(pattern, twin);
  if (twin === null) throw new Error(`no twin for ${pattern}`);
  const m = twin.re.exec(text);
  return m === null ? null : [...m];
}

/** A small random text over an alphabet that exercises the pattern's edges. */
function randomTexts(alphabet: string[], count: number, seed: number): string[] {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state;
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let text = '';
    const length = next() % 24;
    for (let j = 0; j < length; j++) text += alphabet[next() % alphabet.length];
    out.push(text);
  }
  return out;
}

const ALPHABET = [
  'a',
  'b',
  'A',
  'x',
  '0',
  '7',
  ' ',
  '\t',
  '\n',
  '\r',
  '\f',
  '\v',
  '\u00a0',
  '\u2028',
  '\ufeff',
  ']',
  '[',
  '-',
  '.',
  '"',
  '\\',
  '/',
  '_',
  ':',
  'é',
  '😀',
  '\ud800',
  'from',
  'port',
  'ab',
  '%',
];

/** Letters, digits, marks and symbols of many scripts (where Unicode classes differ from ASCII). */
const UNICODE = [
  'ß',
  'я',
  'Ω',
  'λ',
  '٣',
  '५',
  '²',
  'Ⅻ',
  '中',
  'ﬁ',
  '\u0301',
  '\u2000',
  '\u00ad',
  'ǅ',
  'ª',
  '\uffff',
  '\u0000',
  '𝔸',
];

describe('V8 twins of RE2 patterns', () => {
  it('match and capture as RE2 does, construct by construct', () => {
    const patterns = [
      '^(a+)(b*)$',
      '(.)(.*)x',
      '^(\\s+)(\\S+)',
      '(\\w+)\\b(\\W*)',
      '(\\d+)(\\D+)',
      '^([^\\]a]+)\\]',
      '([]a-]+)',
      '([\\s\\]]+)(x)',
      '([^\\s"]+)',
      '\\x41(\\x{62}+)',
      '\\Q.[*\\E(a|b)',
      '^(?:(a)|(b))+$',
      '(a{1,40})(a*)',
      '(a{17,20}?)(a*)',
      '((?:ab){18})',
      '(x{20,})',
      '^(a|ab)(c|bcd)(d*)$',
      '\\A(a*?)(b?)\\z',
      '(😀+)(.)',
      '(é|e)(\\w)',
      '^((?:[^ fp][^ ]*|f(?:[^ r][^ ]*)?|fr(?:[^ o][^ ]*)?|from[^ ]+|p[^ ]*)(?: +(?:[^ fp][^ ]*|from[^ ]+))*) from (\\S+)$',
      '\\t(\\n)\\r\\f\\v',
      '([a-c\\-x]{2,17})',
      // Unicode classes (fail2ban's Python \\w and \\d translate to them), in and out of classes
      '(\\pL+)(\\PL*)',
      '([\\p{L}\\p{N}_]+)([^\\p{L}\\p{N}_]*)',
      '(\\p{Nd}+)(\\P{Nd})',
      '([\\p{Greek}x]+)',
      '(\\p{^L}+)',
      // counted groups inside counted groups (fail2ban's IPv6), written out for V8's linear engine
      '^((?:[0-9a-f]{1,4}::?|::){1,7}(?:[0-9a-f]{1,4}|:))(.*)$',
      '((?:a{1,3}b){2,5}?)(b*)',
      '^((?:ab{0,2}|0){1,6})(.*)$',
    ];
    for (const pattern of patterns) {
      const twin = jsTwin(pattern);
      expect(twin, pattern).not.toBeNull();
      for (const text of randomTexts([...ALPHABET, ...UNICODE], 3000, pattern.length)) {
        if (twin?.wide && hasSurrogate(text)) continue; // such lines go to RE2 (checked below)
        expect(twinExec(pattern, text), `${pattern} on ${JSON.stringify(text)}`).toEqual(
          re2Exec(pattern, text),
        );
      }
    }
  });

  it('writes a counted group inside a counted group out, greedy or lazy as written', () => {
    const texts = [
      'ababab',
      'aabaaabab',
      'abababababab',
      'ab',
      'abab:',
      '1::2:3::4:5:6:7:8',
      '::1',
      'fe80::1:2',
    ];
    for (const pattern of [
      '^((?:a{1,3}b){2,5}?)(.*)$',
      '^((?:a{1,3}b){2,5})(.*)$',
      '^((?:a{1,3}b){0,4}?)(b?a*)(.*)$',
      '^((?:[0-9a-f]{1,4}::?|::){1,7}(?:[0-9a-f]{1,4}|:))(.*)$',
    ]) {
      expect(jsTwin(pattern)?.re.source, pattern).not.toContain('{2,5}');
      for (const text of texts)
        expect(twinExec(pattern, text), `${pattern} on ${text}`).toEqual(re2Exec(pattern, text));
    }
  });

  it('makes no twin whose written-out copies would be huge; RE2 still answers', () => {
    // RE2 takes this (200 repetitions in all); its twin would be 100 copies of a ~4 KB class.
    const pattern = '^((?:(?:[\\p{L}]{1,2}x){1,10}){1,10})$';
    const started = performance.now();
    expect(jsTwin(pattern)).toBeNull();
    expect(performance.now() - started).toBeLessThan(2000);
    const filter = loadLogFilter(
      { failregex: [`${pattern.slice(0, -1)} from <HOST>$`] },
      { datepattern: '{NONE}' },
    );
    expect(filter.processLine('éxéx from 192.0.2.9').matches[0]?.ip).toBe('192.0.2.9');
    expect(filter.processLine('éé from 192.0.2.9').kind).toBe('missed');
    // The same shape small enough keeps its twin.
    expect(jsTwin('^((?:(?:[a-c]{1,2}x){1,3}){1,3})$')).not.toBeNull();
  });

  it('marks patterns whose parts could match half a surrogate pair, and agrees on BMP text', () => {
    expect(jsTwin('^(.)$')?.wide).toBe(true);
    expect(jsTwin('^([^x]+)$')?.wide).toBe(true);
    expect(jsTwin('^(\\S+)$')?.wide).toBe(true);
    expect(jsTwin('^(\\d+) (\\w+)$')?.wide).toBe(false);
    // A Unicode class holds characters outside the BMP (𝔸 is a letter): lines with one go to RE2.
    expect(jsTwin('^(\\pL)$')?.wide).toBe(true);
    expect(re2Exec('^(\\pL)$', '𝔸')).toEqual(['𝔸', '𝔸']);
    // The reason: RE2 takes 😀 as one character, V8 (without /u) as two.
    expect(re2Exec('^(.)$', '😀')).toEqual(['😀', '😀']);
    expect(jsTwin('^(.)$')?.re.exec('😀')).toBeNull();
  });

  it('makes no twin of what it cannot prove the same, or what V8 could not run in linear time', () => {
    for (const pattern of [
      '(?i)abc',
      'a(?i:b)c',
      '(?s).',
      '[[:alpha:]]+',
      '[\\S,]',
      '\\C',
      '\\101',
      '(a{2}){20}',
      '(?:x{0,16}y){1,17}',
      '(a){17}',
    ]) {
      expect(jsTwin(pattern), pattern).toBeNull();
    }
  });

  it('cannot stall the process: a pattern that backtracks exponentially in V8 still returns', () => {
    // Without V8's linear-time fallback this takes hours (2^40 paths); with it, it returns.
    const twin = jsTwin('^(a+)+b$');
    expect(twin).not.toBeNull();
    expect(twin?.re.exec(`${'a'.repeat(40)}c`)).toBeNull();
    const nested = jsTwin('^(?:(x*)*y|(x+)+z)$');
    expect(nested?.re.exec(`${'x'.repeat(5000)}!`)).toBeNull();
  });
});

/** Every line of a sample log, and variants of it. */
function samples(file: string): string[] {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'));
  const out: string[] = [];
  for (const line of lines) {
    out.push(line);
    out.push(`${line} 😀`);
    out.push(line.replace(/ /, ' 😀 '));
    out.push(line.replace(/user /, 'user é😀'));
    out.push(`${line}${' x'.repeat(1500)}`);
    out.push(line.toUpperCase());
    out.push(line.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)/, '$1.$2.$3.$4 from 10.9.9.9'));
    out.push(line.slice(0, Math.floor(line.length / 2)));
    out.push(`${line}\u2028tail`);
    out.push(line.replace(/ /g, '\u00a0'));
  }
  return out;
}

/** The result without what differs between runs by design (nothing should). */
function comparable(result: LineResult): unknown {
  return JSON.parse(JSON.stringify(result));
}

function withoutTwins<T>(load: () => T): T {
  process.env.PORTCULLIS_NO_JS_TWIN = '1';
  try {
    return load();
  } finally {
    delete process.env.PORTCULLIS_NO_JS_TWIN;
  }
}

function compare(spec: string | Record<string, unknown>, lines: string[], options: LogFilterOptions): number {
  const fixed = { logtimezone: 'UTC', now: () => Date.parse('2026-12-31T12:00:00Z'), ...options };
  const twins: CompiledLogFilter = loadLogFilter(spec, fixed);
  const re2: CompiledLogFilter = withoutTwins(() => loadLogFilter(spec, fixed));
  let matched = 0;
  for (const line of lines) {
    const a = comparable(twins.processLine(line));
    const b = comparable(re2.processLine(line));
    expect(a, `${JSON.stringify(spec)} on ${JSON.stringify(line.slice(0, 300))}`).toEqual(b);
    if ((b as LineResult).kind === 'match') matched++;
  }
  return matched;
}

describe('log filters with and without twins', () => {
  afterEach(() => {
    delete process.env.PORTCULLIS_NO_JS_TWIN;
  });

  it('every bundled filter, every mode, gives the same result for every sample line and its variants', () => {
    let matched = 0;
    for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.log'))) {
      const name = file.slice(0, -4);
      const lines = samples(join(FIXTURES, file));
      const modes = [undefined, 'aggressive', 'ddos', 'extra'];
      for (const mode of modes) {
        let filter: CompiledLogFilter;
        try {
          filter = loadLogFilter(name, mode === undefined ? {} : { mode });
        } catch {
          continue; // a mode this filter does not have
        }
        if (mode !== undefined && filter.mode !== mode) continue;
        matched += compare(name, lines, mode === undefined ? {} : { mode });
      }
    }
    expect(matched).toBeGreaterThan(500); // the corpus really exercises the matching paths
  });

  it("Debian's fail2ban filters (read in place) agree too, on every sample log", () => {
    expect(existsSync(FAIL2BAN), 'fail2ban is installed by .ci/run').toBe(true);
    const lines = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.log'))
      .flatMap((f) => samples(join(FIXTURES, f)).filter((_, i) => i % 10 < 3));
    let loaded = 0;
    for (const file of readdirSync(FAIL2BAN).filter((f) => f.endsWith('.conf'))) {
      const spec = { fail2ban: join(FAIL2BAN, file), unsupported: 'skip' };
      try {
        loadLogFilter(spec);
      } catch {
        continue; // refused with a reason: the importer's tests cover that
      }
      loaded++;
      compare(spec, lines, {});
    }
    expect(loaded).toBeGreaterThan(60);
  });
});
