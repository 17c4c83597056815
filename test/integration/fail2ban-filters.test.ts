import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { loadFail2banReference } from '../../src/detection/filters/fail2ban/reference.js';
import { loadLogFilter } from '../../src/detection/filters/regex/log-filter.js';

/**
 * fail2ban's own filter files, read in place from Debian's fail2ban package (`.ci/run` installs
 * it): every one loads or is refused with a reason, and the ones that load agree with
 * `fail2ban-regex` on our own sample lines (matching lines and near-misses).
 */

const FILTER_DIR = '/etc/fail2ban/filter.d';
const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'pc-f2b-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("every filter of Debian's fail2ban package", () => {
  it('loads or is refused with the file, the regex and the reason; never a crash', () => {
    const files = readdirSync(FILTER_DIR).filter((file) => file.endsWith('.conf'));
    expect(files.length).toBeGreaterThanOrEqual(80);
    const loaded: string[] = [];
    const refused: Record<string, readonly string[]> = {};
    for (const file of files) {
      const name = file.slice(0, -5);
      try {
        loadLogFilter(`fail2ban:${name}`);
        loaded.push(name);
      } catch (error) {
        // Anything but a ConfigError is a crash and fails the test here.
        expect(error).toBeInstanceOf(ConfigError);
        const problems = (error as ConfigError).problems;
        refused[name] = problems;
        for (const problem of problems) expect(problem).toContain(name);
      }
    }
    // Measured with fail2ban 1.0.2 (Debian): 83 of 94 files load; of the 11 refused, 5 are
    // include-only files (common, apache-common, botsearch-common, exim-common, selinux-common),
    // the rest use look-around, back-references or <SKIPLINES> RE2 cannot run. (sshd's
    // conditionals and `(?:(?! from ).)*?` are written out exactly: python-rewrite.ts.)
    expect(loaded.length / files.length).toBeGreaterThanOrEqual(0.88);
    for (const name of ['sshd', 'postfix', 'dovecot', 'nginx-http-auth', 'vsftpd', 'proftpd', 'pam-generic'])
      expect(loaded).toContain(name);
    // A regex refusal names the option line, why, and the regex as fail2ban would compile it.
    expect(refused['roundcube-auth']?.join('\n')).toMatch(
      /roundcube-auth\.conf: failregex\.0: cannot run on RE2: look-ahead \(\?!\.\.\.\).*"\^/,
    );
    // Look-aheads of the shapes python-rewrite.ts writes out: traefik-auth's
    // `(?!- )<F-USER>\S+</F-USER>`, apache-auth's, courier-auth's `(?!ip=)` and asterisk's
    // `(?!RemoteAddress=)` before a key, recidive's `(?!recidive\])`, named-refused's `(?!error|info)`, exim's `(?=")`.
    for (const name of [
      'traefik-auth',
      'apache-auth',
      'courier-auth',
      'asterisk',
      'recidive',
      'exim',
      'selinux-ssh',
      'named-refused',
    ])
      expect(loaded).toContain(name);
    // sshd's extra and aggressive modes add "no matching (?:\w+ (?!found\b)){0,2}\w+ found",
    // written out too (a word other than "found" after each blank).
    for (const mode of ['extra', 'aggressive', 'ddos'])
      expect(loadLogFilter({ fail2ban: 'sshd', mode }).failregex.length).toBeGreaterThan(20);
    expect(refused.stunnel?.join('\n')).toMatch(/back-reference \(\?P=CODE\)/);
    expect(refused['mongodb-auth']?.join('\n')).toMatch(/<SKIPLINES>/);
    expect(refused.common?.join('\n')).toMatch(/no \[Definition\]/);
  });

  it('with unsupported: skip, loads what it can and says which failregexes it left out', () => {
    const read = loadFail2banReference({ fail2ban: 'sshd', mode: 'aggressive', unsupported: 'skip' });
    expect(read.refused).toEqual([]);
    expect(read.journalmatch).toEqual([['_SYSTEMD_UNIT=sshd.service', '+', '_COMM=sshd']]);
    expect(read.definition.modes).toEqual(['aggressive', 'ddos', 'extra', 'normal']);
    // A failregex with a look-ahead of no shape written out: left out, and said (a filter of our
    // own: exim's, the last of Debian's, is written out now).
    const mixed = join(work, 'own-mixed.conf');
    writeFileSync(
      mixed,
      ['[Definition]', 'failregex = ^Failed for <HOST>$', '            ^a(?=x)y <HOST>$', ''].join('\n'),
    );
    const skipped = loadFail2banReference({ fail2ban: mixed, unsupported: 'skip' });
    expect(skipped.refused.map((r) => r.where)).toEqual(['failregex.1']);
    expect(skipped.notes.join('\n')).toContain('failregex.1 left out (look-ahead (?=...)');
    // A refused prefregex changes every failregex's meaning: never skipped (a filter of our own:
    // none of Debian's has one left).
    const own = join(work, 'own-prefregex.conf');
    writeFileSync(
      own,
      [
        '[Definition]',
        'prefregex = ^(?=x)<F-CONTENT>.+</F-CONTENT>$',
        'failregex = ^x from <HOST>$',
        '',
      ].join('\n'),
    );
    expect(() => loadFail2banReference({ fail2ban: own, unsupported: 'skip' })).toThrow(
      /prefregex: cannot run on RE2: look-ahead/,
    );
  });
});

