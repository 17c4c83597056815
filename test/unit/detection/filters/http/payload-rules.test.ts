import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileHttpFilter } from '../../../../../src/detection/filters/http/compile.js';
import { loadHttpRule } from '../../../../../src/detection/filters/http/rules.js';
import { event } from '../../../../helpers/http-events.js';

/**
 * The payload rules (sqli, xss, lfi, cmd-injection) against the payload corpora in
 * `test/fixtures/http-corpus/payloads/`: every attack line matches its rule, no benign line
 * matches any of them. A line is `<where> <value>`, where is url, user_agent, referer or cookie.
 */
const PAYLOAD_RULES = ['sqli', 'xss', 'lfi', 'cmd-injection'] as const;
const CORPUS = new URL('../../../../fixtures/http-corpus/payloads/', import.meta.url);

interface Sample {
  where: 'url' | 'user_agent' | 'referer' | 'cookie';
  value: string;
}

function samples(file: string): Sample[] {
  return readFileSync(new URL(file, CORPUS), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => {
      const space = line.indexOf(' ');
      const where = line.slice(0, space);
      if (!['url', 'user_agent', 'referer', 'cookie'].includes(where)) throw new Error(`bad line: ${line}`);
      return { where: where as Sample['where'], value: line.slice(space + 1) };
    });
}

/** The exchange a sample describes: a browser's GET of `/` with the sample in its place. */
function exchange({ where, value }: Sample) {
  const chrome =
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
  if (where === 'url') return event({ url: value, userAgent: chrome });
  if (where === 'user_agent') return event({ userAgent: value });
  if (where === 'referer') return event({ referer: value, userAgent: chrome });
  return event({ headers: { cookie: value }, userAgent: chrome });
}

function matcher(name: string) {
  const rule = loadHttpRule(name);
  if (rule.filter === undefined) throw new Error(`${name} has no filter`);
  const filter = compileHttpFilter(rule.filter);
  return (sample: Sample) => filter.matches(exchange(sample));
}

describe('payload rules', () => {
  for (const name of PAYLOAD_RULES) {
    it(`${name}: every payload of its corpus matches, in every place and encoding`, () => {
      const hit = matcher(name);
      const attacks = samples(`${name}.txt`);
      expect(attacks.length).toBeGreaterThanOrEqual(20);
      const missed = attacks.filter((s) => !hit(s)).map((s) => `${s.where} ${s.value}`);
      expect(missed).toEqual([]);
    });
  }

  it('no benign value matches any payload rule', () => {
    const benign = samples('benign.txt');
    expect(benign.length).toBeGreaterThanOrEqual(50);
    const hits: string[] = [];
    for (const name of PAYLOAD_RULES) {
      const hit = matcher(name);
      for (const s of benign) if (hit(s)) hits.push(`${name}: ${s.where} ${s.value}`);
    }
    expect(hits).toEqual([]);
  });

  it('ship jail settings: a few hits within 10 minutes ban for an hour', () => {
    for (const name of PAYLOAD_RULES) {
      const { jail } = loadHttpRule(name);
      expect(jail.findtime, name).toBe('10m');
      expect(jail.bantime, name).toBe('1h');
      expect(jail.maxretry, name).toBeGreaterThanOrEqual(2);
      expect(jail.maxretry, name).toBeLessThanOrEqual(3);
    }
  });
});
