import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Fail2banConfig } from '../../../../../src/detection/filters/fail2ban/config-set.js';
import { translateDatePattern } from '../../../../../src/detection/filters/fail2ban/date-pattern.js';
import { readFail2banFilter } from '../../../../../src/detection/filters/fail2ban/filter-file.js';
import { parseIni } from '../../../../../src/detection/filters/fail2ban/ini.js';
import { translatePythonRegex } from '../../../../../src/detection/filters/fail2ban/python-regex.js';
import { parseFilterOption } from '../../../../../src/detection/filters/fail2ban/reference.js';
import { loadLogFilter } from '../../../../../src/detection/filters/regex/log-filter.js';

// Our own fail2ban-format files (no fail2ban text): the reader must treat them as fail2ban does.
const dir = mkdtempSync(join(tmpdir(), 'pc-f2b-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const filterDir = join(dir, 'filter.d');
mkdirSync(filterDir);
writeFileSync(
  join(filterDir, 'base.conf'),
  [
    '[DEFAULT]',
    '_daemon = \\S+',
    'prefix = ^\\s*(?:\\S+ )?<_daemon>(?:\\[\\d+\\])?:\\s+',
    '',
    '[Definition]',
    'greeting = hello',
    '',
  ].join('\n'),
);
writeFileSync(
  join(filterDir, 'widget.conf'),
  [
    '# a comment',
    '[INCLUDES]',
    'before = base.conf',
    '',
    '[DEFAULT]',
    '_daemon = widgetd',
    '',
    '[Definition]',
    'mode = normal',
    'failre-normal = ^<F-NOFAIL>login attempt</F-NOFAIL> from <HOST>$',
    'failre-strict = ^login attempt from <HOST>$',
    '                ^probe from <ADDR> user <F-USER>\\w+</F-USER>$',
    'prefregex = %(prefix)s<F-CONTENT>.+</F-CONTENT>$',
    '; a semicolon comment line',
    'failregex = ^bad password for <F-USER>\\S+</F-USER> from <HOST>$',
    '            <failre-<mode>>',
    '',
    '            ^denied %% from <HOST> ((?i)quickly)$   ; inline comment',
    'ignoreregex = from 10\\.9\\.',
    'datepattern = {^LN-BEG}%%Y-%%m-%%d %%H:%%M:%%S',
    'journalmatch = _SYSTEMD_UNIT=widget.service + _COMM=widgetd',
    '',
  ].join('\n'),
);
writeFileSync(
  join(filterDir, 'widget.local'),
  ['[Definition]', 'ignoreregex = %(known/ignoreregex)s', '              from 10\\.8\\.', ''].join('\n'),
);

describe('fail2ban INI files', () => {
  it('reads sections, continuation lines, comments and lower-cased keys as configparser does', () => {
    const ini = parseIni(
      '[A]\nKey = one\n  two\n\n  three\n# c\nother: x ; note\n[DEFAULT]\nd = 1\n',
      'x.conf',
    );
    expect(ini.sections.get('A')?.get('key')).toBe('one\ntwo\n\nthree');
    expect(ini.sections.get('A')?.get('other')).toBe('x');
    expect(ini.defaults.get('d')).toBe('1');
    expect(() => parseIni('key = value\n', 'y.conf')).toThrow(/y\.conf:1: an option before any \[section\]/);
  });

  it('merges includes and .local files; %(known/x)s is the value before the override', () => {
    const config = Fail2banConfig.read([join(filterDir, 'widget.conf'), join(filterDir, 'widget.local')]);
    expect(config.files.map((f) => f.slice(filterDir.length + 1))).toEqual([
      'base.conf',
      'widget.conf',
      'widget.local',
    ]);
    expect(config.get('Definition', 'ignoreregex')).toBe('from 10\\.9\\.\nfrom 10\\.8\\.');
    expect(config.get('Definition', 'greeting')).toBe('hello');
    expect(() =>
      Fail2banConfig.read([join(filterDir, 'widget.conf')]).get('Definition', 'nothing'),
    ).not.toThrow();
  });
});

describe('a fail2ban filter file', () => {
  it('becomes a portcullis filter: tags, modes, %% escapes, (?i) groups, datepattern, journalmatch', () => {
    const read = readFail2banFilter(join(filterDir, 'widget.conf'));
    expect(read.definition.modes).toEqual(['normal', 'strict']);
    expect(read.journalmatch).toEqual([['_SYSTEMD_UNIT=widget.service', '+', '_COMM=widgetd']]);
    expect(read.definition.datepattern?.source).toBe('^%Y-%m-%d %H:%M:%S');
    const filter = loadLogFilter({ fail2ban: join(filterDir, 'widget.conf') });
    const at = '2024-05-01 10:00:00 gw widgetd[7]: ';
    expect(filter.processLine(`${at}bad password for eve from 192.0.2.5`).matches[0]?.ip).toBe('192.0.2.5');
    expect(filter.processLine(`${at}denied % from 192.0.2.6 QUICKLY`).matches[0]?.ip).toBe('192.0.2.6');
    // The .local file's ignoreregex was added to the .conf's.
    expect(filter.processLine(`${at}bad password for eve from 10.8.0.1`).kind).toBe('ignored');
    expect(filter.processLine(`${at}bad password for eve from 10.9.0.1`).kind).toBe('ignored');
    // Another daemon's line, and a near miss, do not match.
    expect(
      filter.processLine('2024-05-01 10:00:00 gw otherd[7]: bad password for eve from 192.0.2.5').kind,
    ).toBe('missed');
    expect(filter.processLine(`${at}bad password for eve from 192.0.2.5 again`).kind).toBe('missed');
    // mode=normal: a NOFAIL line; mode=strict: a failure.
    expect(filter.processLine(`${at}login attempt from 192.0.2.7`).kind).toBe('info');
    const strict = loadLogFilter({ fail2ban: join(filterDir, 'widget.conf'), mode: 'strict' });
    expect(strict.processLine(`${at}login attempt from 192.0.2.7`).matches[0]?.ip).toBe('192.0.2.7');
    expect(strict.processLine(`${at}probe from 192.0.2.8 user bob`).matches[0]?.fields.user).toBe('bob');
    expect(() => loadLogFilter({ fail2ban: join(filterDir, 'widget.conf'), mode: 'loose' })).toThrow(
      /has no mode "loose" \(modes: normal, strict\)/,
    );
  });

  it('a missing file is a config error naming where it was asked for', () => {
    expect(() => loadLogFilter('fail2ban:nope', { where: 'portcullis.yaml: jails.x.filter' })).toThrow(
      /portcullis\.yaml: jails\.x\.filter: no fail2ban filter file \/etc\/fail2ban\/filter\.d\/nope\.conf/,
    );
  });
});

describe('fail2ban details that change what matches', () => {
  const kdir = mkdtempSync(join(tmpdir(), 'pc-f2b-known-'));
  afterAll(() => rmSync(kdir, { recursive: true, force: true }));
  mkdirSync(join(kdir, 'k.d'));
  writeFileSync(
    join(kdir, 'k.conf'),
    ['[Definition]', '_pref = bar', 'failregex = ^%(_pref)s foo <HOST>$', ''].join('\n'),
  );
  writeFileSync(
    join(kdir, 'k.local'),
    ['[Definition]', 'failregex = <known/failregex>', '            ^baz <HOST>$', ''].join('\n'),
  );
  writeFileSync(join(kdir, 'm.conf'), ['[Definition]', 'failregex = ^one <HOST>$', ''].join('\n'));
  writeFileSync(
    join(kdir, 'm.local'),
    ['[Definition]', 'failregex = %(known/failregex)s', '            ^two <HOST>$', ''].join('\n'),
  );
  mkdirSync(join(kdir, 'm.d'));
  writeFileSync(
    join(kdir, 'm.d', 'a.local'),
    ['[Definition]', 'failregex = %(known/failregex)s', '            ^three <HOST>$', ''].join('\n'),
  );

  it('<known/x> is the overridden value, interpolated; %(known/x)s chains through several .local files', () => {
    const k = loadLogFilter({ fail2ban: join(kdir, 'k.conf') });
    expect(k.processLine('bar foo 192.0.2.1').matches[0]?.ip).toBe('192.0.2.1');
    expect(k.processLine('baz 192.0.2.2').matches[0]?.ip).toBe('192.0.2.2');
    const m = loadLogFilter({ fail2ban: join(kdir, 'm.conf') });
    for (const word of ['one', 'two', 'three']) expect(m.processLine(`${word} 192.0.2.3`).kind).toBe('match');
  });

  it('several datepatterns stay alternatives: a format only one of them knows still dates its lines', () => {
    expect(translateDatePattern('{^LN-BEG}%b-%d-%Exy %H:%M:%S\n{^LN-BEG}').pattern).toBe(
      '^%b-%d-%y %H:%M:%S\n{DEFAULT}',
    );
    writeFileSync(
      join(kdir, 'relay.conf'),
      [
        '[Definition]',
        'failregex = ^\\s*auth failed from <HOST>$',
        'datepattern = {^LN-BEG}%%b-%%d-%%Exy %%H:%%M:%%S',
        '              {^LN-BEG}',
        '',
      ].join('\n'),
    );
    const relay = loadLogFilter({ fail2ban: join(kdir, 'relay.conf') }, { logtimezone: 'UTC' });
    // A format detection does not know (it used to be "no date" on every line: never a match).
    const own = relay.processLine('Apr-07-13 07:08:36 auth failed from 192.0.2.20');
    expect(own).toMatchObject({ kind: 'match', matches: [{ ip: '192.0.2.20' }] });
    expect(own.matches[0]?.timeMs).toBe(Date.UTC(2013, 3, 7, 7, 8, 36));
    // The other alternative: the formats detection knows.
    const iso = relay.processLine('2013-04-07 07:08:37 auth failed from 192.0.2.21');
    expect(iso.matches[0]?.timeMs).toBe(Date.UTC(2013, 3, 7, 7, 8, 37));
  });

  it('values that expand exponentially are refused past 64 KiB, through %(x)s or <x>', () => {
    const chain = (ref: (name: string) => string) =>
      Array.from({ length: 7 }, (_, i) => `v${i} = ${ref(`v${i + 1}`).repeat(8)}`);
    writeFileSync(
      join(kdir, 'bomb.conf'),
      ['[Definition]', ...chain((n) => `%(${n})s`), 'v7 = abcdefgh', 'failregex = ^%(v0)s <HOST>$', ''].join(
        '\n',
      ),
    );
    writeFileSync(
      join(kdir, 'tagbomb.conf'),
      ['[Definition]', ...chain((n) => `<${n}>`), 'v7 = abcdefgh', 'failregex = ^<v0> <HOST>$', ''].join(
        '\n',
      ),
    );
    const started = Date.now();
    expect(() => loadLogFilter({ fail2ban: join(kdir, 'bomb.conf') })).toThrow(/expand to more than 64 KiB/);
    expect(() => loadLogFilter({ fail2ban: join(kdir, 'tagbomb.conf') })).toThrow(
      /expands to more than 64 KiB/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('an exact date cut leaves the brackets around the date, as fail2ban does', () => {
    writeFileSync(
      join(kdir, 'web.conf'),
      ['[Definition]', 'failregex = ^<HOST> - \\S+ \\[\\] "GET /admin', ''].join('\n'),
    );
    const web = loadLogFilter({ fail2ban: join(kdir, 'web.conf') });
    const line = '198.51.100.4 - - [04/Aug/2024:12:00:01 +0000] "GET /admin HTTP/1.1" 404 1';
    expect(web.processLine(line)).toMatchObject({ kind: 'match', matches: [{ ip: '198.51.100.4' }] });
  });
});

describe('Python regex syntax on RE2', () => {
  it('rewrites what means the same', () => {
    expect(translatePythonRegex('a{,3}\\Z')).toBe('a{0,3}\\z');
    expect(translatePythonRegex('((?i)abc)')).toBe('(?i:abc)');
    expect(translatePythonRegex('(?i)abc')).toBe('(?i)abc');
    expect(translatePythonRegex('[[:x]')).toBe('[\\[:x]');
    expect(translatePythonRegex('(?P<_sep>-)(?P<host>\\w+)(?P<ip4>\\d+)')).toBe(
      '(?:-)(?P<f2b_host>[\\p{L}\\p{N}_]+)(?P<host>\\p{Nd}+)',
    );
    expect(translatePythonRegex('x(?#note)y')).toBe('xy');
    // <F-ID/> is fail2ban's \S+, in Python's whitespace terms.
    const tags = translatePythonRegex('<F-MLFGAINED>ok</F-MLFGAINED> <F-ID/> <NOSUCH>');
    expect(tags.startsWith('<F-NOFAIL>ok</F-NOFAIL> <F-ID>[^\\t\\n\\x0B')).toBe(true);
    expect(tags.endsWith(']+</F-ID> [<]NOSUCH[>]')).toBe(true);
    // Python's \w is Unicode-aware: so is the translation.
    const filter = loadLogFilter({ failregex: [translatePythonRegex('^user \\w+ from <HOST>$')] });
    expect(filter.processLine('user josé from 192.0.2.9').matches[0]?.ip).toBe('192.0.2.9');
  });

  it("keeps Python's meaning of \\s, \\S and (?a); \\b is kept with a note", () => {
    const py = (pattern: string, text: string) =>
      loadLogFilter({ failregex: [translatePythonRegex(pattern)] }).processLine(text).kind === 'match'
        ? 'match'
        : 'no';
    // Python's \s (text patterns) includes \v, NBSP and the Unicode spaces; RE2's does not.
    expect(py('^user\\sfrom <HOST>$', 'user\u000bfrom 192.0.2.1')).toBe('match');
    expect(py('^user\\sfrom <HOST>$', 'user\u00a0from 192.0.2.1')).toBe('match');
    expect(py('^user \\S+ from <HOST>$', 'user a\u2003b from 192.0.2.1')).toBe('no');
    // A negated class inside a class, as Debian's filters write it.
    expect(py('^id [\\S.]+ from <HOST>$', 'id a.b from 192.0.2.1')).toBe('match');
    expect(py('^id [\\S.]+ from <HOST>$', 'id a\u00a0b from 192.0.2.1')).toBe('no');
    expect(() => translatePythonRegex('[^\\Sx]')).toThrow(/negated class/);
    // `[^\Wf]`: a word character but `f` (what the rewrite of sshd's "no matching" writes).
    for (const [c, want] of [
      ['g', 'match'],
      ['é', 'match'],
      ['5', 'match'],
      ['_', 'match'],
      ['f', 'no'],
      ['F', 'match'],
      [' ', 'no'],
      ['-', 'no'],
    ])
      expect(py('^w [^\\Wf] from <HOST>$', `w ${c} from 192.0.2.1`), c).toBe(want);
    expect(py('^w [^\\Wf5_] from <HOST>$', 'w 5 from 192.0.2.1')).toBe('no');
    expect(py('^w [^\\Wf5_] from <HOST>$', 'w \u0661 from 192.0.2.1')).toBe('match');
    expect(py('(?a)^w [^\\Wf] from <HOST>$', 'w é from 192.0.2.1')).toBe('no');
    expect(py('(?a)^w [^\\Wf] from <HOST>$', 'w g from 192.0.2.1')).toBe('match');
    expect(() => translatePythonRegex('[^\\W.]')).toThrow(/negated class/);
    // (?a): ASCII classes, as in Python (it used to be dropped while \w stayed Unicode).
    expect(py('(?a)^user \\w+ from <HOST>$', 'user jörg from 192.0.2.1')).toBe('no');
    expect(py('(?a)^user \\w+ from <HOST>$', 'user jorg from 192.0.2.1')).toBe('match');
    expect(py('^((?a)\\d+) \\d+ from <HOST>$', '\u0661 \u0661 from 192.0.2.1')).toBe('no');
    expect(py('^((?a)\\d+) \\d+ from <HOST>$', '1 \u0661 from 192.0.2.1')).toBe('match');
    const notes = new Set<string>();
    translatePythonRegex('\\bfoo\\b', { notes });
    expect([...notes].join()).toMatch(/ASCII on RE2 and Unicode in Python/);
    const none = new Set<string>();
    translatePythonRegex('(?a)\\bfoo\\b', { notes: none });
    expect(none.size).toBe(0);
  });

  it("<HOST>, <ADDR>, <IP4>, <IP6> match as fail2ban's: the port after the address is not taken", () => {
    const host = (pattern: string, text: string) =>
      loadLogFilter({ failregex: [translatePythonRegex(pattern)] }).processLine(text);
    expect(host('^from <HOST>(?::\\d+)?$', 'from 198.51.100.87:5543').matches[0]?.ip).toBe('198.51.100.87');
    expect(host('^from <HOST>:\\d+$', 'from 198.51.100.87:5543').matches[0]?.ip).toBe('198.51.100.87');
    expect(host('^from <ADDR>:\\d+ x$', 'from [2001:db8::7]:443 x').matches[0]?.ip).toBe('2001:db8::7');
    expect(host('^from <IP4>:\\d+$', 'from ::ffff:192.0.2.4:80').matches[0]?.ip).toBe('192.0.2.4');
    expect(host('^from <IP6>$', 'from 2001:db8::1:2').matches[0]?.ip).toBe('2001:db8::1:2');
    expect(host('^from <F-IP4/>:\\d+$', 'from 192.0.2.5:1').matches[0]?.ip).toBe('192.0.2.5');
    // A host name is a bad host (not resolved here), as before; usedns = no: not even matched.
    expect(host('^from <HOST>$', 'from scanner.example.net').badHost).toBe('scanner.example.net');
    expect(
      loadLogFilter({ failregex: [translatePythonRegex('^from <HOST>$', { usedns: 'no' })] }).processLine(
        'from scanner.example.net',
      ).badHost,
    ).toBeUndefined();
  });

  it('refuses, with the reason, what RE2 cannot run', () => {
    expect(() => translatePythonRegex('(?P<u>a+)(?P=u)')).toThrow(/back-reference \(\?P=u\)/);
    expect(() => translatePythonRegex('a(?!b)')).toThrow(/look-ahead/);
    expect(() => translatePythonRegex('(?<=a)b')).toThrow(/look-behind/);
    expect(() => translatePythonRegex('(a)?(?(1)b|c)')).toThrow(/conditional/);
    expect(() => translatePythonRegex('(?>a)')).toThrow(/atomic/);
    expect(() => translatePythonRegex('a++')).toThrow(/possessive/);
    expect(() => translatePythonRegex('a(?i)b')).toThrow(/not at the start/);
    expect(() => translatePythonRegex('x<SKIPLINES>y')).toThrow(/SKIPLINES/);
    expect(() => translatePythonRegex('(a)\\1')).toThrow(/back-reference \\1/);
  });
});

describe('other fail2ban syntax', () => {
  it('filter options as in jail.conf, date patterns', () => {
    expect(parseFilterOption('sshd[mode=aggressive, x="a,b"]')).toEqual({
      name: 'sshd',
      params: { mode: 'aggressive', x: 'a,b' },
    });
    expect(translateDatePattern('^%Y-%m-%d %ExH:%M:%S').pattern).toBe('^%Y-%m-%d %H:%M:%S');
    expect(translateDatePattern('^\\[%d/%b/%Y %H:%M:%S\\]').pattern).toBe('^[%d/%b/%Y %H:%M:%S]');
    expect(translateDatePattern('^[^\\[]*\\[({DATE})').pattern).toBeUndefined();
    expect(translateDatePattern('^[^\\[]*\\[({DATE})').note).toMatch(/detected instead/);
    expect(translateDatePattern('{^LN-BEG}').pattern).toBeUndefined();
  });
});
