import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../../src/config/load.js';
import { re2ProgramCount } from '../../../../src/detection/filters/re2-cache.js';
import { JailSet } from '../../../../src/detection/jails/jail-set.js';

describe('jails built from a checked config', () => {
  it('compile each filter pattern once: the jail reuses what the config check compiled', () => {
    const unique = `^/compiled-once-${Date.now()}-(a|b)+$`;
    const before = re2ProgramCount();
    const config = resolveConfig(
      {
        jails: {
          login: { source: 'http', filter: { status: 401, path: unique, user_agent: `${unique}-ua` } },
        },
      },
      { env: {} },
    );
    const afterCheck = re2ProgramCount();
    expect(afterCheck - before).toBeGreaterThanOrEqual(2);
    const jail = new JailSet(config).get('login');
    const filter = jail?.httpFilter;
    expect(filter).toBeDefined();
    expect(jail?.httpFilter).toBe(filter); // once per jail
    expect(re2ProgramCount()).toBe(afterCheck);
    // `path` as the jail runs it: case-insensitive unless the pattern opts out.
    expect(jail?.config.httpFilter).toEqual({
      status: 401,
      path: `(?i)${unique}`,
      user_agent: `${unique}-ua`,
    });
  });

  it('a reload that keeps a pattern compiles nothing again', () => {
    const options = {
      jails: { scan: { source: 'http' as const, filter: { path: `^/reload-${Date.now()}$` } } },
    };
    new JailSet(resolveConfig(options, { env: {} })).get('scan')?.httpFilter;
    const count = re2ProgramCount();
    new JailSet(resolveConfig(options, { env: {} })).get('scan')?.httpFilter;
    expect(re2ProgramCount()).toBe(count);
  });
});
