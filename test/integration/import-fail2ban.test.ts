import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { loadLogFilter } from '../../src/detection/filters/regex/log-filter.js';
import { fail2banTime, importFail2ban } from '../../src/surfaces/cli/import-fail2ban.js';
import { runCli } from '../helpers/cli.js';

/**
 * `portcullis import fail2ban` on an /etc/fail2ban-shaped tree the test writes (our own jail
 * files; the filters are Debian's, copied in so the tree is self-contained).
 */

const root = mkdtempSync(join(tmpdir(), 'pc-f2b-import-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

mkdirSync(join(root, 'filter.d'));
for (const name of ['common', 'sshd', 'postfix', 'nginx-http-auth', 'dovecot', 'roundcube-auth'])
  cpSync(`/etc/fail2ban/filter.d/${name}.conf`, join(root, 'filter.d', `${name}.conf`));
mkdirSync(join(root, 'jail.d'));
writeFileSync(
  join(root, 'paths-test.conf'),
  ['[DEFAULT]', 'auth_log = /var/log/test-auth.log', 'mail_log = /var/log/test-mail.log', ''].join('\n'),
);
writeFileSync(
  join(root, 'jail.conf'),
  [
    '[INCLUDES]',
    'before = paths-test.conf',
    '',
    '[DEFAULT]',
    'ignoreip = 127.0.0.1/8 ::1 10.20.0.0/16 gateway.example.net',
    'bantime  = 10m',
    'findtime = 10m',
    'maxretry = 5',
    'backend = auto',
    'enabled = false',
    'mode = normal',
    'filter = %(__name__)s[mode=%(mode)s]',
    'destemail = ops@example.net',
    'port = 0:65535',
    'protocol = tcp',
    'banaction = iptables-multiport',
    'action_ = %(banaction)s[port="%(port)s", protocol="%(protocol)s"]',
    'action_mw = %(action_)s',
    '            sendmail-whois[dest="%(destemail)s"]',
    'action = %(action_)s',
    '',
    '[sshd]',
    'port    = ssh',
    'logpath = %(auth_log)s',
    '',
    '[postfix]',
    'mode    = more',
    'port    = smtp,465,submission',
    'logpath = %(mail_log)s',
    '          /var/log/mail/*.log*',
    '',
    '[dovecot]',
    'port    = pop3,pop3s,imap,imaps',
    'logpath = %(mail_log)s',
    'backend = systemd',
    '',
    '[nginx-http-auth]',
    'port    = http,https',
    'logpath = /var/log/nginx/error.log',
    '',
    '[roundcube-auth]',
    'port     = http,https',
    'logpath  = /var/log/roundcube/errors.log',
    '',
  ].join('\n'),
);
writeFileSync(
  join(root, 'jail.d', '10-site.conf'),
  [
    '[sshd]',
    'enabled = true',
    'bantime = 1h',
    'bantime.increment = true',
    'bantime.factor = 2',
    'bantime.maxtime = 1w',
    'bantime.rndtime = 5m',
    '',
  ].join('\n'),
);
writeFileSync(
  join(root, 'jail.local'),
  [
    '[DEFAULT]',
    'banaction = nftables-multiport',
    '',
    '[postfix]',
    'enabled = true',
    'maxretry = 3',
    'action = %(action_mw)s',
    '         abuseipdb[abuseipdb_apikey=x]',
    '',
    '[dovecot]',
    'enabled = true',
    'bantime = -1',
    '',
    '[nginx-http-auth]',
    'enabled = true',
    'findtime = 1h30m',
    '',
    '[roundcube-auth]',
    'enabled = true',
    '',
    '[nginx-botsearch]',
    'enabled = false',
    '',
  ].join('\n'),
);

describe('portcullis import fail2ban', () => {
  const result = importFail2ban(root);

  it('writes the enabled jails with fail2ban precedence (jail.conf < jail.d < jail.local)', () => {
    expect(result.jails).toEqual(['sshd', 'postfix', 'dovecot', 'nginx-http-auth', 'roundcube-auth']);
    const config = parseConfigText(result.yaml, 'imported.yaml');
    const jail = (name: string) => config.jails.find((j) => j.name === name);
    expect(config.jails.map((j) => j.name).sort()).toEqual(
      ['roundcube-auth', 'dovecot', 'nginx-http-auth', 'postfix', 'sshd'].sort(),
    );
    // jail.d overrides jail.conf; [DEFAULT] is inherited.
    expect(jail('sshd')?.banTimeMs).toBe(3_600_000);
    expect(jail('sshd')?.findTimeMs).toBe(600_000);
    expect(jail('sshd')?.maxRetry).toBe(5);
    // jail.local overrides jail.conf.
    expect(jail('postfix')?.maxRetry).toBe(3);
    expect(jail('nginx-http-auth')?.findTimeMs).toBe(5_400_000);
    expect(jail('dovecot')?.banTimeMs).toBe(-1);
    expect(result.yaml).not.toContain('nginx-botsearch');
  });

  it('carries over sources, filters with their mode, ports, actions, ignoreip and bantime.*', () => {
    const yaml = result.yaml;
    expect(yaml).toContain('source: {"log":["/var/log/test-mail.log","/var/log/mail/*.log*"]}');
    expect(yaml).toContain(`"fail2ban":"postfix","mode":"more","fail2ban_dir":${JSON.stringify(root)}`);
    // backend = systemd: journalctl with the filter's journalmatch, and the journal prefixes.
    expect(yaml).toMatch(
      /source: \{"command":\["journalctl","-f","-o","json","_SYSTEMD_UNIT=dovecot.service"/,
    );
    expect(yaml).toContain('"logtype":"journal"');
    // port names through /etc/services (or the built-in list); 0:65535 means every port.
    expect(yaml).toContain('{"nftables":{"ports":[22],"protocol":"tcp"}}');
    expect(yaml).toContain('{"nftables":{"ports":[25,465,587],"protocol":"tcp"}}');
    expect(yaml).toContain('{"email":{"to":"ops@example.net"}}');
    expect(yaml).toContain(
      '"ignoreip": ["127.0.0.1/8","::1","10.20.0.0/16"]'.replace('"ignoreip": ', 'ignoreip: '),
    );
    expect(yaml).toContain('bantime_increment: {"enabled":true,"factor":2,"maxtime":"1w","rndtime":"5m"}');
    const config = parseConfigText(yaml, 'imported.yaml');
    expect(config.jails.find((j) => j.name === 'sshd')?.banTimeIncrement?.factor).toBe(2);
  });

  it("reads fail2ban's own filter where RE2 can run it, the bundled twin where it cannot, and says so", () => {
    // sshd's conditionals and `(?:(?! from ).)*?` are written out exactly (python-rewrite.ts).
    expect(result.yaml).toMatch(/ {4}filter: \{"fail2ban":"sshd","mode":"normal","fail2ban_dir":"[^"]+"\}/);
    // roundcube-auth's failregex has a look-ahead and a back-reference: leaving it out would leave
    // no failregex.
    expect(result.yaml).toMatch(/ {4}filter: "roundcube-auth"/);
  });

  it('lists what it could not carry over, one comment line each', () => {
    const comments = result.yaml.split('\n').filter((line) => line.startsWith('#   '));
    expect(comments.length).toBe(result.notCarried.length);
    const notes = result.notCarried.join('\n');
    expect(notes).toContain('ignoreip gateway.example.net: not an address or CIDR range');
    expect(notes).toContain('postfix: action abuseipdb: no portcullis equivalent');
    expect(notes).toContain("roundcube-auth: filter roundcube-auth: fail2ban's cannot run on RE2");
    expect(notes).toContain('whois lookups and log lines are not added');
  });

  it('converts fail2ban times', () => {
    expect(fail2banTime('600', false)).toBe('10m');
    expect(fail2banTime('1h30m', false)).toBe('1h30m');
    expect(fail2banTime('2 days', false)).toBe('2d');
    expect(fail2banTime('-1', true)).toBe('-1');
    expect(fail2banTime('-1', false)).toBeUndefined();
    expect(fail2banTime('soon', false)).toBeUndefined();
  });

  it('the CLI writes the file and refuses to overwrite one', async () => {
    const out = join(root, 'portcullis.yaml');
    const first = await runCli(['import', 'fail2ban', root, '-o', out]);
    expect(first.status).toBe(0);
    expect(first.stderr).toContain('imported 5 jail(s)');
    expect(readFileSync(out, 'utf8')).toBe(result.yaml);
    const again = await runCli(['import', 'fail2ban', root, '-o', out]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('exists already');
    expect(readFileSync(out, 'utf8')).toBe(result.yaml);
  });
});

describe('portcullis import fail2ban: modes, journalmatch, and a bundled twin keeps what the jail asked for', () => {
  const tree = mkdtempSync(join(tmpdir(), 'pc-f2b-twin-'));
  // A tree whose sshd.conf (ours, not Debian's) RE2 cannot run: the bundled sshd stands in.
  const twinTree = mkdtempSync(join(tmpdir(), 'pc-f2b-twin-own-'));
  afterAll(() => {
    rmSync(tree, { recursive: true, force: true });
    rmSync(twinTree, { recursive: true, force: true });
  });
  mkdirSync(join(tree, 'filter.d'));
  for (const name of ['common', 'sshd', 'apache-auth', 'apache-common'])
    cpSync(`/etc/fail2ban/filter.d/${name}.conf`, join(tree, 'filter.d', `${name}.conf`));
  writeFileSync(
    join(tree, 'jail.conf'),
    [
      '[DEFAULT]',
      'enabled = false',
      '',
      '[sshd]',
      'enabled = true',
      'backend = systemd',
      'filter = sshd[mode=aggressive]',
      '',
      '[ssh-keys]',
      'enabled = true',
      'backend = systemd',
      'filter = sshd[mode=nosuchmode, publickey=invalid]',
      '',
      '[apache-auth]',
      'enabled = true',
      'logpath = /var/log/apache2/error.log',
      'filter = apache-auth[mode=aggressive]',
      '',
    ].join('\n'),
  );
  mkdirSync(join(twinTree, 'filter.d'));
  writeFileSync(
    join(twinTree, 'filter.d', 'sshd.conf'),
    [
      '[Definition]',
      'mode = normal',
      'failregex = ^(?<=x)Failed password for \\S+ from <HOST>',
      '[Init]',
      'journalmatch = _SYSTEMD_UNIT=sshd.service + _COMM=sshd',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(twinTree, 'jail.conf'),
    ['[sshd]', 'enabled = true', 'backend = systemd', 'filter = sshd[mode=aggressive]', ''].join('\n'),
  );
  const result = importFail2ban(tree);
  const twin = importFail2ban(twinTree);
  /** One jail's lines of the output. */
  const jailText = (name: string, yaml = result.yaml) => {
    const rest = yaml.slice(yaml.indexOf(`\n  ${name}:\n`) + 1);
    const end = rest.slice(1).search(/\n {2}\S/);
    return end === -1 ? rest : rest.slice(0, end + 1);
  };
  const journalSource =
    'source: {"command":["journalctl","-f","-o","json","_SYSTEMD_UNIT=sshd.service","+","_COMM=sshd"]}';

  it("backend = systemd: the fail2ban filter's journalmatch, not the whole journal", () => {
    // Debian's sshd.conf in aggressive mode runs as it is (its "no matching ... found" regexes
    // written out for RE2), reading only sshd's entries: without the match, `logger -t sshd
    // "Failed password for root from 198.51.100.9"` from any local user would ban an address of
    // their choosing. So does the bundled twin standing in for a file RE2 cannot run.
    const sshd = jailText('sshd');
    expect(sshd).toMatch(/ {4}filter: \{"fail2ban":"sshd","mode":"aggressive",.*"logtype":"journal"\}/);
    expect(sshd).toContain(journalSource);
    expect(jailText('sshd', twin.yaml)).toMatch(/ {4}filter: "sshd"/);
    expect(jailText('sshd', twin.yaml)).toContain(journalSource);
    expect([...result.notCarried, ...twin.notCarried].join('\n')).not.toContain('the whole journal is read');
    // The output loads, and its filter compiles in aggressive mode (33 failregexes; normal has 22).
    const filter = parseConfigText(result.yaml, 'imported.yaml').jails.find((j) => j.name === 'sshd')?.filter;
    expect(filter).toMatchObject({ fail2ban: 'sshd', mode: 'aggressive', logtype: 'journal' });
    expect(loadLogFilter(filter as Record<string, unknown>).failregex.length).toBe(33);
  });

  it('carries the mode to the bundled filter, and warns about what it cannot carry', () => {
    expect(jailText('sshd', twin.yaml)).toMatch(/ {4}mode: "aggressive"/);
    expect(twin.notCarried.join('\n')).toMatch(
      /sshd: filter sshd: fail2ban's cannot run on RE2 \(look-behind/,
    );
    // apache-auth's look-aheads are written out: fail2ban's own file, in the mode asked for.
    expect(jailText('apache-auth')).toMatch(/ {4}filter: \{"fail2ban":"apache-auth","mode":"aggressive",/);
    const keys = jailText('ssh-keys');
    expect(keys).not.toMatch(/ {4}mode:/);
    const notes = result.notCarried.join('\n');
    expect(notes).toMatch(/ssh-keys: WARNING filter sshd\[mode=nosuchmode\]: .* has no mode "nosuchmode"/);
    expect(notes).toMatch(
      /ssh-keys: WARNING filter sshd: the parameters publickey=invalid are not carried over/,
    );
    // The output loads, with the mode in force on the jail.
    const config = parseConfigText(twin.yaml, 'imported.yaml');
    expect(config.jails.find((j) => j.name === 'sshd')?.mode).toBe('aggressive');
  });
});
