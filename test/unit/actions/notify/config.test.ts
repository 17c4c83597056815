import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../../src/config/load.js';

const problems = (text: string): string => {
  try {
    parseConfigText(text, 'p.yaml', { env: {} });
    return '';
  } catch (error) {
    return (error as Error).message;
  }
};

describe('notification action config', () => {
  it('accepts email, webhook and sms, as presets and inline, as local (non-firewall) actions', () => {
    const config = parseConfigText(
      [
        'actions:',
        '  ops-mail: { email: { to: [ops@example.com], digest: 10m } }',
        'jails:',
        '  sshd:',
        '    actions:',
        '      - ops-mail',
        '      - webhook: { url_env: SLACK_URL, format: slack }',
        '      - sms: { to: "+15550100", from: "+15550199", account: AC1, token_file: /run/secrets/t }',
      ].join('\n'),
      'p.yaml',
      { env: {} },
    );
    const specs = config.actions ?? [];
    expect(specs.map((s) => [s.name, s.kind, s.firewall])).toEqual([
      ['ops-mail', 'email', false],
      ['webhook-sshd', 'webhook', false],
      ['sms-sshd', 'sms', false],
    ]);
    expect(specs[0]?.options).toMatchObject({
      to: ['ops@example.com'],
      port: 25,
      notify: { digestMs: 600_000 },
    });
    expect(specs[2]?.options).toMatchObject({
      url: 'https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json',
    });
  });

  it('names the key path of unknown keys, bad URLs, missing and doubled secrets', () => {
    const text = [
      'jails:',
      '  sshd:',
      '    actions:',
      '      - email: { to: [ops@example.com], smtp: "smtp://u:pw@mail:25", colour: red }',
      '      - webhook: { url: "http://hooks.example.com/x", format: irc }',
      '      - webhook: { url: "https://a.example/x", url_env: HOOK }',
      '      - sms: { to: "555", from: "+15550199", account: AC1 }',
      '      - email: { to: ops@example.com, digest: soon }',
    ].join('\n');
    const message = problems(text);
    expect(message).toContain(
      'p.yaml: jails.sshd.actions.0.email.colour: unknown setting of the email action',
    );
    expect(message).toMatch(/jails\.sshd\.actions\.0\.email\.smtp: .*password_file or password_env/);
    expect(message).toMatch(/jails\.sshd\.actions\.1\.webhook\.url: expected an https:\/\/ URL/);
    expect(message).toMatch(
      /jails\.sshd\.actions\.1\.webhook\.format: expected one of slack, discord, teams, generic/,
    );
    expect(message).toMatch(
      /jails\.sshd\.actions\.2\.webhook: expected one of url, url_file, url_env, got url and url_env/,
    );
    expect(message).toMatch(/jails\.sshd\.actions\.3\.sms\.to: expected a phone number/);
    expect(message).toMatch(/jails\.sshd\.actions\.3\.sms: expected one of token_file, token_env/);
    expect(message).toMatch(/jails\.sshd\.actions\.4\.email\.digest: expected a digest window like "10m"/);
  });

  it('allows plain http only to this host', () => {
    expect(problems('jails:\n  a:\n    actions: [{ webhook: { url: "http://127.0.0.1:9000/h" } }]\n')).toBe(
      '',
    );
    expect(problems('jails:\n  a:\n    actions: [{ webhook: { url: "http://[::1]:9000/h" } }]\n')).toBe('');
    expect(problems('jails:\n  a:\n    actions: [{ webhook: { url: "http://10.0.0.1/h" } }]\n')).toMatch(
      /https/,
    );
  });
});
