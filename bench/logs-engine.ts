// npm run bench:logs-engine — what one line costs in RE2 through node-re2, by way of calling it.
// Measures, on lines of the generated mixes (bench/logs-mixes.ts), the alternatives the issue
// names for the regex step of a log filter: captures through split/exec, a capture-less test,
// RE2 on a Buffer (the line as UTF-8 bytes, no UTF-16 conversion per call), RE2.Set (one call for
// every failregex), one combined alternation, and the JS-side conversion a Buffer needs.
// Environment: LINES (default 100000), ROUNDS (default 5).
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import RE2 from 're2';
import { generateMix, MIXES } from './logs-mixes.js';
import { fmt, machineLine, median } from './machine.js';

const LINES = Number(process.env.LINES ?? 100_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const root = fileURLToPath(new URL('..', import.meta.url));

// The sshd shapes the bundled filter composes (prefix + one failregex), written out plainly.
const PREFIX = '^(?:[^\\s\\[\\]]*[^\\s:\\[\\]] )?sshd(?:-session|-auth)?\\[\\d+\\]: (?:error: )?';
const ADDR = '([0-9A-Fa-f:.]*[0-9A-Fa-f:])';
const BODIES = [
  `Failed (?:password|keyboard-interactive/pam|none) for (?:invalid user )?(\\S*) from ${ADDR}(?: port \\d+)?(?: ssh\\d)?(?: \\[preauth\\])?$`,
  `(?:Invalid|Illegal) user (\\S*) from ${ADDR}(?: port \\d+)?(?: \\[preauth\\])?$`,
  `User (\\S*) from ${ADDR} not allowed because (?:not listed in AllowUsers|listed in DenyUsers)$`,
  `maximum authentication attempts exceeded for (?:invalid user )?(\\S*) from ${ADDR}(?: port \\d+)?(?: ssh\\d)?(?: \\[preauth\\])?$`,
];
const full = BODIES.map((body) => new RE2(`${PREFIX}${body}`));
const noCapture = BODIES.map((body) => new RE2(`${PREFIX}${body.replace(/\((?!\?)/g, '(?:')}`));
const combined = new RE2(`${PREFIX}(?:${BODIES.map((b) => `(${b.replace(/\$$/, '')})`).join('|')})$`);
const set = new RE2.Set(BODIES.map((body) => `${PREFIX}${body}`));

function lines(mix: string): string[] {
  const file = resolve(root, `bench/out/${mix}.log`);
  if (!existsSync(file)) throw new Error(`${file} missing`);
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(0, LINES)
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\S+ +\d+ \d\d:\d\d:\d\d /, ''));
}

function time(label: string, input: readonly string[], run: (line: string) => unknown): [string, number] {
  const runs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    for (const line of input) run(line);
    runs.push(performance.now() - t);
  }
  return [label, (median(runs) * 1e6) / input.length];
}

console.log(machineLine());
for (const mixName of ['failures-40', 'near-miss-80']) {
  const mix = MIXES.find((m) => m.name === mixName);
  if (mix === undefined) continue;
  const file = resolve(root, `bench/out/${mix.name}.log`);
  if (!existsSync(file)) await generateMix(mix, LINES, file);
  // Only the lines that reach RE2 (they contain "sshd[" and " from "), as the prefilter leaves them.
  const input = lines(mix.name).filter((l) => l.includes('sshd[') && l.includes(' from '));
  const buffers = input.map((l) => Buffer.from(l));
  const rows: [string, number][] = [
    time('sequential split() (captures), string', input, (l) => {
      for (const re of full) if (re.split(l).length > 1) return true;
      return false;
    }),
    time('sequential exec() (captures), string', input, (l) => {
      for (const re of full) if (re.exec(l) !== null) return true;
      return false;
    }),
    time('sequential test() (no captures), string', input, (l) => {
      for (const re of noCapture) if (re.test(l)) return true;
      return false;
    }),
    time('Buffer.from(line) only', input, (l) => Buffer.from(l)),
  ];
  let i = 0;
  rows.push(
    time('sequential exec(), Buffer (conversion included)', input, (l) => {
      const b = Buffer.from(l);
      for (const re of full) if (re.exec(b) !== null) return true;
      return false;
    }),
  );
  i = 0;
  rows.push(
    time('sequential exec(), Buffer read from the file (no conversion)', input, () => {
      const b = buffers[i++ % buffers.length] as Buffer;
      for (const re of full) if (re.exec(b) !== null) return true;
      return false;
    }),
  );
  rows.push(time('combined alternation, one exec()', input, (l) => combined.exec(l) !== null));
  rows.push(time('RE2.Set test() (any failregex)', input, (l) => set.test(l)));
  rows.push(
    time('RE2.Set match(), then exec() of the first hit', input, (l) => {
      const hits = set.match(l);
      return hits.length > 0 ? full[hits[0] as number]?.exec(l) : null;
    }),
  );
  rows.push(
    time('combined test() first, then sequential exec() on a hit', input, (l) => {
      if (!set.test(l)) return false;
      for (const re of full) if (re.exec(l) !== null) return true;
      return false;
    }),
  );
  console.log(`\n${mix.name}: ${fmt(input.length)} lines that reach RE2, median of ${ROUNDS} rounds`);
  console.log('| way | ns per line |');
  console.log('| --- | --- |');
  for (const [label, ns] of rows) console.log(`| ${label} | ${fmt(ns)} |`);
}
