import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import RE2 from 're2';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { literalPrefilter, requiredClauses } from '../../../../src/detection/filters/literal-prefilter.js';

const ROOT = join(import.meta.dirname, '../../../..');

/** Every regex string in the bundled HTTP rules (field values, map values). */
function bundledPatterns(): string[] {
  const patterns = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) for (const child of node) walk(child);
    else if (node !== null && typeof node === 'object') {
      for (const value of Object.values(node)) {
        if (typeof value === 'string' && value.length > 2) patterns.add(value);
        else walk(value);
      }
    }
  };
  for (const file of readdirSync(join(ROOT, 'rules/http'))) {
    walk((parse(readFileSync(join(ROOT, 'rules/http', file), 'utf8')) as { filter: unknown }).filter);
  }
  return [...patterns];
}

/** Request values from the corpus: every payload and benign look-alike, plus session URLs and agents. */
function corpusTexts(): string[] {
  const texts = new Set<string>();
  const dir = join(ROOT, 'test/fixtures/http-corpus');
  for (const file of readdirSync(join(dir, 'payloads'))) {
    for (const line of readFileSync(join(dir, 'payloads', file), 'utf8').split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const space = line.indexOf(' ');
      texts.add(line.slice(space + 1));
    }
  }
  for (const file of readdirSync(join(dir, 'sessions'))) {
    for (const line of readFileSync(join(dir, 'sessions', file), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const walk = (node: unknown): void => {
        if (typeof node === 'string') texts.add(node);
        else if (Array.isArray(node)) for (const child of node) walk(child);
        else if (node !== null && typeof node === 'object') for (const v of Object.values(node)) walk(v);
      };
      walk(JSON.parse(line));
    }
  }
  return [...texts];
}

/** Case changes and encodings an attacker would try on a text. */
function variants(text: string): string[] {
  return [
    text,
    text.toUpperCase(),
    text.toLowerCase(),
    text.replace(/[a-z]/g, (c, i: number) => (i % 2 === 0 ? c.toUpperCase() : c)),
    text.replace(/k/gi, '\u212a').replace(/s/gi, '\u017f'),
    encodeURI(text),
    `${text}\u{1F600}\ud800`,
  ];
}

describe('literal prefilter', () => {
  it('never rejects a text a bundled rule pattern matches (corpus, case changes, encodings)', () => {
    const patterns = bundledPatterns();
    const texts = corpusTexts().flatMap(variants);
    expect(patterns.length).toBeGreaterThan(30);
    expect(texts.length).toBeGreaterThan(1000);
    let matched = 0;
    let skipped = 0;
    for (const pattern of patterns) {
      const re = new RE2(pattern, 'u');
      const prefilter = literalPrefilter(pattern);
      for (const text of texts) {
        const hit = re.test(text);
        if (prefilter === undefined) continue;
        const passes = prefilter(text);
        if (hit) {
          matched++;
          if (!passes)
            expect.fail(`prefilter of ${pattern.slice(0, 80)} rejected matching ${JSON.stringify(text)}`);
        } else if (!passes) skipped++;
      }
    }
    // The corpus has attacks for the payload rules, and most benign texts never reach RE2.
    expect(matched).toBeGreaterThan(500);
    expect(skipped).toBeGreaterThan(texts.length * patterns.length * 0.5);
  });

  it('proves literals through groups, alternations, classes and repetitions', () => {
    expect(requiredClauses('(?i)union(?:\\s|%20)+select')).toEqual([
      ['select'],
      ['union'],
      ['\t', '\n', '\f', '\r', ' ', '%20'],
    ]);
    expect(requiredClauses('(?:[\\s+]|%20)or')).toContainEqual(
      ['\t', '\n', '\f', '\r', ' ', '+', '%20'].sort().map((c) => `${c}or`),
    );
    expect(requiredClauses('(?:\'|"|%27)\\s*(?:or|and)')).toEqual([
      ['"', '%27', "'"],
      ['and', 'or'],
    ]);
    expect(requiredClauses('[Ww][Pp]-login')).toEqual([['wp-login']]);
    expect(requiredClauses('\\Q/etc/\\E(?:passwd|shadow)')).toEqual([
      ['/etc/passwd', '/etc/shadow'],
      ['passwd', 'shadow'],
    ]);
    expect(requiredClauses('\\x3cscript')).toEqual([['<script']]);
    expect(requiredClauses('(?:abc){2,}')).toEqual([['abc']]);
    expect(requiredClauses('colou?r')).toEqual([['color', 'colour']]);
  });

  it('requires nothing where a match may avoid every literal', () => {
    for (const pattern of [
      '(?:union)?select|x', // a one-letter branch: too weak to test
      '(?:|union)', // an empty branch
      '(?:union)*',
      '.*',
      '[^a]bc?',
      '\\pLunion|\\d', // a branch with no literal
      'caf\u00e9', // non-ASCII literals are not proven
    ]) {
      const clauses = requiredClauses(pattern);
      for (const clause of clauses) expect(clause.every((l) => /^[\x20-\x7e]+$/.test(l))).toBe(true);
      expect(literalPrefilter(pattern) === undefined || clauses.length > 0).toBe(true);
    }
    expect(requiredClauses('(?:|union)')).toEqual([]);
    expect(requiredClauses('(?:union)*')).toEqual([]);
    expect(requiredClauses('\\pLunion|\\d')).toEqual([]);
  });

  it('matches case-insensitively as RE2 (?i) does, Kelvin sign and long s included', () => {
    const prefilter = literalPrefilter('(?i)kiss') as (t: string) => boolean;
    const re = new RE2('(?i)kiss', 'u');
    for (const text of ['KISS', '\u212aiss', 'ki\u017f\u017f', 'x-KiSs-y']) {
      expect(re.test(text)).toBe(true);
      expect(prefilter(text)).toBe(true);
    }
    expect(prefilter('kis')).toBe(false);
  });

  it('agrees with RE2 on random texts over the patterns alphabet', () => {
    const patterns = [
      '(?i)(?:<|%3c)\\s*script',
      "(?:'|%27)\\s*(?:or|and)\\s+\\d",
      '(?:etc|proc)/(?:passwd|self)',
      'ab[cd]{1,3}ef',
    ];
    let seed = 7;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const alphabet = [
      '<',
      '%',
      '3',
      'c',
      'C',
      's',
      'S',
      'c',
      'r',
      'i',
      'p',
      't',
      ' ',
      "'",
      '2',
      '7',
      'o',
      'O',
      'R',
      'a',
      'n',
      'd',
      '1',
      'e',
      't',
      '/',
      'p',
      'w',
      'b',
      'k',
      'l',
      'f',
    ];
    for (const pattern of patterns) {
      const re = new RE2(pattern, 'u');
      const prefilter = literalPrefilter(pattern);
      expect(prefilter).toBeDefined();
      for (let n = 0; n < 20_000; n++) {
        let text = '';
        const length = 1 + Math.floor(random() * 14);
        for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
        if (re.test(text)) expect(prefilter?.(text)).toBe(true);
      }
    }
  });
});
