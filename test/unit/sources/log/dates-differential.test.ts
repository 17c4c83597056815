import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { generateAuthLog } from '../../../../bench/logs-generate.js';
import { generateMix, MIXES } from '../../../../bench/logs-mixes.js';
import {
  BUILT_IN_DATE_SPECS,
  createDateDetector,
  type DateDetector,
  type DateMatch,
} from '../../../../src/sources/log/dates.js';
import { parseTimeZone, type TimeZone } from '../../../../src/sources/log/time-zone.js';

// The detector remembers things between lines (the last date text and time of every format, the
// last date); it must find what a detector without memory finds: every built-in format's regex run
// over the whole line, the earliest date winning (a format whose first date is no real time finds
// nothing). Lines are fed in order to one detector, so what a line leaves behind meets the next.

const NOW = Date.UTC(2026, 10, 25, 13, 0, 0);
const root = fileURLToPath(new URL('../../../../', import.meta.url));

function reference(line: string, zone: TimeZone): DateMatch | null {
  let best: DateMatch | null = null;
  for (const spec of BUILT_IN_DATE_SPECS) {
    const re = new RegExp(spec.re.source, 'g');
    const m = re.exec(line);
    if (m === null) continue;
    const timeMs = spec.toMs(m, zone, () => NOW);
    if (Number.isNaN(timeMs)) continue;
    let start = m.index;
    let end = start + m[0].length;
    if (start > 0 && line[start - 1] === '[' && line[end] === ']') {
      start--;
      end++;
    }
    if (best === null || start < best.start) best = { timeMs, start, end, format: spec.name };
  }
  return best;
}

function plain(found: DateMatch | null) {
  return found === null
    ? null
    : { start: found.start, end: found.end, timeMs: found.timeMs, format: found.format };
}

/** Feeds `lines` to one detector; returns the lines it got wrong (at most 5) and the dates found. */
function compare(lines: readonly string[], logtimezone = 'UTC') {
  const zone = parseTimeZone(logtimezone);
  const detector: DateDetector = createDateDetector({ logtimezone, now: () => NOW });
  const wrong: { line: string; got: unknown; want: unknown }[] = [];
  let dated = 0;
  for (const line of lines) {
    const got = plain(detector.find(line));
    const want = plain(reference(line, zone));
    if (want !== null) dated++;
    if (JSON.stringify(got) !== JSON.stringify(want) && wrong.length < 5) wrong.push({ line, got, want });
  }
  return { wrong, dated };
}

/** mulberry32 */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One line of every shape the formats know, and near misses. */
const SEEDS = [
  'Nov 25 12:00:01 host sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2',
  'Nov  5 12:00:01.123456 host x',
  '2026-11-25T12:00:01.123+01:00 host x',
  '2026-11-25T12:00:01.123456Z x',
  '2026-11-25 12:00:01 x',
  '2026-11-25 12:00:01,250 INFO x',
  '2026-11-25T12:00:01+0000 gate sshd[1]: x',
  '2026-11-25 12:00:01 +01 x',
  '2015-10-07  8:25:38 [Warning] x',
  '<34>1 2026-11-25T12:00:01.003Z host app 12 - - msg',
  '<38>1 2019-07-08T17:40:16+02:00 gate sshd 57915 - - Failed password',
  '192.0.2.7 - - [25/Nov/2026:12:00:01 +0200] "GET /x HTTP/1.1" 404 153',
  '2001:db8::1 - - [25/Nov/2026:12:00:01 +0000] "GET / HTTP/2.0" 200 5 "-" "curl/8"',
  '192.0.2.7 - - [25/Nov/2026:12:00:01.123] x',
  '2026/11/25 12:00:01 [error] 1#1: *1 x, client: 192.0.2.7',
  '[Wed Nov 25 12:00:01.123456 2026] [auth_basic:error] [pid 1] [client 192.0.2.7:5] x',
  'Wed Nov 25 12:00:07 2026 [pid 1] x',
  '1764072001 x',
  '1764072001.123 x',
  '1764072001123 x',
  '[1764072001] x',
  'type=USER_AUTH msg=audit(1764072001.123:401): pid=1 uid=0 msg=\'op=PAM:authentication acct="bob" res=failed\'',
  'type=USER_ERR msg=audit(1764072001:5): x 2026-11-25 12:00:01',
  'type=X msg=audit(1764072001.123:401 x',
  '130324  0:04:00 [Warning] Access denied',
  '130324 12:04:00 x',
  '@400000006b06cdcb0000000a sshd[1]: x',
  '[25-Nov-2026 12:00:01 +0100]: <a1b2c3d4> Failed login',
  '[25-Nov-2026 12:00:01 UTC] PHP x',
  '[25-Nov-2026 12:00:01 Europe/Berlin] PHP x',
  '25-Nov-2026 12:00:01 Failed x',
  '{"time":"2026-11-25T12:00:01.000Z","ip":"192.0.2.7"}',
  'Nov 25 12:00:06 db mariadbd[9]: 2026-11-25 12:00:07 20 [Warning] x',
  'x 12026-11-25 12:00:01 y',
  'ver 2026/11/25 12:00:012 y',
  'Nov 45 12:00:01 x Nov 25 12:00:02 y',
  '2026-13-25 12:00:01 x 2026-11-25 12:00:02 y',
  'just text 12:00 and 192.0.2.7',
  '',
];

