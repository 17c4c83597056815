import { describe, expect, it } from 'vitest';
import { judgedPath } from '../../../../src/sources/http/http-event.js';
import { normalizePath, normalizeTarget } from '../../../../src/sources/http/normalize-path.js';

/** What http-proxy-3 (WHATWG URL) makes of a target: the path and query it forwards. */
function whatwg(target: string): string {
  const url = new URL(
    target.startsWith('//') ? `http://base.invalid${target}` : target,
    'http://base.invalid',
  );
  return `${url.pathname}${url.search}`;
}

describe('normalizePath', () => {
  it('gives every spelling of /login that an app routes as /login', () => {
    for (const target of [
      '/login',
      '/./login',
      '/%2e/login',
      '/%2E/login',
      '/a/../login',
      '/a/b/../../login',
      '/.%2e/login',
      '/%2e%2e/login',
      '/../../login',
      '//login',
      '///login',
      '/a//..//login',
      'http://x/login',
      'HTTPS://example.com:8443/login?x=1',
      '/%6Cogin',
      '/log%69n',
      '/login?next=/a/../b',
      '/login#frag',
      '/a\\..\\login',
    ]) {
      expect(normalizePath(target), target).toBe('/login');
    }
  });

  it('keeps a trailing slash (a directory is not a file), the root, and asterisk-form', () => {
    expect(normalizePath('/login/.')).toBe('/login/');
    expect(normalizePath('/login/')).toBe('/login/');
    expect(normalizePath('/a/b/..')).toBe('/a/');
    expect(normalizePath('/')).toBe('/');
    expect(normalizePath('/..')).toBe('/');
    expect(normalizePath('')).toBe('/');
    expect(normalizePath('http://x')).toBe('/');
    expect(normalizePath('http://x?q')).toBe('/');
    expect(normalizePath('*')).toBe('*');
    expect(normalizePath('login')).toBe('/login');
  });

  it('keeps encoded slashes and reserved characters as data, upper-casing their hex, and invalid escapes as sent', () => {
    expect(normalizePath('/a%2F..%2Flogin')).toBe('/a%2F..%2Flogin');
    expect(normalizePath('/a%2f..%2flogin')).toBe('/a%2F..%2Flogin');
    expect(normalizePath('/a%5c..%5clogin')).toBe('/a%5C..%5Clogin');
    expect(normalizePath('/%zz/../x%')).toBe('/x%');
    expect(normalizePath('/%252e%252e/login')).toBe('/%252e%252e/login');
    expect(normalizePath('/a%3Fb')).toBe('/a%3Fb');
    expect(normalizePath('/é "x"')).toBe('/%C3%A9%20%22x%22');
  });

  it('is what http-proxy-3 forwards for the same target, and a fixed point', () => {
    for (const target of [
      '/./login',
      '/%2e/login',
      '/a/../login',
      '/.%2e/login',
      'http://x/login?a=1',
      '/login/.',
      '/a\\..\\login',
      '/%6Cogin?x=%2e',
      '/a%2f..%2flogin',
      '/x/%2E%2E/y?q#f',
      '/é "x"',
    ]) {
      const forwarded = normalizeTarget(target);
      // WHATWG leaves %6C encoded and %2f lower-case; both are the same resource (RFC 3986 §6.2.2).
      expect(decodeURIComponent(whatwg(forwarded)), target).toBe(decodeURIComponent(whatwg(target)));
      expect(whatwg(forwarded), target).toBe(forwarded);
      expect(normalizeTarget(forwarded), target).toBe(forwarded);
    }
  });

  it('forwards the query as sent and returns the very target when nothing changes', () => {
    const target = '/login?next=/a/../b&x=%2e';
    expect(normalizeTarget(target)).toBe(target);
    expect(normalizeTarget('/./login?next=/a/../b')).toBe('/login?next=/a/../b');
    expect(normalizeTarget('//login?a#frag')).toBe('/login?a');
    expect(normalizeTarget('/login#frag?notquery')).toBe('/login');
  });
});

describe('judgedPath (HttpEvent.path)', () => {
  it('is the normalised path without one trailing slash, decoded once', () => {
    expect(judgedPath('/login/.')).toBe('/login');
    expect(judgedPath('/login/')).toBe('/login');
    expect(judgedPath('/')).toBe('/');
    expect(judgedPath('/./LOGIN/?x=1')).toBe('/LOGIN');
    expect(judgedPath('/%2eenv%zz')).toBe('/.env%zz');
    expect(judgedPath('/a%2F..%2Flogin')).toBe('/a/../login');
    expect(judgedPath('/%252e%252e/etc')).toBe('/%2e%2e/etc');
  });
});
