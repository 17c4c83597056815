import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DnsCacheOptions } from '../../../../../src/detection/filters/regex/dns.js';
import { bundledLogFilters } from '../../../../../src/detection/filters/regex/filter-definition.js';
import {
  type LineResult,
  type LogFilterOptions,
  type LogMatch,
  loadLogFilter,
} from '../../../../../src/detection/filters/regex/log-filter.js';

/**
 * Sample logs as tests. `test/fixtures/logs/<filter>.log` holds log lines, each checked one may be
 * preceded by annotations (fail2ban's convention):
 *
 *     # failJSON: {"time": "2026-11-25T12:00:01", "match": true, "host": "192.0.2.7", "user": "root"}
 *     Nov 25 12:00:01 host sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2
 *
 * - `match: true` expects a failure with that `host`, `time` (ISO; UTC unless it has a zone) and
 *   every other key as a captured field; several failJSON lines before one log line expect that
 *   many failures from it (a multi-line session emitting waiting failures). `match: false` expects
 *   none. Optional `kind` checks the line's classification (`ignored`, `info`, `missed`, ...).
 * - A line without failJSON must not produce a failure (every match in a sample is annotated).
 * - `# filterOptions: [{"mode": "aggressive"}, ...]` runs the lines below it once per entry (keys
 *   of LogFilterOptions, plus `now` as ISO text). Default: logtimezone UTC, now 2026-12-31T12:00:00Z.
 * - `# dns: {"forward": {"name": ["ip", ...]}, "reverse": {"ip": ["name", ...]}}` answers the
 *   filter's DNS lookups (`usedns`, `ignorerdns`) from these tables, never from the network. A line
 *   whose failure waits for a lookup is checked with the failures the lookup then produced.
 * - Other `#` lines are comments.
 */

const dir = join(import.meta.dirname, '../../../../fixtures/logs');
const DEFAULT_NOW = '2026-12-31T12:00:00Z';
const RESERVED = new Set(['time', 'match', 'host', 'kind', 'desc']);

interface Expectation {
  lineNo: number;
  json: Record<string, unknown>;
}

interface Entry {
  lineNo: number;
  line: string;
  expected: Expectation[];
}

interface Segment {
  options: Record<string, unknown>[];
  entries: Entry[];
}

interface DnsTables {
  forward?: Record<string, string[]>;
  reverse?: Record<string, string[]>;
}

function fakeDns(tables: DnsTables): DnsCacheOptions {
  const answer = (table: Record<string, string[]> | undefined, key: string) => {
    const found = table?.[key];
    return found === undefined ? Promise.reject(new Error(`ENOTFOUND ${key}`)) : Promise.resolve(found);
  };
  return {
    resolver: (name) => answer(tables.forward, name.toLowerCase()),
    reverser: (ip) => answer(tables.reverse, ip),
  };
}

function parseDns(text: string): DnsTables {
  const m = /^#\s*dns:\s*(.*)$/m.exec(text);
  return m === null ? {} : (JSON.parse(m[1] as string) as DnsTables);
}

function parseFixture(text: string): Segment[] {
  const segments: Segment[] = [{ options: [{}], entries: [] }];
  let pending: Expectation[] = [];
  text.split('\n').forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const annotation = /^#\s*(failJSON|filterOptions|dns):\s*(.*)$/.exec(line);
    if (annotation !== null) {
      const value = JSON.parse(annotation[2] as string) as unknown;
      if (annotation[1] === 'dns') return;
      if (annotation[1] === 'failJSON') pending.push({ lineNo, json: value as Record<string, unknown> });
      else
        segments.push({
          options: Array.isArray(value) ? value : [value as Record<string, unknown>],
          entries: [],
        });
      return;
    }
    if (line.startsWith('#') || (line === '' && pending.length === 0)) return;
    (segments[segments.length - 1] as Segment).entries.push({ lineNo, line, expected: pending });
    pending = [];
  });
  return segments.filter((segment) => segment.entries.length > 0);
}

function expectedTime(text: string): number {
  return Date.parse(/(?:Z|[+-]\d{2}:?\d{2})$/.test(text) ? text : `${text}Z`);
}