/** Lines and what they are; `gap` lines fail2ban matches with a regex portcullis had to leave out. */
interface Case {
  filter: string;
  /** fail2ban-regex's filter argument (`sshd[mode=aggressive]`). */
  f2b: string;
  spec: string | Record<string, unknown>;
  lines: string[];
  gap?: string[];
}

const CASES: Case[] = [
  {
    filter: 'sshd',
    f2b: 'sshd[mode=aggressive]',
    spec: { fail2ban: 'sshd', mode: 'aggressive' },
    lines: [
      // "no matching ... found" with one to three words, "found" itself where a word may not be
      'Mar  3 09:13:51 bastion sshd[4091]: Unable to negotiate with 203.0.113.31 port 40101: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]',
      'Mar  3 09:13:52 bastion sshd[4092]: Unable to negotiate with 203.0.113.32 port 40102: no matching host key type found. Their offer: ssh-dss [preauth]',
      'Mar  3 09:13:53 bastion sshd[4093]: Unable to negotiate with 203.0.113.33 port 40103: no matching cipher found. Their offer: aes128-cbc [preauth]',
      'Mar  3 09:13:54 bastion sshd[4094]: Unable to negotiate with 203.0.113.34 port 40104: no matching MAC found. Their offer: hmac-md5 [preauth]',
      'Mar  3 09:13:55 bastion sshd[4095]: Unable to negotiate with 203.0.113.35 port 40105: no matching cipher found found. Their offer: x [preauth]',
      'Mar  3 09:13:56 bastion sshd[4096]: Unable to negotiate with 203.0.113.36 port 40106: no matching a b c d found. Their offer: x [preauth]',
      'Mar  3 09:13:57 bastion sshd[4097]: Unable to negotiate with 203.0.113.37 port 40107: no matching foundx found. Their offer: x [preauth]',
      'Mar  3 09:13:58 bastion sshd[4098]: fatal: Unable to negotiate with 203.0.113.38 port 40108: no matching compression method found [preauth]',
      'Mar  3 09:14:01 bastion sshd[4101]: Invalid user oracle from 203.0.113.41 port 40112',
      'Mar  3 09:14:02 bastion sshd[4102]: error: PAM: Authentication failure for root from 203.0.113.42',
      'Mar  3 09:14:03 bastion sshd[4103]: User nobody from 203.0.113.43 not allowed because not listed in AllowUsers',
      'Mar  3 09:14:04 bastion sshd[4104]: Did not receive identification string from 203.0.113.44 port 51000',
      'Mar  3 09:14:05 bastion sshd[4105]: Connection closed by 203.0.113.45 port 51001 [preauth]',
      'Mar  3 09:14:06 bastion sshd[4106]: maximum authentication attempts exceeded for admin from 203.0.113.46 port 51002 ssh2 [preauth]',
      'Mar  3 09:14:07 bastion sshd[4107]: Accepted publickey for deploy from 203.0.113.47 port 51003 ssh2: ED25519 SHA256:abc',
      'Mar  3 09:14:08 bastion sshd[4108]: Received disconnect from 203.0.113.48 port 51004:11: Bye Bye [preauth]',
      "Mar  3 09:14:09 bastion sshd[4109]: Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.49 port 51005",
      'Mar  3 09:14:10 bastion sshd[4110]: Server listening on 0.0.0.0 port 22.',
      'Mar  3 09:14:11 bastion sshd[4111]: pam_unix(sshd:session): session opened for user deploy by (uid=0)',
      'Mar  3 09:14:12 bastion cron[4112]: Invalid user oracle from 203.0.113.52 port 40112',
      'Mar  3 09:14:13 bastion sshd[4113]: Failed password for invalid user test from 203.0.113.53 port 40113 ssh2',
      'Mar  3 09:14:14 bastion sshd[4114]: Failed password for root from 203.0.113.54 port 40114 ssh2',
      'Mar  3 09:14:15 bastion sshd[4115]: Disconnected from authenticating user root 203.0.113.55 port 40115 [preauth]',
    ],
    gap: [],
  },
  {
    // The default mode: the "Failed ..." regexes with conditionals and `(?:(?! from ).)*?`,
    // written out for RE2 (python-rewrite.ts), on user names with blanks and " from " in them.
    filter: 'sshd-normal',
    f2b: 'sshd',
    spec: 'fail2ban:sshd',
    lines: [
      'Mar  3 10:00:01 bastion sshd[5101]: Failed password for root from 203.0.113.61 port 40201 ssh2',
      'Mar  3 10:00:02 bastion sshd[5102]: Failed password for invalid user admin from 203.0.113.62 port 40202 ssh2',
      'Mar  3 10:00:03 bastion sshd[5103]: Failed password for invalid user john smith from 203.0.113.63 port 40203 ssh2',
      'Mar  3 10:00:04 bastion sshd[5104]: Failed password for invalid user x from y from 203.0.113.64 port 40204 ssh2',
      'Mar  3 10:00:05 bastion sshd[5105]: Failed none for invalid user  from 203.0.113.65 port 40205 ssh2',
      'Mar  3 10:00:06 bastion sshd[5106]: Failed publickey for invalid user deploy from 203.0.113.66 port 40206 ssh2: RSA SHA256:abcdef',
      'Mar  3 10:00:07 bastion sshd[5107]: Failed publickey for root from 203.0.113.67 port 40207 ssh2: ED25519 SHA256:abcdef',
      'Mar  3 10:00:08 bastion sshd[5108]: Failed keyboard-interactive/pam for invalid user oracle from 203.0.113.68 port 40208 ssh2',
      'Mar  3 10:00:09 bastion sshd[5109]: Failed password for bob from 203.0.113.69 port 40209 ssh2 from 198.51.100.1',
      'Mar  3 10:00:10 bastion sshd[5110]: Failed password for root from 203.0.113.70',
      'Mar  3 10:00:11 bastion sshd[5111]: Failed password for invalid user a:b from 203.0.113.71 port 40211 ssh2',
      'Mar  3 10:00:12 bastion sshd[5112]: Failed hostbased for root from 203.0.113.72 port 40212 ssh2: ssh-rsa',
      'Mar  3 10:00:13 bastion sshd[5113]: Accepted password for alice from 203.0.113.73 port 40213 ssh2',
      'Mar  3 10:00:14 bastion sshd[5114]: Failed password for root from',
      'Mar  3 10:00:15 bastion sshd[5115]: Failed password for invalid user from 203.0.113.75 port 40215 ssh2',
    ],
  },
  {
    filter: 'postfix',
    f2b: 'postfix',
    spec: 'fail2ban:postfix',
    lines: [
      'Apr 11 02:10:01 mx1 postfix/smtpd[7001]: NOQUEUE: reject: RCPT from unknown[198.51.100.21]: 554 5.7.1 <spam@example.net>: Relay access denied; from=<a@b.example> to=<spam@example.net> proto=ESMTP helo=<x>',
      'Apr 11 02:10:02 mx1 postfix/smtpd[7002]: NOQUEUE: reject: RCPT from unknown[198.51.100.22]: 450 4.7.1 Client host rejected: cannot find your hostname, [198.51.100.22]; from=<a@b.example> to=<c@d.example> proto=ESMTP helo=<x>',
      'Apr 11 02:10:03 mx1 postfix/smtpd[7003]: improper command pipelining after CONNECT from unknown[198.51.100.23]: EHLO x\\r\\n',
      'Apr 11 02:10:04 mx1 postfix/smtpd[7004]: connect from unknown[198.51.100.24]',
      'Apr 11 02:10:05 mx1 postfix/smtpd[7005]: disconnect from unknown[198.51.100.25] ehlo=1 quit=1 commands=2',
      'Apr 11 02:10:06 mx1 postfix/smtpd[7006]: NOQUEUE: reject: RCPT from mail.example.org[198.51.100.26]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table; from=<a@example.org> to=<nobody@example.com> proto=ESMTP helo=<mail.example.org>',
      'Apr 11 02:10:07 mx1 postfix/qmgr[7007]: 4F2A1C0A: removed',
    ],
  },
  {
    filter: 'dovecot',
    f2b: 'dovecot',
    spec: 'fail2ban:dovecot',
    lines: [
      'May  5 18:00:01 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=192.0.2.31, lip=192.0.2.1, TLS, session=<abc>',
      'May  5 18:00:02 mail dovecot: pop3-login: Aborted login (auth failed, 3 attempts in 10 secs): user=<bob>, method=PLAIN, rip=192.0.2.32, lip=192.0.2.1, session=<def>',
      'May  5 18:00:03 mail dovecot: auth-worker(3101): pam(carol,192.0.2.33,<ghi>): pam_authenticate() failed: Authentication failure (password mismatch?)',
      'May  5 18:00:04 mail dovecot: imap-login: Login: user=<dave>, method=PLAIN, rip=192.0.2.34, lip=192.0.2.1, mpid=3102, TLS, session=<jkl>',
      'May  5 18:00:05 mail dovecot: imap(dave)<3102><jkl>: Disconnected: Logged out in=50 out=700',
    ],
  },
  {
    filter: 'nginx-http-auth',
    f2b: 'nginx-http-auth',
    spec: 'fail2ban:nginx-http-auth',
    lines: [
      '2024/06/01 12:00:01 [error] 900#900: *11 user "admin": password mismatch, client: 192.0.2.61, server: intranet.example, request: "GET /private/ HTTP/1.1", host: "intranet.example"',
      '2024/06/01 12:00:02 [error] 900#900: *12 user "guest" was not found in "/etc/nginx/.htpasswd", client: 192.0.2.62, server: intranet.example, request: "GET /private/ HTTP/1.1", host: "intranet.example"',
      '2024/06/01 12:00:03 [error] 900#900: *13 open() "/srv/www/favicon.ico" failed (2: No such file or directory), client: 192.0.2.63, server: intranet.example, request: "GET /favicon.ico HTTP/1.1"',
      '2024/06/01 12:00:04 [warn] 900#900: *14 an upstream response is buffered to a temporary file, client: 192.0.2.64, server: intranet.example',
    ],
  },
  {
    filter: 'vsftpd',
    f2b: 'vsftpd',
    spec: 'fail2ban:vsftpd',
    lines: [
      'Jun 12 07:30:01 files vsftpd[2201]: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=anonymous rhost=198.51.100.71',
      'Sat Jun 12 07:30:02 2024 [pid 2202] [mallory] FAIL LOGIN: Client "198.51.100.72"',
      'Sat Jun 12 07:30:03 2024 [pid 2203] [alice] OK LOGIN: Client "198.51.100.73"',
      'Sat Jun 12 07:30:04 2024 [pid 2204] CONNECT: Client "198.51.100.74"',
    ],
  },
  {
    filter: 'pam-generic',
    f2b: 'pam-generic',
    spec: 'fail2ban:pam-generic',
    lines: [
      'Jul  1 03:00:01 box login[3301]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=tty1 ruser= rhost=198.51.100.81  user=root',
      'Jul  1 03:00:02 box su[3302]: pam_unix(su:auth): authentication failure; logname=bob uid=1000 euid=0 tty=pts/0 ruser=bob rhost=  user=root',
      'Jul  1 03:00:03 box sshd[3303]: pam_unix(sshd:session): session closed for user bob',
    ],
  },
  // <HOST> stops where fail2ban's does: `<HOST>:\d+` / `<HOST>(?::\d+)?` leave the port out.
  {
    filter: 'dropbear',
    f2b: 'dropbear',
    spec: 'fail2ban:dropbear',
    lines: [
      "Aug  2 10:00:01 router dropbear[5101]: Bad password attempt for 'root' from 198.51.100.91:40201",
      "Aug  2 10:00:02 router dropbear[5102]: Login attempt for nonexistent user 'oracle' from 198.51.100.92:40202",
      "Aug  2 10:00:03 router dropbear[5103]: Exit before auth (user 'admin', 3 fails): Max auth tries reached - user 'admin' from 198.51.100.93:40203",
      "Aug  2 10:00:04 router dropbear[5104]: Password auth succeeded for 'root' from 198.51.100.94:40204",
      'Aug  2 10:00:05 router dropbear[5105]: Child connection from 198.51.100.95:40205',
    ],
  },
  {
    filter: 'haproxy-http-auth',
    f2b: 'haproxy-http-auth',
    spec: 'fail2ban:haproxy-http-auth',
    lines: [
      'Aug  3 11:00:01 lb haproxy[6101]: 198.51.100.101:51001 [03/Aug/2024:11:00:01.120] www www/<NOSRV> -1/-1/-1/-1/0 401 248 - - PR-- 0/0/0/0/0 0/0 "GET /admin HTTP/1.1"',
      'Aug  3 11:00:02 lb haproxy[6102]: 2001:db8::65:51002 [03/Aug/2024:11:00:02.120] www www/<NOSRV> -1/-1/-1/-1/0 401 248 - - PR-- 0/0/0/0/0 0/0 "GET /admin HTTP/1.1"',
      'Aug  3 11:00:03 lb haproxy[6103]: 198.51.100.103:51003 [03/Aug/2024:11:00:03.120] www app/web1 0/0/0/3/3 200 1024 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"',
    ],
  },
  // The date is cut as fail2ban cuts it: `[date]` becomes `[]`, which these filters expect.
  {
    filter: 'nginx-botsearch',
    f2b: 'nginx-botsearch',
    spec: 'fail2ban:nginx-botsearch',
    lines: [
      '198.51.100.111 - - [04/Aug/2024:12:00:01 +0000] "GET /phpmyadmin/index.php HTTP/1.1" 404 153 "-" "Mozilla/5.0"',
      '198.51.100.112 - - [04/Aug/2024:12:00:02 +0000] "POST /wp-login.php HTTP/1.1" 404 153 "-" "curl/8.0"',
      '198.51.100.113 - - [04/Aug/2024:12:00:03 +0000] "GET /index.html HTTP/1.1" 200 612 "-" "Mozilla/5.0"',
      '198.51.100.114 - - [04/Aug/2024:12:00:04 +0000] "GET /phpmyadmin/index.php HTTP/1.1" 200 612 "-" "Mozilla/5.0"',
    ],
  },
  {
    // The user must not be "-" alone (fail2ban's `(?!- )`, written out), the date cut to `[]`.
    filter: 'traefik-auth',
    f2b: 'traefik-auth',
    spec: 'fail2ban:traefik-auth',
    lines: [
      '198.51.100.131 - alice [04/Aug/2024:12:20:01 +0000] "GET /admin HTTP/1.1" 401 17 "-" "curl/8.0" 1 "dashboard@docker" "-" 0ms',
      '198.51.100.132 - - [04/Aug/2024:12:20:02 +0000] "GET /admin HTTP/1.1" 401 17 "-" "curl/8.0" 2 "dashboard@docker" "-" 0ms',
      '198.51.100.133 - -x [04/Aug/2024:12:20:03 +0000] "POST /login HTTP/1.1" 401 17 "-" "curl/8.0" 3 "dashboard@docker" "-" 0ms',
      '198.51.100.134 - -- [04/Aug/2024:12:20:04 +0000] "GET / HTTP/2.0" 401 17 "-" "Mozilla/5.0" 4 "web@docker" "-" 1ms',
      '198.51.100.135 - bob [04/Aug/2024:12:20:05 +0000] "GET / HTTP/1.1" 200 612 "-" "Mozilla/5.0" 5 "web@docker" "-" 1ms',
    ],
  },
  {
    // apache-common's `(?!evasive)` before the module and apache-auth's ``(?!`)`` before the user,
    // written out (python-rewrite.ts): mod_evasive's own lines are not failures.
    filter: 'apache-auth',
    f2b: 'apache-auth',
    spec: 'fail2ban:apache-auth',
    lines: [
      '[Sun Aug 04 12:30:01.123456 2024] [auth_basic:error] [pid 1234] [client 198.51.100.141:51234] AH01618: user bob not found: /admin',
      '[Sun Aug 04 12:30:02.123456 2024] [auth_basic:error] [pid 1235] [client 198.51.100.142:51235] AH01617: user alice: authentication failure for "/admin": Password Mismatch',
      '[Sun Aug 04 12:30:03.123456 2024] [authz_core:error] [pid 1236] [client 198.51.100.143:51236] AH01630: client denied by server configuration: /var/www/private',
      '[Sun Aug 04 12:30:04.123456 2024] [evasive20:error] [pid 1237] [client 198.51.100.144:51237] client denied by server configuration: /x',
      '[Sun Aug 04 12:30:05.123456 2024] [auth_basic:error] [pid 1238] [client 198.51.100.145:51238] AH01618: user `bob not found: /admin',
      '[Sun Aug 04 12:30:06.123456 2024] [core:notice] [pid 1239] [client 198.51.100.146:51239] AH00094: Command line: apache2',
      '[Sun Aug 04 12:30:07.123456 2024] [error] [client 198.51.100.147] user carol not found: /private',
    ],
  },
  {
    // courier's key=value list before ip=[...]: a key other than `ip` (rule 7 of python-rewrite.ts);
    // `ip=, ip=[...]` is no failure, `user=ip=x` is.
    filter: 'courier-auth',
    f2b: 'courier-auth',
    spec: 'fail2ban:courier-auth',
    lines: [
      'Aug  4 12:40:01 mail courierpop3login: LOGIN FAILED, user=bob, ip=[::ffff:198.51.100.151]',
      'Aug  4 12:40:02 mail imapd-ssl: LOGIN FAILED, method=PLAIN, ip=[::ffff:198.51.100.152]',
      'Aug  4 12:40:03 mail imapd: LOGIN FAILED, user=alice@example.org, method=LOGIN, ip=[198.51.100.153]',
      'Aug  4 12:40:04 mail imapd: LOGIN FAILED, ip=[198.51.100.154]',
      'Aug  4 12:40:05 mail imapd: LOGIN FAILED, ipx=1, ip=[198.51.100.155]',
      'Aug  4 12:40:06 mail imapd: LOGIN, user=carol, ip=[198.51.100.156], port=[1234], protocol=IMAP',
      'Aug  4 12:40:07 mail imapd: LOGIN FAILED, ip=, ip=[198.51.100.157]',
      'Aug  4 12:40:08 mail imapd: LOGIN FAILED, user=ip=x, ip=[198.51.100.158]',
    ],
  },
  {
    // asterisk's security events: keys other than RemoteAddress around it (rule 7); with two, the
    // regex's lazy alternative takes the second, as Python's backtracking does.
    filter: 'asterisk',
    f2b: 'asterisk',
    spec: 'fail2ban:asterisk',
    lines: [
      '[2024-08-04 12:50:01] SECURITY[1234] res_security_log.c: SecurityEvent="InvalidPassword",EventTV="2024-08-04T12:50:01.000+0000",Severity="Error",Service="SIP",EventVersion="2",AccountID="100",SessionID="0x7f",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/198.51.100.161/5060",Challenge="abc",ReceivedChallenge="abc",ReceivedHash="def"',
      '[2024-08-04 12:50:02] SECURITY[1234] res_security_log.c: SecurityEvent="ChallengeResponseFailed",EventTV="2024-08-04T12:50:02.000+0000",Severity="Error",Service="SIP",EventVersion="1",AccountID="101",SessionID="0x80",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/198.51.100.162/5060",Challenge="x",Response="y",ExpectedResponse="z"',
      '[2024-08-04 12:50:03] SECURITY[1234] res_security_log.c: SecurityEvent="SuccessfulAuth",EventTV="2024-08-04T12:50:03.000+0000",Severity="Informational",Service="SIP",EventVersion="1",AccountID="102",SessionID="0x81",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/198.51.100.163/5060",UsingPassword="1"',
      '[2024-08-04 12:50:04] SECURITY[1234] res_security_log.c: SecurityEvent="FailedACL",EventTV="2024-08-04T12:50:04.000+0000",Severity="Error",Service="AMI",EventVersion="1",AccountID="admin",SessionID="0x82",LocalAddress="IPV4/TCP/192.0.2.1/5038",RemoteAddress="IPV4/TCP/198.51.100.164/40000",ACLName="manager"',
      '[2024-08-04 12:50:05] SECURITY[1234] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2024-08-04T12:50:05.000+0000",Severity="Error",Service="SIP",EventVersion="1",AccountID="x",SessionID="0x83",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/198.51.100.165/5060",RemoteAddress="IPV4/UDP/198.51.100.166/5060"',
      "[2024-08-04 12:50:06] NOTICE[2345] chan_sip.c: Registration from '\"100\" <sip:100@192.0.2.1>' failed for '198.51.100.167:5060' - Wrong password",
      "[2024-08-04 12:50:07] NOTICE[2345] chan_sip.c: Registration from '\"100\" <sip:100@192.0.2.1>' failed for '198.51.100.168:5060' - Something else",
    ],
  },
  {
    // fail2ban's own log: bans of other jails, not of recidive itself (`(?!recidive\])` before
    // `(?:.*)\]`, written out), a jail name holding `]`.
    filter: 'recidive',
    f2b: 'recidive',
    spec: 'fail2ban:recidive',
    lines: [
      '2024-08-04 13:00:01,123 fail2ban.actions        [1234]: NOTICE  [sshd] Ban 198.51.100.171',
      '2024-08-04 13:00:02,123 fail2ban.actions        [1234]: NOTICE  [recidive] Ban 198.51.100.172',
      '2024-08-04 13:00:03,123 fail2ban.actions        [1234]: NOTICE  [sshd] Unban 198.51.100.173',
      '2024-08-04 13:00:04,123 fail2ban.actions        [1234]: NOTICE  [recidivex] Ban 198.51.100.174',
      '2024-08-04 13:00:05,123 fail2ban.actions        [1234]: NOTICE  [nginx-botsearch] Ban 198.51.100.175',
      '2024-08-04 13:00:06,123 fail2ban.actions        [1234]: WARNING [sshd] 198.51.100.176 already banned',
      '2024-08-04 13:00:07,123 fail2ban.actions        [1234]: NOTICE  [sshd] Restore Ban 198.51.100.177',
      '2024-08-04 13:00:08,123 fail2ban.actions        [1234]: NOTICE  [a]b] Ban 198.51.100.180',
      '2024-08-04 13:00:09,123 fail2ban.actions        [1234]: NOTICE  [recid] Ban 198.51.100.181',
    ],
  },
  {
    // BIND's categories before `client` are any but `error...` and `info...` (`(?!error|info)[\w-]+`
    // in the prefregex, written out): `errors:` is refused, `query-errors:` and `lame-servers: info:` not.
    filter: 'named-refused',
    f2b: 'named-refused',
    spec: 'fail2ban:named-refused',
    lines: [
      "Aug  4 14:00:01 ns1 named[811]: client @0x7f3b2c0a1b20 198.51.100.191#53211 (example.com): query (cache) 'example.com/A/IN' denied",
      "Aug  4 14:00:02 ns1 named[811]: security: client 198.51.100.192#4011 (example.org): zone transfer 'example.org/AXFR/IN' denied",
      "Aug  4 14:00:03 ns1 named[811]: error: client 198.51.100.193#4012: bad zone transfer request: 'example.net/IN': non-authoritative zone (NOTAUTH)",
      "Aug  4 14:00:04 ns1 named[811]: info: client 198.51.100.194#4013 (example.com): query 'example.com/ANY/IN' denied",
      "Aug  4 14:00:05 ns1 named[811]: errors: client 198.51.100.195#4014 (example.com): query 'example.com/A/IN' denied",
      "Aug  4 14:00:06 ns1 named[811]: query-errors: client @0x1 198.51.100.196#4015 (example.com): view external: query (cache) 'example.com/A/IN' denied",
      "Aug  4 14:00:07 ns1 named[811]: client 198.51.100.197#4016 (example.com): query 'example.com/A/IN' approved",
      "Aug  4 14:00:08 ns1 named[811]: lame-servers: info: client 198.51.100.198#4017 (x.example): query 'x.example/A/IN' denied",
    ],
  },
  {
    // exim's quoted SMTP command (`"[^"]+(?:"+[^"]*(?="))*?"`: the look-ahead dropped, every way
    // on starts with a quote), among its other failures.
    filter: 'exim',
    f2b: 'exim',
    spec: 'fail2ban:exim',
    lines: [
      '2024-08-04 15:00:01 SMTP protocol error in "AUTH LOGIN" H=(User) [198.51.100.201]:50011 I=[192.0.2.1]:25 AUTH command used when not advertised',
      '2024-08-04 15:00:02 SMTP protocol error in "AUTH "PLAIN"" H=([192.0.2.9]) [198.51.100.202]:50012 I=[192.0.2.1]:25 AUTH command used when not advertised',
      '2024-08-04 15:00:03 SMTP protocol error in "AUTH LOGIN" H=(User) [198.51.100.203]:50013 I=[192.0.2.1]:25 something else',
      '2024-08-04 15:00:04 login authenticator failed for (User) [198.51.100.204]:50014 I=[192.0.2.1]:587: 535 Incorrect authentication data (set_id=bob)',
      '2024-08-04 15:00:05 H=(example.com) [198.51.100.205]:50015 I=[192.0.2.1]:25 F=<a@example.com> rejected RCPT <b@example.net>: relay not permitted',
      '2024-08-04 15:00:06 SMTP connection from (example.com) [198.51.100.206]:50016 I=[192.0.2.1]:25 closed by QUIT',
      '2024-08-04 15:00:07 SMTP protocol error in "AUTH ""x" H=(User) [198.51.100.207]:50017 I=[192.0.2.1]:25 AUTH command used when not advertised',
    ],
  },
  {
    // SELinux's audit log: the epoch in `msg=audit(...)` is the date, the account's optional quote
    // is referred back to (`(?P<_quote_acct>"?)\S+(?P=_quote_acct)`, written out per quote).
    filter: 'selinux-ssh',
    f2b: 'selinux-ssh',
    spec: 'fail2ban:selinux-ssh',
    lines: [
      'type=USER_AUTH msg=audit(1722780001.123:401): pid=2001 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg=\'op=PAM:authentication acct="bob" exe="/usr/sbin/sshd" hostname=198.51.100.211 addr=198.51.100.211 terminal=ssh res=failed\'',
      'type=USER_ERR msg=audit(1722780002.123:402): pid=2002 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg=\'op=PAM:bad_ident acct=? exe="/usr/sbin/sshd" hostname=198.51.100.212 addr=198.51.100.212 terminal=ssh res=failed\'',
      'type=USER_AUTH msg=audit(1722780003.123:403): pid=2003 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg=\'op=password acct="alice exe="/usr/sbin/sshd" hostname=? addr=198.51.100.213 terminal=ssh res=failed\'',
      'type=USER_AUTH msg=audit(1722780004.123:404): pid=2004 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg=\'op=PAM:authentication acct="carol" exe="/usr/sbin/sshd" hostname=198.51.100.214 addr=198.51.100.214 terminal=ssh res=success\'',
      'type=USER_AUTH msg=audit(1722780005.123:405): pid=2005 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg=\'op=pubkey acct=dave" exe="/usr/sbin/sshd" hostname=198.51.100.215 addr=198.51.100.215 terminal=ssh res=failed\'',
      'type=USER_AUTH msg=audit(1722780006.123:406): pid=2006 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg=\'op=pubkey acct=""x"" exe="/usr/sbin/sshd" hostname=198.51.100.216 addr=198.51.100.216 terminal=ssh res=failed\'',
    ],
  },
  {
    filter: 'nginx-bad-request',
    f2b: 'nginx-bad-request',
    spec: 'fail2ban:nginx-bad-request',
    lines: [
      '198.51.100.121 - - [04/Aug/2024:12:10:01 +0000] "" 400 0 "-" "-"',
      '198.51.100.122 - root [04/Aug/2024:12:10:02 +0000] "\x16\x03\x01" 400 157 "-" "-"',
      '198.51.100.123 - - [04/Aug/2024:12:10:03 +0000] "GET / HTTP/1.1" 200 612 "-" "Mozilla/5.0"',
    ],
  },
];

