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

describe('Python regex syntax on RE2', () => {
  it('rewrites what means the same', () => {
    expect(translatePythonRegex('a{,3}\\Z')).toBe('a{0,3}\\z');
    expect(translatePythonRegex('((?i)abc)')).toBe('(?i:abc)');
    expect(translatePythonRegex('(?i)abc')).toBe('(?i)abc');
    expect(translatePythonRegex('[[:x]')).toBe('[\\[:x]');
    expect(translatePythonRegex('(?P<_sep>-)(?P<host>\\S+)(?P<ip4>\\d+)')).toBe(
      '(?:-)(?P<f2b_host>\\S+)(?P<host>\\p{Nd}+)',
    );
    expect(translatePythonRegex('x(?#note)y')).toBe('xy');
    expect(translatePythonRegex('<F-MLFGAINED>ok</F-MLFGAINED> <F-ID/> <NOSUCH>')).toBe(
      '<F-NOFAIL>ok</F-NOFAIL> <F-ID>\\S+</F-ID> [<]NOSUCH[>]',
    );
    // Python's \w is Unicode-aware: so is the translation.
    const filter = loadLogFilter({ failregex: [translatePythonRegex('^user \\w+ from <HOST>$')] });
    expect(filter.processLine('user josé from 192.0.2.9').matches[0]?.ip).toBe('192.0.2.9');
  });

  it('refuses, with the reason, what RE2 cannot run', () => {
    expect(() => translatePythonRegex('(?P<u>a)(?P=u)')).toThrow(/back-reference \(\?P=u\)/);
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
