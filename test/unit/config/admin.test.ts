import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText, resolveConfig } from '../../../src/config/load.js';

const TOKEN = 'a-long-enough-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'pc-admin-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(admin: unknown, env: Record<string, string> = { PC_TOKEN: TOKEN }) {
  return resolveConfig({ store: { memory: true }, admin }, { env, name: 'portcullis.yaml', baseDir: dir });
}

function problems(admin: unknown, env?: Record<string, string>): string {
  try {
    load(admin, env);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a config error');
}

describe('admin: configuration', () => {
  it('is off without the section and resolves every default with it', () => {
    expect(resolveConfig({ store: { memory: true } }, { env: {} }).admin).toBeUndefined();
    const admin = load({ token_env: 'PC_TOKEN' }).admin;
    expect(admin).toMatchObject({
      listen: '127.0.0.1:9191',
      host: '127.0.0.1',
      port: 9191,
      allowRemote: false,
      metrics: true,
      dashboard: true,
      tokenSource: 'env PC_TOKEN',
      authFailures: { maxRetry: 10, findTimeMs: 600_000, banTimeMs: 600_000 },
    });
    expect(admin?.token.matches(TOKEN)).toBe(true);
    expect(admin?.token.matches(`${TOKEN}x`)).toBe(false);
    expect(admin?.token.matches('')).toBe(false);
  });

  it('refuses a non-loopback listen address unless allow_remote', () => {
    for (const listen of ['0.0.0.0:9191', ':9191', '192.0.2.1:9191', '[::]:9191', 'admin.example.com:9191']) {
      expect(problems({ listen, token_env: 'PC_TOKEN' })).toMatch(
        /portcullis\.yaml: admin\.listen: .* is not a loopback address; .*allow_remote/,
      );
    }
    for (const listen of ['127.0.0.1:9191', '127.0.0.5:1', '[::1]:9191', 'localhost:9191'])
      expect(load({ listen, token_env: 'PC_TOKEN' }).admin?.listen).toBe(listen);
    expect(load({ listen: '0.0.0.0:9191', allow_remote: true, token_env: 'PC_TOKEN' }).admin?.host).toBe(
      '0.0.0.0',
    );
    expect(problems({ listen: 'nowhere', token_env: 'PC_TOKEN' })).toMatch(
      /admin\.listen: expected an address like/,
    );
  });

  it('needs exactly one token source, and a token of 16 characters or more', () => {
    expect(problems({})).toMatch(/admin: set exactly one of token_file or token_env/);
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    expect(problems({ token_env: 'PC_TOKEN', token_file: 'token' })).toMatch(
      /exactly one of token_file or token_env/,
    );
    expect(problems({ token_env: 'PC_TOKEN' }, { PC_TOKEN: 'short-token' })).toMatch(
      /admin\.token_env: the token is 11 characters long; use at least 16/,
    );
    expect(problems({ token_env: 'PC_TOKEN' }, {})).toMatch(
      /admin\.token_env: the environment variable PC_TOKEN is not set/,
    );
    expect(problems({ token_file: 'missing' })).toMatch(
      /admin\.token_file: cannot read .*missing: no such file/,
    );
    writeFileSync(join(dir, 'short'), 'abc\n', { mode: 0o600 });
    const message = problems({ token_file: 'short' });
    expect(message).toMatch(/admin\.token_file: the token is 3 characters long/);
    // The value itself is never in a message.
    expect(problems({ token_env: 'PC_TOKEN' }, { PC_TOKEN: 'secret-shortish' })).not.toContain(
      'secret-shortish',
    );
    expect(problems({ tokenfile: 'token' })).toMatch(/admin/);
  });

  it('reads token_file relative to the config file, warns when anyone can read it', () => {
    writeFileSync(join(dir, 'token'), `  ${TOKEN}\n`);
    chmodSync(join(dir, 'token'), 0o600);
    const config = parseConfigText(
      'store: { memory: true }\nadmin: { token_file: token }\n',
      join(dir, 'portcullis.yaml'),
      { env: {} },
    );
    expect(config.admin?.token.matches(TOKEN)).toBe(true);
    expect(config.warnings).toEqual([]);
    chmodSync(join(dir, 'token'), 0o644);
    const open = parseConfigText(
      'store: { memory: true }\nadmin: { token_file: token }\n',
      join(dir, 'portcullis.yaml'),
      { env: {} },
    );
    expect(open.warnings.join('\n')).toMatch(
      /admin\.token_file: .*token is readable by every user; chmod 600 it/,
    );
  });

  it('never shows the token: not in JSON, not in util.inspect, not in a log line', () => {
    const config = load({ token_env: 'PC_TOKEN' });
    expect(JSON.stringify(config)).not.toContain(TOKEN);
    expect(JSON.stringify(config.admin)).toContain('"token":"[redacted]"');
    expect(inspect(config, { depth: 10 })).not.toContain(TOKEN);
    expect(String(config.admin?.token)).toBe('[redacted]');
  });

  it('validates auth_failures and trusted_proxies', () => {
    expect(problems({ token_env: 'PC_TOKEN', auth_failures: { maxretry: 0 } })).toMatch(
      /admin\.auth_failures\.maxretry/,
    );
    expect(problems({ token_env: 'PC_TOKEN', auth_failures: { bantime: 'forever' } })).toMatch(
      /admin\.auth_failures\.bantime: expected a duration longer than 0/,
    );
    expect(problems({ token_env: 'PC_TOKEN', trusted_proxies: ['nope'] })).toMatch(
      /admin\.trusted_proxies\.0/,
    );
    const admin = load({
      token_env: 'PC_TOKEN',
      auth_failures: { maxretry: 3, findtime: '1m', bantime: '1h' },
    }).admin;
    expect(admin?.authFailures).toEqual({ maxRetry: 3, findTimeMs: 60_000, banTimeMs: 3_600_000 });
  });
});