/** Text put before, inside or after a date: digits, brackets, other formats' beginnings. */
const SNIPPETS = [
  '1',
  '12',
  '2026',
  '[',
  ']',
  '[12/',
  '12-',
  '2026-',
  '2026/',
  '-',
  '/',
  ' ',
  '  ',
  '.',
  ',',
  ':',
  'Z',
  '+',
  ' +0100',
  ' Z',
  ' UTC',
  'x',
  'Nov ',
  'Wed ',
  'Nov',
  '<',
  '@4',
  '"',
  '\t',
  '25/Nov/2026:12:00:01',
  'Nov 25 12:00:01',
  '2026-11-25 12:00:01',
  '1764072001',
  '03/Oct/2026:06:27:20 +0000',
];

describe('date detection against a detector without memory', () => {
  const work = mkdtempSync(join(tmpdir(), 'portcullis-dates-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('agrees on every line of the sample logs', () => {
    const dir = resolve(root, 'test/fixtures/logs');
    const files = readdirSync(dir).filter((name) => name.endsWith('.log'));
    expect(files.length).toBeGreaterThan(20);
    const lines = files.flatMap((name) => readFileSync(join(dir, name), 'utf8').split('\n'));
    for (const zone of ['UTC', 'Europe/Berlin']) {
      const { wrong, dated } = compare(lines, zone);
      expect(wrong).toEqual([]);
      expect(dated).toBeGreaterThan(500);
    }
  });

  it('agrees on the five bench mixes', async () => {
    const logs: string[] = [];
    for (const mix of MIXES) {
      const file = join(work, `${mix.name}.log`);
      await generateMix(mix, 3000, file);
      logs.push(file);
    }
    const auth = join(work, 'auth.log');
    await generateAuthLog({ lines: 3000, file: auth });
    logs.push(auth);
    expect(logs).toHaveLength(5);
    for (const file of logs) {
      const lines = readFileSync(file, 'utf8').split('\n');
      const { wrong, dated } = compare(lines);
      expect(wrong).toEqual([]);
      expect(dated).toBeGreaterThanOrEqual(3000);
    }
  });

  it('agrees on lines alternating between formats', () => {
    const random = prng(1);
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++) lines.push(SEEDS[Math.floor(random() * SEEDS.length)] as string);
    // Runs of one format, then another: what a log merged from several writers looks like.
    for (let i = 0; i < 200; i++) {
      const line = SEEDS[Math.floor(random() * SEEDS.length)] as string;
      for (let k = Math.floor(random() * 5); k >= 0; k--) lines.push(line);
    }
    expect(compare(lines).wrong).toEqual([]);
  });

  it('agrees when digits, brackets and other dates are put before, in and after a date', () => {
    const random = prng(2);
    const zone = parseTimeZone('UTC');
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++) {
      const seed = pick(SEEDS);
      const date = reference(seed, zone);
      const where = random();
      let at: number;
      if (date === null || where < 0.2) at = Math.floor(random() * (seed.length + 1));
      else if (where < 0.45) at = date.start;
      else if (where < 0.75) at = date.end;
      else at = date.start + Math.floor(random() * (date.end - date.start + 1));
      const snippet = pick(SNIPPETS);
      const mutated =
        random() < 0.7
          ? seed.slice(0, at) + snippet + seed.slice(at)
          : seed.slice(0, at) + snippet + seed.slice(at + snippet.length);
      // The seed first, so the mutated line meets the seed's date text in the detector's memory.
      lines.push(seed, mutated);
    }
    expect(compare(lines).wrong).toEqual([]);
  });

  it('agrees whatever character follows or precedes a date it saw on the line before', () => {
    const zone = parseTimeZone('UTC');
    const lines: string[] = [];
    const chars = [9, ...Array.from({ length: 95 }, (_, k) => k + 32)].map((code) =>
      String.fromCharCode(code),
    );
    for (const seed of SEEDS) {
      const date = reference(seed, zone);
      if (date === null) continue;
      for (const c of chars) {
        for (const d of ['', ' ', 'x', '0', 'Z', '+', 'U', ':', '/']) {
          lines.push(seed, seed.slice(0, date.end) + c + d + seed.slice(date.end));
          lines.push(seed, seed.slice(0, date.end - 1) + c + d + seed.slice(date.end));
          lines.push(seed, seed.slice(0, date.start) + c + d + seed.slice(date.start));
        }
        // The date text alone, cut short, and moved right by one character.
        lines.push(seed, seed.slice(date.start, date.end) + c);
        lines.push(seed, seed.slice(0, date.end - 2));
        lines.push(seed, c + seed);
      }
    }
    expect(lines.length).toBeGreaterThan(50_000);
    expect(compare(lines).wrong).toEqual([]);
  });

  it('agrees when a date differs from the one before only before its last character, the old text later in the line', () => {
    // The remembered text is compared last character first, then searched for from the place
    // tried (short lines) or copied (long ones): a search that finds it further on is no hit.
    const zone = parseTimeZone('UTC');
    const lines: string[] = [];
    const padding = ' x'.repeat(200);
    for (const seed of SEEDS) {
      const date = reference(seed, zone);
      if (date === null) continue;
      const text = seed.slice(date.start, date.end);
      for (let k = 0; k < text.length - 1; k++) {
        const code = text.charCodeAt(k);
        if (code < 48 || code > 57) continue;
        const changed = `${text.slice(0, k)}${code === 48 ? '1' : '0'}${text.slice(k + 1)}`;
        const line = seed.slice(0, date.start) + changed + seed.slice(date.end);
        lines.push(seed, `${line} ${text}`);
        lines.push(seed, `${line}${padding} ${text}`);
        lines.push(seed, `${line}${padding}`);
        lines.push(seed, line, `${seed}${padding}`);
      }
    }
    expect(lines.length).toBeGreaterThan(2_000);
    expect(compare(lines).wrong).toEqual([]);
  });

  it('agrees on lines with two dates, the earlier of a format seen later', () => {
    const random = prng(3);
    const zone = parseTimeZone('UTC');
    const dated = SEEDS.filter((seed) => reference(seed, zone) !== null);
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const a = dated[Math.floor(random() * dated.length)] as string;
      const b = dated[Math.floor(random() * dated.length)] as string;
      const dateB = reference(b, zone) as DateMatch;
      const textB = b.slice(dateB.start, dateB.end);
      const at = Math.floor(random() * (a.length + 1));
      lines.push(b, a, `${a.slice(0, at)}${random() < 0.5 ? ' ' : ''}${textB} ${a.slice(at)}`);
    }
    expect(compare(lines).wrong).toEqual([]);
  });
});
