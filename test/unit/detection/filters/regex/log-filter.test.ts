import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../../src/core/errors.js';
import {
  type LogFilterOptions,
  loadLogFilter,
} from '../../../../../src/detection/filters/regex/log-filter.js';
import { MAX_SESSIONS } from '../../../../../src/detection/filters/regex/sessions.js';

const NOW = Date.UTC(2026, 10, 25, 13, 0, 0);
// One directory for the filter files the tests write, removed at the end.
const root = mkdtempSync(join(tmpdir(), 'pc-log-filter-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const tempDir = (prefix: string) => mkdtempSync(join(root, prefix));
const options: LogFilterOptions = { logtimezone: 'UTC', now: () => NOW };

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('RE2 only', () => {
  it('refuses look-around and back-references at load, naming the regex and RE2 reason', () => {
    const problems = problemsOf(() =>
      loadLogFilter(
        { failregex: ['^ok <HOST>$', '(a+)(?=b) <HOST>', '^(\\w)\\1 <HOST>$'] },
        { where: 'jails.x.filter' },
      ),
    );
    expect(problems).toEqual([
      'jails.x.filter.failregex.1: RE2 cannot compile "(a+)(?=b) <HOST>": invalid perl operator: (?=',
      'jails.x.filter.failregex.2: RE2 cannot compile "^(\\\\w)\\\\1 <HOST>$": invalid escape sequence: \\1',
    ]);
  });

  it('names the file and key for a filter file', () => {
    const dir = tempDir('filter-');
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      "prefregex: '^(?<=x)<F-CONTENT>.+</F-CONTENT>$'\nfailregex: ['^a <HOST>$']\nignoreregex: ['(?!b)']\n",
    );
    expect(problemsOf(() => loadLogFilter(file))).toEqual([
      `${file}: prefregex: RE2 cannot compile "^(?<=x)<F-CONTENT>.+</F-CONTENT>$": invalid perl operator: (?<=`,
      `${file}: ignoreregex.0: RE2 cannot compile "(?!b)": invalid perl operator: (?!`,
    ]);
  });

  it('refuses a failregex with no host (unless sessions or the prefregex give one) and a prefregex without content', () => {
    expect(problemsOf(() => loadLogFilter({ failregex: '^failed$' }))).toEqual([
      'filter.failregex: has no <HOST> (or <ADDR>, <IP4>, <IP6>, <CIDR>, (?P<host>...)), and neither has the prefregex; only a filter with <F-MLFID> sessions may leave it out',
    ]);
    expect(problemsOf(() => loadLogFilter({ prefregex: '^x .+$', failregex: '<HOST>' }))).toEqual([
      'filter.prefregex: needs exactly one <F-CONTENT>...</F-CONTENT> (the part failregex sees), found 0',
    ]);
  });

  it('processes a catastrophic-backtracking pattern in linear time (ReDoS)', () => {
    const filter = loadLogFilter({ failregex: '^<HOST> (a+)+$' }, { ...options, datepattern: '{NONE}' });
    const line = `192.0.2.7 ${'a'.repeat(30)}!`;
    filter.processLine(line); // warm up
    const start = performance.now();
    const result = filter.processLine(line);
    const elapsedMs = performance.now() - start;
    console.log(`ReDoS line (30 a's and a "!") processed in ${elapsedMs.toFixed(3)} ms`);
    expect(result.kind).toBe('missed');
    expect(elapsedMs).toBeLessThan(50);
    const long = `192.0.2.7 ${'a'.repeat(100_000)}!`;
    const startLong = performance.now();
    filter.processLine(long);
    const longMs = performance.now() - startLong;
    console.log(`ReDoS line (100 000 a's, cut to 16 KiB) processed in ${longMs.toFixed(3)} ms`);
    expect(longMs).toBeLessThan(50);
  });
});

describe('hostile input is data', () => {
  const sshd = () => loadLogFilter('sshd', options);

  it('cuts a 1 MB line before matching', () => {
    const filter = loadLogFilter(
      { failregex: '^x <HOST> (?P<tail>.*)$' },
      { ...options, datepattern: '{NONE}' },
    );
    const result = filter.processLine(`x 192.0.2.7 ${'y'.repeat(1_048_576)}`);
    expect(result.kind).toBe('match');
    expect(result.matches[0]?.fields.tail?.length).toBe(16_384 - 'x 192.0.2.7 '.length);
    // Compiling the filter is not what is timed: the line is.
    const compiled = sshd();
    const start = performance.now();
    compiled.processLine(
      `Nov 25 12:00:01 h sshd[1]: Failed password for ${'z'.repeat(1_048_576)} from 192.0.2.7 port 22 ssh2`,
    );
    expect(performance.now() - start).toBeLessThan(200);
  });

  it('honours maxLineLength', () => {
    const filter = loadLogFilter(
      { failregex: '^x <HOST>$' },
      { ...options, datepattern: '{NONE}', maxLineLength: 8 },
    );
    expect(filter.processLine('x 192.0.2.7').kind).toBe('missed');
  });

  it('matches lines decoded from invalid UTF-8 (U+FFFD replacement)', () => {
    const bytes = Buffer.concat([
      Buffer.from('Nov 25 12:00:01 h sshd[1]: Invalid user r'),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
      Buffer.from('t from 192.0.2.7 port 22'),
    ]);
    const line = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    const result = sshd().processLine(line);
    expect(result.matches).toEqual([
      {
        ip: '192.0.2.7',
        timeMs: Date.UTC(2026, 10, 25, 12, 0, 1),
        fields: { user: 'r\uFFFD(\uFFFD\uFFFDt' },
        regexIndex: 2,
      },
    ]);
  });

  it('treats NUL bytes, binary junk and lone surrogates as ordinary (missed) text', () => {
    const filter = sshd();
    expect(filter.processLine('\u0000\u0001\u0002\u00ff\ufffd').kind).toBe('no-date');
    expect(
      filter.processLine('Nov 25 12:00:01 h sshd[1]: Failed password for \u0000 from 192.0.2.7 port 22 ssh2')
        .matches[0]?.ip,
    ).toBe('192.0.2.7');
    expect(filter.processLine('Nov 25 12:00:01 h sshd[1]: Failed \ud800 password').kind).toBe('missed');
    const junk = Buffer.alloc(4096);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 131 + 7) & 0xff;
    expect(() => filter.processLine(new TextDecoder().decode(junk))).not.toThrow();
  });
});

