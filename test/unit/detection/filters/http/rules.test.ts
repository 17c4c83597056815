import { describe, expect, it } from 'vitest';
import { compileHttpFilter } from '../../../../../src/detection/filters/http/compile.js';
import { bundledHttpRules, loadHttpRule } from '../../../../../src/detection/filters/http/rules.js';
import { event } from '../../../../helpers/http-events.js';

/** `"GET /path HTTP/1.1"`-style request lines, as they appear in access logs. */
function line(text: string, extra: Parameters<typeof event>[0] = {}) {
  const [method, url] = text.split(' ') as [string, string];
  return event({ method, url, ...extra });
}

function ruleMatcher(name: string) {
  const rule = loadHttpRule(name);
  if (rule.filter === undefined) throw new Error(`${name} has no filter`);
  const filter = compileHttpFilter(rule.filter);
  return (e: ReturnType<typeof event>) => filter.matches(e);
}

describe('bundled HTTP rules', () => {
  it('all load, validate and compile', () => {
    expect(bundledHttpRules()).toEqual(
      expect.arrayContaining([
        'auth-failures',
        'bad-bots',
        'cmd-injection',
        'flood',
        'lfi',
        'method-abuse',
        'not-found-burst',
        'scanners',
        'sqli',
        'traversal',
        'xss',
      ]),
    );
    for (const name of bundledHttpRules()) {
      const rule = loadHttpRule(name);
      expect(rule.description.length, name).toBeGreaterThan(20);
      if (rule.filter !== undefined) compileHttpFilter(rule.filter);
    }
  });

  it('scanners: dotfiles, admin panels, CGI, actuators, dumps — not ordinary pages', () => {
    const hit = ruleMatcher('scanners');
    const probes = [
      'GET /.env',
      'GET /.env.production',
      'GET /api/.env',
      'GET /.git/config',
      'GET /.git/HEAD',
      'GET /.aws/credentials',
      'GET /.ssh/id_rsa',
      'GET /.DS_Store',
      'GET /wp-login.php',
      'POST /xmlrpc.php',
      'GET /wp-admin/setup-config.php',
      'GET /wordpress/wp-admin/',
      'GET /phpmyadmin/index.php',
      'GET /phpMyAdmin-5.2.1/',
      'GET /pma/',
      'GET /cgi-bin/luci',
      'GET /cgi-bin/.%2e/.%2e/bin/sh',
      'GET /actuator/env',
      'GET /actuator',
      'GET /server-status',
      'GET /backup.sql',
      'GET /db/dump.sql.gz',
      'GET /wp-config.php.bak',
      'GET /vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php',
      'GET /%2eenv',
      'GET /HNAP1/',
      'GET /_ignition/execute-solution',
      'GET /docker-compose.yml',
    ];
    for (const probe of probes) expect(hit(line(probe, { status: 404 })), probe).toBe(true);
    const visits = [
      'GET /',
      'GET /environment',
      'GET /blog/git-tips',
      'GET /static/app.8f3a.js',
      'GET /.well-known/acme-challenge/abc',
      'GET /.well-known/security.txt',
      'GET /api/users/42',
      'GET /docs/sql-guide',
      'GET /actuators-explained',
      'GET /images/env.png',
    ];
    for (const visit of visits) expect(hit(line(visit)), visit).toBe(false);
  });

  it('auth-failures: refused credentials on login endpoints only', () => {
    const hit = ruleMatcher('auth-failures');
    expect(hit(line('POST /login', { status: 401 }))).toBe(true);
    expect(hit(line('POST /api/session', { status: 403 }))).toBe(true);
    expect(hit(line('POST /users/sign_in', { status: 401 }))).toBe(true);
    expect(hit(line('POST /oauth/token', { status: 401 }))).toBe(true);
    expect(hit(line('POST /wp-login.php', { status: 403 }))).toBe(true);
    expect(hit(line('POST /login', { status: 302 }))).toBe(false); // success redirect
    expect(hit(line('GET /api/session', { status: 401 }))).toBe(false); // a logged-out visitor
    expect(hit(line('POST /api/orders', { status: 401 }))).toBe(false);
    expect(hit(line('POST /blogin-tips', { status: 401 }))).toBe(false);
  });

  it('not-found-burst: 404s over distinct paths, minus browser housekeeping and static assets', () => {
    const rule = loadHttpRule('not-found-burst');
    const filter = compileHttpFilter(rule.filter ?? {});
    expect(filter.distinct).toBe('path');
    expect(filter.matches(line('GET /admin.php', { status: 404 }))).toBe(true);
    expect(filter.matches(line('GET /admin.php', { status: 200 }))).toBe(false);
    expect(filter.matches(line('GET /favicon.ico', { status: 404 }))).toBe(false);
    expect(filter.matches(line('GET /apple-touch-icon-precomposed.png', { status: 404 }))).toBe(false);
    for (const asset of [
      'GET /uploads/2024/05/photo-01.jpg',
      'GET /media/thumbs/p3.WEBP',
      'GET /static/js/app.9c2f.js.map',
      'GET /fonts/inter.woff2',
      'GET /_next/image',
      'GET /assets/logo',
      'GET /.well-known/assetlinks.json',
    ]) {
      expect(filter.matches(line(asset, { status: 404 })), asset).toBe(false);
    }
    for (const page of ['GET /admin', 'GET /backup.zip', 'GET /old/index.php', 'GET /static-pages']) {
      expect(filter.matches(line(page, { status: 404 })), page).toBe(true);
    }
    expect(rule.jail).toMatchObject({ maxretry: 20, findtime: '1m' });
  });

  it('bad-bots: attack tools by user agent, not browsers or plain HTTP libraries', () => {
    const hit = ruleMatcher('bad-bots');
    const tools = [
      'sqlmap/1.7.2#stable (https://sqlmap.org)',
      'Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)',
      'masscan/1.3 (https://github.com/robertdavidgraham/masscan)',
      'Mozilla/5.0 zgrab/0.x',
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0 Safari/537.36 Nuclei - Open-source project (github.com/projectdiscovery/nuclei)',
      'Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)',
      'WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)',
      'gobuster/3.6',
      'Fuzz Faster U Fool v2.1.0-dev',
      'feroxbuster/2.10.1',
      'Mozilla/5.0 (l9explore/1.2.2)',
      'Hello, world',
    ];
    for (const ua of tools) expect(hit(event({ userAgent: ua })), ua).toBe(true);
    const fine = [
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
      'curl/8.5.0',
      'python-requests/2.32.3',
      'Go-http-client/1.1',
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      '',
    ];
    for (const ua of fine) expect(hit(event({ userAgent: ua })), ua).toBe(false);
  });

  it('traversal: plain, encoded, double-encoded, overlong and null-byte forms', () => {
    const hit = ruleMatcher('traversal');
    const attacks = [
      'GET /../../etc/passwd',
      'GET /static/..%2f..%2f..%2fetc/passwd',
      'GET /%2e%2e/%2e%2e/etc/hosts',
      'GET /%2E%2E%2F%2E%2E%2Fwindows/win.ini',
      'GET /files/%252e%252e%252fconfig',
      'GET /cgi-bin/.%2e/.%2e/.%2e/bin/sh',
      'GET /..%c0%af..%c0%afetc/passwd',
      'GET /%c0%ae%c0%ae/boot.ini',
      'GET /download?file=../../../../etc/shadow',
      'GET /view?page=..\\..\\windows\\win.ini',
      'GET /image.php?f=photo.jpg%00.php',
      'GET /%u002e%u002e/',
      'GET /a/b/..',
      'GET /index.php?p=php://filter/resource=/proc/self/environ',
    ];
    for (const attack of attacks) expect(hit(line(attack)), attack).toBe(true);
    const fine = [
      'GET /a/b/c',
      'GET /release-1.2..3/notes',
      'GET /search?q=a..b',
      'GET /files/report..final.pdf',
      'GET /%E2%82%AC',
    ];
    for (const visit of fine) expect(hit(line(visit)), visit).toBe(false);
  });

  it('method-abuse: TRACE, CONNECT and WebDAV methods only', () => {
    const hit = ruleMatcher('method-abuse');
    for (const method of ['TRACE', 'TRACK', 'CONNECT', 'PROPFIND', 'MKCOL', 'LOCK', 'DEBUG']) {
      expect(hit(event({ method })), method).toBe(true);
    }
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      expect(hit(event({ method })), method).toBe(false);
    }
  });

  it('flood: a rate jail over pages and API calls, not static assets, banning on the first excess', () => {
    const rule = loadHttpRule('flood');
    expect(rule.jail).toEqual({ rate: '300/10s', maxretry: 1, findtime: '10m', bantime: '10m' });
    const counts = ruleMatcher('flood');
    for (const request of ['GET /', 'GET /products/42', 'GET /api/notifications?since=1', 'POST /login']) {
      expect(counts(line(request)), request).toBe(true);
    }
    for (const asset of [
      'GET /media/gallery/thumb-001.webp',
      'GET /static/css/site.css',
      'GET /img/a.PNG?v=2',
    ]) {
      expect(counts(line(asset)), asset).toBe(false);
    }
  });
});
