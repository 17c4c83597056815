// npm run bench:logs-dates — what finding a line's date costs: `createDateDetector().find(line)`
// in ns per line, today's code against a baseline revision's (read with `git show`, so no stash or
// checkout), on access-log, syslog, ISO 8601 and mixed lines. Every line's result (start, end,
// time, format) is also compared between the two; any difference is printed and fails the run.
//
// Environment: LINES (default 200000 per kind), ROUNDS (default 7), BASELINE (a git revision,
// default 3291873, the last one before the scan-based detector).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDateDetector, type DateMatch } from '../src/sources/log/dates.js';
import { generateAuthLog } from './logs-generate.js';
import { generateMix, MIXES } from './logs-mixes.js';
import { fmt, machineLine, median } from './machine.js';

const LINES = Number(process.env.LINES ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const BASELINE = process.env.BASELINE ?? '3291873';
const root = fileURLToPath(new URL('..', import.meta.url));
const NOW = Date.UTC(2026, 10, 25, 13, 0, 0);

interface Detector {
  find(line: string): DateMatch | null;
}
type Create = (options: { logtimezone?: string; now?: () => number }) => Detector;

/** The baseline's date code, written to a temporary tree and imported from there. */
async function loadBaseline(work: string): Promise<Create> {
  const files = [
    'src/sources/log/dates.ts',
    'src/sources/log/date-template.ts',
    'src/sources/log/date-pattern.ts',
    'src/sources/log/time-zone.ts',
    'src/core/errors.ts',
  ];
  for (const file of files) {
    const text = execFileSync('git', ['show', `${BASELINE}:${file}`], { cwd: root, encoding: 'utf8' });
    mkdirSync(dirname(join(work, file)), { recursive: true });
    writeFileSync(join(work, file), text);
  }
  const module = (await import(pathToFileURL(join(work, 'src/sources/log/dates.ts')).href)) as {
    createDateDetector: Create;
  };
  return module.createDateDetector;
}

function readLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
}

/** ISO 8601 lines as journalctl -o short-iso-precise and many applications write them. */
function isoLines(count: number): string[] {
  const out: string[] = [];
  let time = Date.UTC(2026, 9, 3, 6, 0, 0);
  for (let i = 0; i < count; i++) {
    time += (i * 7919) % 23;
    const stamp = new Date(time).toISOString().replace('Z', `${String(i % 1000).padStart(3, '0')}+00:00`);
    out.push(`${stamp} edge01 app[${4000 + (i % 50)}]: request ${i} from 198.18.${i % 256}.${i % 200} done`);
  }
  return out;
}

function same(a: DateMatch | null, b: DateMatch | null): boolean {
  if (a === null || b === null) return a === b;
  return a.start === b.start && a.end === b.end && Object.is(a.timeMs, b.timeMs) && a.format === b.format;
}

/** ns per line of one pass over `lines` with a fresh detector. */
function pass(create: Create, lines: readonly string[]): number {
  const detector = create({ logtimezone: 'UTC', now: () => NOW });
  let sink = 0;
  const start = process.hrtime.bigint();
  for (const line of lines) sink += detector.find(line)?.end ?? 0;
  const ns = Number(process.hrtime.bigint() - start);
  if (sink === -1) process.stdout.write('');
  return ns / lines.length;
}

const work = mkdtempSync(join(tmpdir(), 'portcullis-dates-'));
try {
  const baseline = await loadBaseline(work);
  const web = MIXES.find((mix) => mix.name === 'web-access');
  if (web === undefined) throw new Error('web-access mix missing');
  await generateMix(web, LINES, join(work, 'web-access.log'));
  await generateAuthLog({ lines: LINES, file: join(work, 'auth.log') });
  const access = readLines(join(work, 'web-access.log'));
  const syslog = readLines(join(work, 'auth.log'));
  const iso = isoLines(LINES);
  const mixed: string[] = [];
  for (let i = 0; i < LINES; i++)
    mixed.push((i % 3 === 0 ? access : i % 3 === 1 ? syslog : iso)[i] as string);
  const kinds: [string, string[]][] = [
    ['access log (nginx combined)', access],
    ['syslog (auth.log)', syslog],
    ['ISO 8601 (short-iso-precise)', iso],
    ['mixed, formats alternating', mixed],
  ];

  process.stdout.write(
    `${machineLine()}\nbaseline ${BASELINE}, ${fmt(LINES)} lines per kind, ${ROUNDS} rounds\n\n`,
  );
  let differences = 0;
  for (const [name, lines] of kinds) {
    const before = baseline({ logtimezone: 'UTC', now: () => NOW });
    const after = createDateDetector({ logtimezone: 'UTC', now: () => NOW });
    for (const line of lines) {
      const a = before.find(line);
      const b = after.find(line);
      if (!same(a, b)) {
        if (differences++ < 10)
          process.stdout.write(
            `DIFFERENT (${name}) ${JSON.stringify(line)}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}\n`,
          );
      }
    }
  }
  process.stdout.write('| lines | baseline ns/line | now ns/line | ratio |\n| --- | --- | --- | --- |\n');
  for (const [name, lines] of kinds) {
    const old: number[] = [];
    const now: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      old.push(pass(baseline, lines));
      now.push(pass(createDateDetector, lines));
    }
    const a = median(old);
    const b = median(now);
    process.stdout.write(`| ${name} | ${fmt(a, 1)} | ${fmt(b, 1)} | ${fmt(a / b, 1)}x |\n`);
  }
  process.stdout.write(
    `\nresults compared on ${fmt(LINES * kinds.length)} lines: ${differences} different\n`,
  );
  if (differences > 0) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
