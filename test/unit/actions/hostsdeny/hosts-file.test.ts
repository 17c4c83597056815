import { describe, expect, it } from 'vitest';
import {
  editHostsText,
  hostsLine,
  markerName,
  parseHostsFile,
  targetOfPattern,
  targetsOf,
} from '../../../../src/actions/hostsdeny/hosts-file.js';
import type { Decision } from '../../../../src/core/types.js';

const ban = (target: string, extra: Partial<Decision> = {}): Decision => ({
  target,
  jail: 'sshd',
  reason: 'test',
  startedAt: 0,
  expiresAt: 60_000,
  banCount: 1,
  dryRun: false,
  origin: 'test',
  ...extra,
});

const HAND = '# /etc/hosts.deny: written by hand\nvsftpd: 198.51.100.9\nALL: .example.org\n';

describe('hosts.deny lines', () => {
  it('writes addresses and networks the way tcp_wrappers reads them', () => {
    expect(hostsLine('sshd', '192.0.2.7')).toBe('sshd: 192.0.2.7');
    expect(hostsLine('sshd', '10.0.0.0/8')).toBe('sshd: 10.0.0.0/255.0.0.0');
    expect(hostsLine('sshd', '192.0.2.128/25')).toBe('sshd: 192.0.2.128/255.255.255.128');
    expect(hostsLine('ALL', '2001:db8::1')).toBe('ALL: [2001:db8::1]');
    expect(hostsLine('ALL', '2001:db8::/64')).toBe('ALL: [2001:db8::]/64');
    expect(() => hostsLine('sshd', '1.2.3.4\nALL: ALL')).toThrow();
  });

  it('reads back exactly what it writes, and nothing else', () => {
    for (const target of ['192.0.2.7', '10.0.0.0/8', '0.0.0.0/0', '2001:db8::1', '2001:db8::/64'])
      expect(targetOfPattern(hostsLine('x', target).slice(3))).toBe(target);
    for (const pattern of ['10.0.0.0/255.0.255.0', '[1.2.3.4]', '::1', 'host.example.org', '1.2.3.4#x'])
      expect(targetOfPattern(pattern)).toBeNull();
  });

  it('refuses every target that is not its own canonical text', () => {
    const hostile = [
      '1.2.3.4\nALL: ALL',
      '1.2.3.4 # x',
      'root',
      ' 1.2.3.4',
      '1.2.3.4/32',
      '::ffff:1.2.3.4',
      '10.1.2.3/8',
    ];
    const batch = targetsOf(
      [...hostile.map((t) => ban(t)), ban('1.2.3.4'), ban('5.6.7.8', { expiresAt: 0 })],
      1,
    );
    expect(batch.invalid).toEqual(hostile);
    expect(batch.live).toEqual(['1.2.3.4']);
    expect(batch.ended).toEqual(['5.6.7.8']);
    expect(targetsOf([ban('1.2.3.4', { dryRun: true })], 0).live).toEqual([]);
  });

  it('names the block after the action, safely', () => {
    expect(markerName('hostsdeny-ssh')).toBe('hostsdeny-ssh');
    expect(markerName('a b\n#c')).toBe('a_b__c');
  });
});

describe('editing the file', () => {
  const marker = 'hostsdeny';

  it('appends a block and keeps every other line byte for byte', () => {
    const { text } = editHostsText(HAND, marker, 'sshd', {
      add: ['192.0.2.7', '2001:db8::/64', '192.0.2.7'],
    });
    expect(text).toBe(
      `${HAND}# BEGIN portcullis hostsdeny: written by portcullis; lines between these markers are replaced\nsshd: 192.0.2.7\nsshd: [2001:db8::]/64\n# END portcullis hostsdeny\n`,
    );
    const removed = editHostsText(text, marker, 'sshd', { remove: ['192.0.2.7', '2001:db8::/64'] });
    expect(removed.text).toBe(HAND);
  });

  it('keeps the block where it is, and a file without a final newline', () => {
    const start = editHostsText('a: b', marker, 'sshd', { add: ['192.0.2.1'] }).text;
    expect(start.startsWith('a: b\n# BEGIN')).toBe(true);
    const moved = `x: y\n${start}z: w`;
    const next = editHostsText(moved, marker, 'sshd', { add: ['192.0.2.2'] }).text;
    expect(next).toBe(moved.replace('sshd: 192.0.2.1\n', 'sshd: 192.0.2.1\nsshd: 192.0.2.2\n'));
  });

  it('replaces the block on restore, with the current daemon', () => {
    const old = editHostsText(HAND, marker, 'ALL', { add: ['192.0.2.1', '192.0.2.2'] }).text;
    const { text, targets } = editHostsText(old, marker, 'sshd', { replace: ['192.0.2.2', '192.0.2.3'] });
    expect(targets).toEqual(['192.0.2.2', '192.0.2.3']);
    expect(text).toContain('sshd: 192.0.2.2\nsshd: 192.0.2.3\n# END');
    expect(text).not.toContain('ALL: 192.0.2');
  });

  it('leaves the blocks of other actions alone', () => {
    const other = editHostsText(HAND, 'hostsdeny-ftp', 'vsftpd', { add: ['192.0.2.9'] }).text;
    const both = editHostsText(other, marker, 'sshd', { add: ['192.0.2.1'] }).text;
    expect(parseHostsFile(both, 'hostsdeny-ftp').targets).toEqual(['192.0.2.9']);
    expect(editHostsText(both, marker, 'sshd', { replace: [] }).text).toBe(other);
  });

  it('keeps a hand-written line found inside the block, and survives a lost END marker', () => {
    const text = `${HAND}# BEGIN portcullis hostsdeny\nsshd: 192.0.2.1\nin.telnetd: ALL\n# END portcullis hostsdeny\n`;
    expect(editHostsText(text, marker, 'sshd', { replace: [] }).text).toBe(`${HAND}in.telnetd: ALL\n`);
    const noEnd = `${HAND}# BEGIN portcullis hostsdeny\nsshd: 192.0.2.1\nsshd: 192.0.2.2\nALL: ALL\n`;
    const parsed = parseHostsFile(noEnd, marker);
    expect(parsed.targets).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(editHostsText(noEnd, marker, 'sshd', { remove: ['192.0.2.1', '192.0.2.2'] }).text).toBe(
      `${HAND}ALL: ALL\n`,
    );
  });

  it('folds a second block of the same name into the first', () => {
    const block = (ip: string) => `# BEGIN portcullis hostsdeny\nsshd: ${ip}\n# END portcullis hostsdeny\n`;
    const text = `${block('192.0.2.1')}a: b\n${block('192.0.2.2')}`;
    const next = editHostsText(text, marker, 'sshd', {}).text;
    expect(parseHostsFile(next, marker).targets).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(next.match(/# BEGIN/g)).toHaveLength(1);
    expect(next.endsWith('a: b\n')).toBe(true);
  });

  it('a name that only starts like the marker is another block', () => {
    const other = editHostsText('', 'hostsdeny-2', 'sshd', { add: ['192.0.2.1'] }).text;
    expect(parseHostsFile(other, marker).found).toBe(false);
  });
});
