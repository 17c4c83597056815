import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfigText } from '../../../src/config/load.js';

const dir = join(import.meta.dirname, '../../fixtures/configs/invalid');

/** Each fixture opens with `# error: <the exact message portcullis must print>` (one line per problem). */
describe('invalid configurations print exactly the expected error', () => {
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.yaml'))) {
    it(name, () => {
      const text = readFileSync(join(dir, name), 'utf8');
      const expected = [...text.matchAll(/^# error: (.*)$/gm)].map((m) => m[1]).join('\n');
      expect(expected, 'fixture must declare its error').not.toBe('');
      expect(() => parseConfigText(text, name, { env: {} })).toThrowError(
        expect.objectContaining({ code: 'PC_ERR_CONFIG_INVALID', message: expected }),
      );
    });
  }
});

describe('valid configurations', () => {
  it('accepts every documented setting and resolves inheritance and units', () => {
    const config = loadConfigFile(join(import.meta.dirname, '../../fixtures/configs/valid/full.yaml'), {
      env: {},
    });
    expect(config.store).toEqual({
      kind: 'sqlite',
      path: join(import.meta.dirname, '../../fixtures/configs/valid/state/portcullis.db'),
    });
    expect(config.dbPurgeAgeMs).toBe(2 * 86_400_000);
    const byName = Object.fromEntries(config.jails.map((j) => [j.name, j]));
    expect(byName.scanners).toMatchObject({
      maxRetry: 2,
      banTimeMs: 86_400_000,
      findTimeMs: 600_000,
      source: { kind: 'http' },
    });
    expect(byName['web-auth']?.banTimeIncrement).toEqual({
      factor: 2,
      multipliers: null,
      maxTimeMs: 4 * 604_800_000,
      rndTimeMs: 300_000,
      overallJails: true,
    });
    expect(byName.sshd?.banTimeIncrement?.multipliers).toEqual([1, 2, 4, 8, 16]);
    expect(byName.sshd?.source).toEqual({ kind: 'log', paths: ['/var/log/auth.log'] });
    expect(byName.journal?.enabled).toBe(false);
    expect(byName.shadow).toMatchObject({ dryRun: true, banTimeMs: -1 });
    expect(byName['api-abuse']).toMatchObject({ maxRetry: 5, source: { kind: 'api' }, ipv6Prefix: 64 });
    expect(Object.isFrozen(config.jails[0])).toBe(true);
  });

  it('applies built-in defaults to an empty file', () => {
    const config = parseConfigText('', '/etc/portcullis/portcullis.yaml', { env: {} });
    expect(config.store).toEqual({ kind: 'sqlite', path: '/etc/portcullis/portcullis.db' });
    expect(config.onStoreError).toBe('local');
    expect(config.jails).toEqual([]);
  });

  it('environment variables override the file and choose the backend', () => {
    const text = 'store:\n  sqlite: ./a.db\ndefaults:\n  maxretry: 5\njails:\n  sshd: {}\n';
    const config = parseConfigText(text, '/etc/p.yaml', {
      env: {
        PORTCULLIS_REDIS_URL: 'redis://cache:6379/2',
        PORTCULLIS_DEFAULTS_MAXRETRY: '3',
        PORTCULLIS_LOG_LEVEL: 'warn',
      },
    });
    expect(config.store).toEqual({
      kind: 'redis',
      url: 'redis://cache:6379/2',
      prefix: 'pc:',
      commandTimeoutMs: 1000,
      outbox: '/etc/portcullis-outbox.db',
    });
    expect(config.jails[0]?.maxRetry).toBe(3);
    expect(config.log.level).toBe('warn');
  });

  it('keeps text settings given by environment as text, even when they look like numbers', () => {
    const sqlite = parseConfigText('', '/etc/p.yaml', { env: { PORTCULLIS_SQLITE_PATH: '2024' } });
    expect(sqlite.store).toEqual({ kind: 'sqlite', path: '/etc/2024' });
    const redis = parseConfigText('', '/etc/p.yaml', {
      env: { PORTCULLIS_REDIS_URL: 'redis://cache:6379', PORTCULLIS_REDIS_PREFIX: '42' },
    });
    expect(redis.store).toMatchObject({ kind: 'redis', prefix: '42' });
  });

  it('names the environment variable when its value is invalid', () => {
    expect(() => parseConfigText('', 'p.yaml', { env: { PORTCULLIS_DEFAULTS_BANTIME: 'forever' } })).toThrow(
      'p.yaml (from environment PORTCULLIS_DEFAULTS_BANTIME): defaults.bantime: expected a duration like "10m", got "forever"',
    );
  });

  it('reports a missing file with its own code', () => {
    expect(() => loadConfigFile('/nonexistent/portcullis.yaml', { env: {} })).toThrowError(
      expect.objectContaining({
        code: 'PC_ERR_CONFIG_NOT_FOUND',
        message: '/nonexistent/portcullis.yaml: cannot read the configuration: no such file',
      }),
    );
  });
});