/** Lines fail2ban-regex reports as failures, with the address it found: `ip|line`. */
async function fail2banMatches(file: string, filter: string): Promise<Set<string>> {
  const { stdout } = await run('fail2ban-regex', ['--usedns', 'no', '-o', '<ip>|<msg>', file, filter], {
    timeout: 30_000,
  });
  return new Set(
    stdout
      .split('\n')
      .filter((line) => line.includes('|'))
      .map((line) => line.replace(/ +$/, '')),
  );
}

function ourMatches(spec: string | Record<string, unknown>, lines: readonly string[]): Set<string> {
  const filter = loadLogFilter(spec);
  const out = new Set<string>();
  for (const line of lines)
    for (const match of filter.processLine(line).matches) out.add(`${match.ip}|${line}`);
  return out;
}

describe('fail2ban filters read by portcullis agree with fail2ban-regex', () => {
  for (const c of CASES) {
    it(`${c.f2b}: the same lines match, with the same address`, async () => {
      const file = join(work, `${c.filter}.log`);
      writeFileSync(file, `${c.lines.join('\n')}\n`);
      const theirs = await fail2banMatches(file, c.f2b);
      const ours = ourMatches(c.spec, c.lines);
      const gap = new Set(c.gap ?? []);
      // The comparison must be able to fail: fail2ban found failures and left lines alone.
      expect(theirs.size).toBeGreaterThan(0);
      expect(theirs.size).toBeLessThan(c.lines.length);
      const expected = [...theirs].filter((entry) => !gap.has(entry.slice(entry.indexOf('|') + 1))).sort();
      expect([...ours].sort()).toEqual(expected);
      for (const line of gap) expect([...theirs].some((entry) => entry.endsWith(`|${line}`))).toBe(true);
    });
  }
});
