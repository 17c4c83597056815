import { describe, expect, it } from 'vitest';
import { isJournalJsonCommand, parseJournalLine } from '../../../../src/sources/log/journald.js';

describe('parseJournalLine', () => {
  it('turns an entry into fail2ban’s line and the entry time in ms', () => {
    const line = JSON.stringify({
      __REALTIME_TIMESTAMP: '1764072000123456',
      _HOSTNAME: 'web1',
      SYSLOG_IDENTIFIER: 'sshd',
      _PID: '4242',
      MESSAGE: 'Failed password for root from 192.0.2.7 port 22 ssh2',
    });
    expect(parseJournalLine(line)).toEqual({
      message: 'Failed password for root from 192.0.2.7 port 22 ssh2',
      text: 'web1 sshd[4242]: Failed password for root from 192.0.2.7 port 22 ssh2',
      timeMs: 1_764_072_000_123,
    });
  });

  it('decodes binary MESSAGE fields and falls back to _COMM', () => {
    const entry = parseJournalLine(
      JSON.stringify({ _COMM: 'app', MESSAGE: [...Buffer.from('bad \xff byte', 'latin1')] }),
    );
    expect(entry).toMatchObject({ text: 'app: bad \uFFFD byte', timeMs: undefined });
  });

  it('returns undefined for lines that are not journal entries', () => {
    expect(parseJournalLine('not json')).toBeUndefined();
    expect(parseJournalLine('[1,2]')).toBeUndefined();
    expect(parseJournalLine('{"_PID":"1"}')).toBeUndefined();
  });
});

describe('isJournalJsonCommand', () => {
  it.each([
    [['journalctl', '-f', '-o', 'json'], true],
    [['journalctl', '-f', '--output=json'], true],
    [['journalctl', '-f', '--output', 'json'], true],
    [['journalctl', '-f', '-ojson'], true],
    [['journalctl', '-f', '-o', 'short'], false],
    [['docker', 'logs', '-f', 'web'], false],
  ])('%j → %s', (argv, expected) => {
    expect(isJournalJsonCommand(argv)).toBe(expected);
  });
});
