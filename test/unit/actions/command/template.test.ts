import { describe, expect, it } from 'vitest';
import { commandOptionsSchema, resolveCommandOptions } from '../../../../src/actions/command/options.js';
import {
  batchInput,
  commandEnv,
  expandArgv,
  matchesText,
  tagsOf,
} from '../../../../src/actions/command/template.js';
import type { Decision } from '../../../../src/core/types.js';

const decision = (extra: Partial<Decision> = {}): Decision => ({
  target: '192.0.2.7',
  jail: 'sshd',
  reason: '5 failures within 10m (user root)',
  startedAt: 1_000_000,
  expiresAt: 1_000_000 + 3_600_000,
  banCount: 2,
  dryRun: false,
  origin: 'test',
  ...extra,
});

describe('command templates', () => {
  it('fills every tag from the decision', () => {
    expect(tagsOf(decision())).toEqual({
      ip: '192.0.2.7',
      family: 'inet4',
      jail: 'sshd',
      bantime: '3600',
      bancount: '2',
      failures: '5',
      matches: '',
      reason: '5 failures within 10m (user root)',
    });
    expect(tagsOf(decision({ target: '2001:db8::/64', expiresAt: null, reason: 'by hand' }))).toMatchObject({
      family: 'inet6',
      bantime: '-1',
      failures: '0',
    });
    expect(tagsOf(decision({ target: '1.2.3.4; rm -rf /' }))).toBeNull();
  });

  it('substitutes into separate elements, in place, in one pass', () => {
    const tags = tagsOf(decision({ jail: '<ip> $(id)', reason: '`id`\n<jail>' })) as NonNullable<
      ReturnType<typeof tagsOf>
    >;
    expect(expandArgv(['/bin/notify', '<ip>', '--jail=<jail>', '<reason>', '<unknown>'], tags)).toEqual([
      '/bin/notify',
      '192.0.2.7',
      '--jail=<ip> $(id)',
      '`id`\n<jail>',
      '<unknown>',
    ]);
  });

  it('passes the tags as PORTCULLIS_* and only a few inherited variables', () => {
    const tags = tagsOf(decision()) as NonNullable<ReturnType<typeof tagsOf>>;
    const env = commandEnv(
      { PATH: '/usr/bin', PORTCULLIS_REDIS_URL: 'redis://:secret@x', SECRET: 'x' },
      'ban',
      'cmd',
      tags,
    );
    expect(env).toMatchObject({
      PATH: '/usr/bin',
      PORTCULLIS_OP: 'ban',
      PORTCULLIS_IP: '192.0.2.7',
      PORTCULLIS_BANTIME: '3600',
    });
    expect(env).not.toHaveProperty('SECRET');
    expect(env).not.toHaveProperty('PORTCULLIS_REDIS_URL');
    expect(batchInput([tags, tags]).split('\n')).toHaveLength(3);
  });

  it('strips NUL, which no argument can carry', () => {
    expect(tagsOf(decision({ jail: 'a\0b' }))?.jail).toBe('ab');
  });
});

describe('command options', () => {
  const parse = (options: unknown) => commandOptionsSchema.safeParse(options);
  const messages = (options: unknown) => {
    const result = parse(options);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('resolves defaults', () => {
    const config = resolveCommandOptions('c', commandOptionsSchema.parse({ ban: ['/bin/true', '<ip>'] }));
    expect(config).toEqual({
      ban: ['/bin/true', '<ip>'],
      unban: null,
      timeoutMs: 10_000,
      batch: false,
      scope: 'all',
    });
  });

  it('refuses a missing ban, a bad timeout, unknown keys and tags, and tags with batch', () => {
    expect(messages({})).toEqual([expect.stringMatching(/^ban: /)]);
    expect(messages({ ban: ['/bin/true'], timeout: 'soon' })).toEqual([
      'timeout: expected a duration longer than 0 like "10s", got "soon"',
    ]);
    expect(messages({ ban: ['/bin/true'], timeout: 0 })).toHaveLength(1);
    expect(messages({ ban: ['/bin/true'], retries: 3 })[0]).toMatch(/retries|Unrecognized/);
    expect(messages({ ban: ['/bin/true', '<IP>'] })).toEqual([
      expect.stringContaining('ban.1: unknown tag <IP>'),
    ]);
    expect(messages({ ban: ['<ip>'] })).toHaveLength(1);
    expect(messages({ ban: [] })).toHaveLength(1);
    expect(messages({ ban: ['/bin/true', '<ip>'], batch: true })).toEqual([
      expect.stringContaining('ban.1: with batch: true'),
    ]);
  });
});

describe('command <matches>', () => {
  const hostile = 'Invalid user <script>$(id)`id`@everyone<!channel> from 192.0.2.7\ntouch /tmp/x';

  it('is the matched lines, one per line, in ONE argv element and in PORTCULLIS_MATCHES', () => {
    const tags = tagsOf(decision({ matches: ['first line', hostile] })) as NonNullable<
      ReturnType<typeof tagsOf>
    >;
    // The newline inside a match is written as `\n`: each line of the value is one match.
    const expected =
      'first line\nInvalid user <script>$(id)`id`@everyone<!channel> from 192.0.2.7\\ntouch /tmp/x';
    expect(tags.matches).toBe(expected);
    expect(tags.matches.split('\n')).toHaveLength(2);
    const argv = expandArgv(['/bin/notify', '<ip>', '<matches>', '--m=<matches>'], tags);
    expect(argv).toEqual(['/bin/notify', '192.0.2.7', expected, `--m=${expected}`]);
    expect(commandEnv({}, 'ban', 'command', tags).PORTCULLIS_MATCHES).toBe(expected);
    expect(JSON.parse(batchInput([tags]).trimEnd()).matches).toBe(expected);
  });

  it('is empty without matches (another instance, a manual ban, an unban) and never holds NUL', () => {
    expect(tagsOf(decision())?.matches).toBe('');
    expect(matchesText(undefined)).toBe('');
    expect(matchesText(['a\u0000b'])).toBe('a\\x00b');
  });

  it('keeps the newest lines within 16 KiB', () => {
    const lines = Array.from({ length: 40 }, (_, i) => `${i} ${'x'.repeat(1020)}`);
    const text = matchesText(lines);
    expect(text.length).toBeLessThanOrEqual(16_384);
    const kept = text.split('\n');
    expect(kept.at(-1)).toBe(lines.at(-1));
    expect(kept[0]?.startsWith(`${40 - kept.length} `)).toBe(true);
  });
});
