import { describe, expect, it } from 'vitest';
import { keepsMatches, MATCH_LIMITS, MatchMemory, showableMatch } from '../../../src/core/match-memory.js';

const MIN = 60_000;
const FIND = 10 * MIN;

describe('match memory', () => {
  it('returns the matches of one jail and key, oldest first, and forgets them once taken', () => {
    const memory = new MatchMemory();
    memory.add('sshd', '192.0.2.7', 'line 1', 1_000, FIND);
    memory.add('sshd', '192.0.2.8', 'other client', 1_000, FIND);
    memory.add('web', '192.0.2.7', 'other jail', 1_000, FIND);
    memory.add('sshd', '192.0.2.7', 'line 2', 2_000, FIND);
    expect(memory.take('sshd', '192.0.2.7')).toEqual(['line 1', 'line 2']);
    expect(memory.take('sshd', '192.0.2.7')).toBeUndefined();
    expect(memory.take('sshd', '192.0.2.8')).toEqual(['other client']);
    expect(memory.take('web', '192.0.2.7')).toEqual(['other jail']);
    expect(memory.size).toBe(0);
    expect(memory.chars).toBe(0);
  });

  it('keeps the last 10 matches of a key', () => {
    const memory = new MatchMemory();
    for (let i = 1; i <= 25; i++) memory.add('sshd', 'k', `line ${i}`, i, FIND);
    const taken = memory.take('sshd', 'k') as string[];
    expect(taken).toHaveLength(MATCH_LIMITS.perKey);
    expect(taken[0]).toBe('line 16');
    expect(taken.at(-1)).toBe('line 25');
  });

  it('drops matches older than findtime, with the failure window', () => {
    const memory = new MatchMemory();
    memory.add('sshd', 'k', 'old', 0, FIND);
    memory.add('sshd', 'k', 'still in', 5 * MIN, FIND);
    memory.add('sshd', 'k', 'new', FIND, FIND);
    // `old` is exactly findtime older than the newest: like a failure, it no longer counts.
    expect(memory.take('sshd', 'k')).toEqual(['still in', 'new']);
    memory.add('sshd', 'k', 'stale', 0, FIND);
    memory.prune(FIND + 1);
    expect(memory.size).toBe(0);
  });

  it('cuts a long line to 1 KiB, ending with an ellipsis, without splitting a surrogate pair', () => {
    const memory = new MatchMemory();
    memory.add('sshd', 'k', 'x'.repeat(100_000), 0, FIND);
    const [cut] = memory.take('sshd', 'k') as [string];
    expect(cut).toHaveLength(MATCH_LIMITS.chars);
    expect(cut.endsWith('…')).toBe(true);
    // An emoji straddling the cut is dropped whole.
    memory.add('sshd', 'k', `${'y'.repeat(MATCH_LIMITS.chars - 2)}😀😀`, 0, FIND);
    const [emoji] = memory.take('sshd', 'k') as [string];
    expect(emoji).toBe(`${'y'.repeat(MATCH_LIMITS.chars - 2)}…`);
    // No lone surrogate is left before the ellipsis.
    expect(emoji.charCodeAt(emoji.length - 2)).toBe('y'.charCodeAt(0));
  });

  it('bounds the keys it holds, forgetting the least recently seen first', () => {
    const memory = new MatchMemory({ keys: 100 });
    for (let i = 0; i < 1000; i++) memory.add('sshd', `10.0.${i >> 8}.${i & 255}`, `line ${i}`, i, FIND);
    expect(memory.size).toBe(100);
    expect(memory.take('sshd', '10.0.0.0')).toBeUndefined();
    // Seen again: moved to the back, so it outlives keys seen before it.
    memory.add('sshd', '10.0.3.132', 'again', 2000, FIND);
    for (let i = 0; i < 99; i++) memory.add('sshd', `10.1.0.${i}`, 'flood', 3000, FIND);
    expect(memory.take('sshd', '10.0.3.132')).toEqual(['line 900', 'again']);
  });

  it('bounds the characters it holds in all: a flood of long lines from many addresses stays under budget', () => {
    const memory = new MatchMemory({ totalChars: 100_000 });
    for (let i = 0; i < 20_000; i++) memory.add('sshd', `k${i % 5000}`, 'z'.repeat(5000), i, FIND);
    expect(memory.chars).toBeLessThanOrEqual(100_000);
    expect(memory.size).toBeLessThanOrEqual(100_000 / MATCH_LIMITS.chars + 1);
    // The newest keys are the ones kept.
    expect(memory.take('sshd', 'k4999')).toBeDefined();
  });

  it('makes every taken match one line of visible characters', () => {
    const memory = new MatchMemory();
    memory.add('sshd', 'k', 'a\nb\r\u001b[31mred\u2028c\u202egnp.exe\u0000', 0, FIND);
    expect(memory.take('sshd', 'k')).toEqual(['a\\nb\\r\\x1b[31mred\\u2028c\\u202egnp.exe\\x00']);
    expect(showableMatch('tab\tstays, <html> & "quotes" too')).toBe('tab\tstays, <html> & "quotes" too');
  });

  it('is kept only for jails with an action that shows it', () => {
    expect(keepsMatches({ actions: [{ kind: 'nftables' }, { kind: 'hostsdeny' }] })).toBe(false);
    expect(keepsMatches({ actions: [{ kind: 'sms' }] })).toBe(false);
    expect(keepsMatches({ actions: [] })).toBe(false);
    for (const kind of ['command', 'email', 'webhook'])
      expect(keepsMatches({ actions: [{ kind: 'nftables' }, { kind }] })).toBe(true);
  });
});