describe('lines', () => {
  it('classifies matched, ignored, missed and undated lines', () => {
    const filter = loadLogFilter(
      { failregex: '^denied <HOST>(?: (?P<why>\\w+))?$', ignoreregex: ['test$'] },
      { ...options, now: () => 1234 },
    );
    expect(filter.processLine('2026-11-25 12:00:01 denied 192.0.2.7 bad')).toMatchObject({
      kind: 'match',
      dateFormat: 'ISO 8601',
      matches: [{ ip: '192.0.2.7', fields: { why: 'bad' }, regexIndex: 0 }],
    });
    expect(filter.processLine('2026-11-25 12:00:01 denied 192.0.2.7 test')).toMatchObject({
      kind: 'ignored',
      ignoreIndex: 0,
    });
    expect(filter.processLine('2026-11-25 12:00:01 allowed 192.0.2.7')).toMatchObject({
      kind: 'missed',
      dateFormat: 'ISO 8601',
    });
    expect(filter.processLine('continuation line')).toEqual({ kind: 'no-date', matches: [] });
    // A failure without a date is counted at the time it is read.
    expect(filter.processLine('denied 192.0.2.8')).toMatchObject({
      kind: 'match',
      dateFormat: undefined,
      matches: [{ timeMs: 1234 }],
    });
  });

  it('without ^ and $ a failregex is searched for, as in fail2ban', () => {
    const filter = loadLogFilter({ failregex: 'denied <HOST>' }, { ...options, datepattern: '{NONE}' });
    expect(filter.processLine('x y denied 192.0.2.7 z').matches[0]?.ip).toBe('192.0.2.7');
    const anchored = loadLogFilter({ failregex: '^denied <HOST>' }, { ...options, datepattern: '{NONE}' });
    expect(anchored.processLine('x denied 192.0.2.7').kind).toBe('missed');
  });

  it('finds a regex whose literal text only appears once the date is cut out (keys across the join)', () => {
    const line = '192.0.2.7 - [03/Oct/2026:06:00:00 +0000] "GET /wp-login.php HTTP/1.1" 404 5';
    // Ours: the date and its brackets go, the sides are joined by one blank: `- "GET /wp` is made.
    const ours = loadLogFilter({ failregex: '^<HOST> - "GET /wp' }, options);
    expect(ours.processLine(line).matches[0]?.ip).toBe('192.0.2.7');
    expect(ours.processLine(line.replace('/wp', '/ok')).kind).toBe('missed');
    // fail2ban's: only the date's text goes, `[]` stays: `- [] "GET /wp` is made.
    const dir = tempDir('join-');
    const conf = join(dir, 'join.conf');
    writeFileSync(conf, '[Definition]\nfailregex = ^<HOST> - \\[\\] "GET /wp\n');
    const theirs = loadLogFilter({ fail2ban: conf }, options);
    expect(theirs.processLine(line).matches[0]?.ip).toBe('192.0.2.7');
    expect(theirs.processLine(line.replace('/wp', '/ok')).kind).toBe('missed');
  });

  it('prefregex gates lines and hands its content to failregex', () => {
    const spec = {
      prefregex: '^app\\[\\d+\\]: <F-CONTENT>.+</F-CONTENT>$',
      failregex: ['^denied <HOST>$', 'bad <HOST> end'],
    };
    const filter = loadLogFilter(spec, { ...options, datepattern: '{NONE}' });
    expect(filter.processLine('app[1]: denied 192.0.2.7').matches[0]?.ip).toBe('192.0.2.7');
    expect(filter.processLine('other[1]: denied 192.0.2.7').kind).toBe('missed');
    expect(filter.processLine('app[1]: a bad 192.0.2.8 end b').matches[0]?.ip).toBe('192.0.2.8');
  });

  it('gives the same answers whether prefregex and failregex are composed into one program or run in two steps', () => {
    // `(?i)` at the top of the prefregex and an anchor inside a group prevent composing.
    const composed = {
      prefregex: '^app: <F-CONTENT>.+</F-CONTENT>$',
      failregex: ['^(?:denied|refused) <HOST>$', 'bad <HOST>'],
    };
    const split = {
      prefregex: '(?i)^app: <F-CONTENT>.+</F-CONTENT>$',
      failregex: ['^(?:denied|refused) <HOST>(?:$)', '(?:bad) <HOST>(?:.*$)'],
    };
    const a = loadLogFilter(composed, { ...options, datepattern: '{NONE}' });
    const b = loadLogFilter(split, { ...options, datepattern: '{NONE}' });
    for (const line of [
      'app: denied 192.0.2.7',
      'app: refused 192.0.2.8 x',
      'app: x bad 192.0.2.9 y',
      'app: nothing',
      'APP: denied 192.0.2.1',
    ]) {
      const left = a.processLine(line);
      const right = b.processLine(line);
      if (line.startsWith('APP')) expect(right.kind).toBe('match');
      else expect(left.matches).toEqual(right.matches);
    }
  });

  it('selects modes, follows extends, and overrides vars', () => {
    const dir = tempDir('filter-');
    writeFileSync(
      join(dir, 'base.yaml'),
      [
        'vars: { who: root }',
        "failregex: ['^denied <who> from <HOST>$']",
        'modes:',
        '  normal: {}',
        "  strict: { failregex: ['^probe from <HOST>$'] }",
      ].join('\n'),
    );
    const base = join(dir, 'base.yaml');
    const f = (spec: string | Record<string, unknown>, mode?: string) =>
      loadLogFilter(spec, { ...options, datepattern: '{NONE}', ...(mode === undefined ? {} : { mode }) });
    expect(f(base).processLine('probe from 192.0.2.7').kind).toBe('missed');
    expect(f(base, 'strict').processLine('probe from 192.0.2.7').matches[0]).toMatchObject({
      ip: '192.0.2.7',
      regexIndex: 1,
    });
    expect(f(base).failregex).toEqual(['^denied <who> from <HOST>$']);
    const child = { extends: base, vars: { who: 'admin' }, ignoreregex: ['from 192\\.0\\.2\\.9$'] };
    expect(f(child).processLine('denied admin from 192.0.2.7').kind).toBe('match');
    expect(f(child).processLine('denied root from 192.0.2.7').kind).toBe('missed');
    expect(f(child).processLine('denied admin from 192.0.2.9').kind).toBe('ignored');
    expect(problemsOf(() => f(base, 'lenient'))).toEqual([
      `mode: the filter "${base}" has no mode "lenient" (modes: normal, strict)`,
    ]);
    expect(problemsOf(() => f({ failregex: '<HOST>' }, 'aggressive'))).toEqual([
      'mode: the filter "inline" has no mode "aggressive" (it has no modes)',
    ]);
  });

  it('recidive ignores the bans of its own jail, named by a var', () => {
    const ban = (jail: string) =>
      `{"level":"info","time":"2026-11-25T12:00:01.000Z","pid":1,"event":"ban","target":"192.0.2.7","jail":"${jail}","msg":"ban 192.0.2.7"}`;
    const bundled = loadLogFilter('recidive', options);
    expect(bundled.processLine(ban('recidive')).kind).toBe('ignored');
    expect(bundled.processLine(ban('long-ban')).kind).toBe('match');
    const renamed = loadLogFilter({ extends: 'recidive', vars: { ownjail: 'long-ban' } }, options);
    expect(renamed.processLine(ban('long-ban')).kind).toBe('ignored');
    expect(renamed.processLine(ban('recidive')).matches[0]).toMatchObject({
      ip: '192.0.2.7',
      fields: { jail: 'recidive' },
    });
  });

  it('refuses unknown keys and unknown bundled names', () => {
    expect(problemsOf(() => loadLogFilter({ failregx: ['x'] }))).toEqual([
      expect.stringContaining('filter: Unrecognized key: "failregx"'),
    ]);
    expect(problemsOf(() => loadLogFilter('sshdd'))).toEqual([
      expect.stringMatching(/^filter: no bundled log filter named "sshdd" \(did you mean "sshd"\?/),
    ]);
  });

  it('reset() forgets sessions', () => {
    const filter = loadLogFilter('sshd', { ...options, mode: 'aggressive' });
    filter.processLine('Nov 25 12:00:01 h sshd[7]: Connection from 192.0.2.7 port 1 on 198.51.100.1 port 22');
    filter.reset();
    expect(
      filter.processLine(
        'Nov 25 12:00:02 h sshd[7]: error: kex_exchange_identification: Connection closed by remote host',
      ).kind,
    ).toBe('info');
  });
});

describe('multi-line sessions stay bounded', () => {
  const spec = {
    prefregex: '^s\\[<F-MLFID>\\d+</F-MLFID>\\]: <F-CONTENT>.+</F-CONTENT>$',
    maxlines: 3,
    failregex: ['^hello from <HOST><F-NOFAIL>$', '^fail$', '^bye<F-NOFAIL><F-MLFFORGET>$'],
  };

  it('carries the host of an earlier line to a failure', () => {
    const filter = loadLogFilter(spec, { ...options, datepattern: '{NONE}' });
    expect(filter.processLine('s[1]: hello from 192.0.2.7').kind).toBe('info');
    expect(filter.processLine('s[1]: fail').matches.map((m) => m.ip)).toEqual(['192.0.2.7']);
    expect(filter.processLine('s[2]: fail').kind).toBe('info'); // waits: nobody named the client
    expect(filter.processLine('s[1]: bye').kind).toBe('info');
    expect(filter.processLine('s[1]: fail').kind).toBe('info'); // forgotten at "bye"
  });

  it(`remembers at most ${MAX_SESSIONS} sessions and maxlines lines of each`, () => {
    const filter = loadLogFilter(spec, { ...options, datepattern: '{NONE}' });
    filter.processLine('s[0]: hello from 192.0.2.7');
    for (let i = 1; i <= MAX_SESSIONS; i++) filter.processLine(`s[${i}]: hello from 198.51.100.1`);
    expect(filter.processLine('s[0]: fail').kind).toBe('info'); // evicted, least recently seen
    filter.processLine('s[5000]: hello from 192.0.2.8');
    filter.processLine('s[5000]: fail');
    filter.processLine('s[5000]: fail');
    // The session had maxlines (3) lines: the next line starts a new one.
    expect(filter.processLine('s[5000]: fail').kind).toBe('info');
  });

  it('holds at most maxlines waiting failures per session', () => {
    const filter = loadLogFilter(spec, { ...options, datepattern: '{NONE}' });
    for (let i = 0; i < 2; i++) filter.processLine('s[9]: fail');
    expect(filter.processLine('s[9]: hello from 192.0.2.9').matches).toHaveLength(2);
  });
});
