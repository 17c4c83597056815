import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import * as z from 'zod';
import { loadFail2banReference } from '../../../../../src/detection/filters/fail2ban/reference.js';
import {
  fail2banFilterSchemaOf,
  quickFail2banFilterSpec,
} from '../../../../../src/detection/filters/fail2ban/reference-schema.js';
import { resolveFilterDefinition } from '../../../../../src/detection/filters/regex/filter-definition.js';
import {
  logFilterSchemaOf,
  quickLogFilterSpec,
} from '../../../../../src/detection/filters/regex/filter-schema.js';

// The quick checks stand in for zod on the start-up path (no zod loaded): they must never accept
// what the schema refuses, and what they accept must be what the schema gives back.

const RULES = join(import.meta.dirname, '../../../../../rules/filters');
const bundled = readdirSync(RULES)
  .filter((file) => file.endsWith('.yaml'))
  .map(
    (file) => parse(readFileSync(join(RULES, file), 'utf8'), { uniqueKeys: true }) as Record<string, unknown>,
  );

const withSymbol = { failregex: 'x' } as Record<string | symbol, unknown>;
withSymbol[Symbol('s')] = 'y';
const hidden = { failregex: 'x' };
Object.defineProperty(hidden, 'mode', { value: 'normal', enumerable: false });
class FilterLike {
  failregex = 'x';
}

/** Filters and near-filters: every way a key can be of the wrong kind. */
const logFilterCases: unknown[] = [
  ...bundled,
  {},
  { failregex: 'a' },
  { failregex: ['a', 'b'], ignoreregex: [] },
  { failregex: ['a', 1] },
  // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested
  { failregex: ['a', , 'b'] },
  { failregex: null },
  { failregex: { 0: 'a' } },
  { description: 3 },
  { extends: ['sshd'] },
  { prefregex: undefined, failregex: 'a' },
  { unknown: 1 },
  { failregex: 'a', regex: 'b' },
  { maxlines: 0 },
  { maxlines: 1 },
  { maxlines: 1000 },
  { maxlines: 1001 },
  { maxlines: 2.5 },
  { maxlines: Number.NaN },
  { maxlines: Number.POSITIVE_INFINITY },
  { maxlines: '10' },
  { vars: { a: 'b' } },
  { vars: { a: 1 } },
  { vars: ['a'] },
  { vars: JSON.parse('{"__proto__": "x", "a": "b"}') },
  { vars: Object.assign(Object.create(null), { a: 'b' }) },
  { mode: 'aggressive', modes: { aggressive: { failregex: 'x' }, ddos: {} } },
  { modes: { a: { failregex: 'x', extends: 'y' } } },
  { modes: { a: { maxlines: 0 } } },
  { modes: { a: { vars: { k: 2 } } } },
  { modes: { a: null } },
  { modes: { a: 'x' } },
  { modes: [] },
  { modes: JSON.parse('{"__proto__": {"failregex": "x"}}') },
  { ignorerdns: true },
  { datepattern: '%Y' },
  withSymbol,
  hidden,
  new FilterLike(),
  Object.assign(Object.create(null), { failregex: 'x' }),
  null,
  'sshd',
  ['failregex'],
  42,
];

describe('quickLogFilterSpec', () => {
  const schema = logFilterSchemaOf(z);

  it.each(logFilterCases.map((raw, i) => [i, raw]))('agrees with the zod schema (case %i)', (_i, raw) => {
    const quick = quickLogFilterSpec(raw);
    const zod = schema.safeParse(raw);
    if (quick !== undefined) {
      expect(zod.success).toBe(true);
      expect(quick).toEqual(zod.data);
    }
    if (!zod.success) expect(quick).toBeUndefined();
  });

  it('accepts every bundled filter without zod (the start-up path)', () => {
    expect(bundled.length).toBeGreaterThan(40);
    for (const raw of bundled) expect(quickLogFilterSpec(raw)).toBe(raw);
  });

  it('still names the problem of a filter it does not accept, with zod', () => {
    expect(() => resolveFilterDefinition({ failregex: ['a', 3], maxlines: 0 }, undefined)).toThrow(
      'filter.failregex: Invalid input\nfilter.maxlines: Too small: expected number to be >=1',
    );
    expect(() => resolveFilterDefinition({ failregex: 'a', regex: 'b' }, undefined)).toThrow(
      /filter: Unrecognized key: "regex"/,
    );
  });
});

const fail2banCases: unknown[] = [
  { fail2ban: 'sshd' },
  { fail2ban: '' },
  { fail2ban: 3 },
  {},
  { fail2ban: 'sshd', mode: 'aggressive', params: { a: 'b' }, fail2ban_dir: '/etc/fail2ban' },
  { fail2ban: 'sshd', logtype: 'journal', unsupported: 'skip' },
  { fail2ban: 'sshd', logtype: 'file', unsupported: 'refuse' },
  { fail2ban: 'sshd', logtype: 'systemd' },
  { fail2ban: 'sshd', unsupported: 'warn' },
  { fail2ban: 'sshd', params: { a: 1 } },
  { fail2ban: 'sshd', params: 'a=b' },
  { fail2ban: 'sshd', params: JSON.parse('{"__proto__": "x"}') },
  { fail2ban: 'sshd', mode: 2 },
  { fail2ban: 'sshd', extra: true },
  { fail2ban: 'sshd', mode: undefined },
  Object.assign(Object.create(null), { fail2ban: 'sshd' }),
  null,
  'fail2ban:sshd',
];

describe('quickFail2banFilterSpec', () => {
  const schema = fail2banFilterSchemaOf(z);

  it.each(fail2banCases.map((raw, i) => [i, raw]))('agrees with the zod schema (case %i)', (_i, raw) => {
    const quick = quickFail2banFilterSpec(raw);
    const zod = schema.safeParse(raw);
    if (quick !== undefined) {
      expect(zod.success).toBe(true);
      expect(quick).toEqual(zod.data);
    }
    if (!zod.success) expect(quick).toBeUndefined();
  });

  it('still names the problem of a reference it does not accept (zod loaded then)', () => {
    expect(() =>
      loadFail2banReference({ fail2ban: 'sshd', logtype: 'systemd' }, { where: 'jails.x.filter' }),
    ).toThrow(/jails\.x\.filter\.logtype: Invalid option: expected one of "file"\|"journal"/);
  });

  it('accepts the plain forms without zod', () => {
    expect(quickFail2banFilterSpec({ fail2ban: 'sshd', mode: 'ddos' })).toEqual({
      fail2ban: 'sshd',
      mode: 'ddos',
    });
  });
});