async function runSegment(
  filterName: string,
  entries: readonly Entry[],
  raw: Record<string, unknown>,
  dns: DnsTables,
): Promise<string[]> {
  const { now, ...rest } = raw as { now?: string } & LogFilterOptions;
  const nowMs = Date.parse(now ?? DEFAULT_NOW);
  const late: LogMatch[] = [];
  const filter = loadLogFilter(filterName, {
    logtimezone: 'UTC',
    ...rest,
    now: () => nowMs,
    dns: fakeDns(dns),
    onResolved: (matches) => late.push(...matches),
  });
  const errors: string[] = [];
  for (const { lineNo, line, expected } of entries) {
    let result: LineResult = filter.processLine(line);
    if (result.resolving !== undefined) {
      await filter.settled();
      result = { ...result, matches: late.splice(0) };
    }
    const at = `line ${lineNo}`;
    const wanted = expected.filter((e) => e.json.match === true);
    if (expected.length === 0 && result.matches.length > 0) {
      errors.push(`${at}: unannotated line produced ${JSON.stringify(result.matches)}`);
      continue;
    }
    for (const e of expected) {
      if (typeof e.json.kind === 'string' && result.kind !== e.json.kind) {
        errors.push(`line ${e.lineNo} (for ${at}): expected kind ${e.json.kind}, got ${result.kind}`);
      }
    }
    if (wanted.length === 0) {
      if (expected.length > 0 && result.matches.length > 0) {
        errors.push(`${at}: expected no failure, got ${JSON.stringify(result.matches)}`);
      }
      continue;
    }
    if (result.matches.length !== wanted.length) {
      errors.push(
        `${at}: expected ${wanted.length} failure(s), got ${result.matches.length} (${result.kind}${
          result.badHost === undefined ? '' : `, bad host ${result.badHost}`
        })`,
      );
      continue;
    }
    wanted.forEach((e, k) => {
      const match = result.matches[k];
      if (match === undefined) return;
      const json = e.json;
      if (json.host !== undefined && match.ip !== json.host) {
        errors.push(`line ${e.lineNo}: expected host ${String(json.host)}, got ${match.ip}`);
      }
      if (typeof json.time === 'string' && match.timeMs !== expectedTime(json.time)) {
        errors.push(
          `line ${e.lineNo}: expected time ${json.time}, got ${new Date(match.timeMs).toISOString()}`,
        );
      }
      for (const [key, value] of Object.entries(json)) {
        if (RESERVED.has(key)) continue;
        if (match.fields[key] !== value) {
          errors.push(
            `line ${e.lineNo}: expected ${key} ${JSON.stringify(value)}, got ${JSON.stringify(match.fields[key])}`,
          );
        }
      }
    });
  }
  return errors;
}

const fixtures = readdirSync(dir).filter((file) => file.endsWith('.log'));

describe('log filter sample fixtures', () => {
  for (const file of fixtures) {
    const filterName = file.slice(0, -4);
    const text = readFileSync(join(dir, file), 'utf8');
    const segments = parseFixture(text);
    const dns = parseDns(text);
    const runs = new Map<string, { entries: Entry[]; options: Record<string, unknown> }>();
    for (const segment of segments) {
      for (const options of segment.options) {
        const key = JSON.stringify(options);
        const run = runs.get(key) ?? { entries: [], options };
        run.entries.push(...segment.entries);
        runs.set(key, run);
      }
    }
    for (const [key, run] of runs) {
      it(`${filterName} ${key}`, async () => {
        expect(await runSegment(filterName, run.entries, run.options, dns)).toEqual([]);
      });
    }
  }
});

describe('bundled filters', () => {
  it.each(bundledLogFilters())('%s has a sample log with at least 8 failures and 4 non-matches', (name) => {
    expect(fixtures, `test/fixtures/logs/${name}.log is missing`).toContain(`${name}.log`);
    const text = readFileSync(join(dir, `${name}.log`), 'utf8');
    const annotations = [...text.matchAll(/^#\s*failJSON:\s*(.*)$/gm)].map((m) => JSON.parse(m[1] as string));
    expect(annotations.filter((a) => a.match === true).length).toBeGreaterThanOrEqual(8);
    expect(annotations.filter((a) => a.match === false).length).toBeGreaterThanOrEqual(4);
  });
});
