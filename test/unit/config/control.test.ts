import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { controlOf, defaultSocketPath } from '../../../src/config/control.js';
import { resolveConfig } from '../../../src/config/load.js';

const parse = (text: string) =>
  resolveConfig(parseYaml(text), { name: 'p.yaml', env: {}, baseDir: '/etc/pc' });
const problemsOf = (text: string): string => {
  try {
    parse(text);
    return '';
  } catch (error) {
    return (error as Error).message;
  }
};

describe('control:', () => {
  it('resolves the socket against the config directory and the mode from octal text', () => {
    expect(parse('control: { socket: run/pc.sock, mode: "0660" }').control).toEqual({
      socket: '/etc/pc/run/pc.sock',
      mode: 0o660,
      explicit: true,
    });
    expect(parse('control: false').control).toBeNull();
    expect(controlOf(parse('control: false'))).toBeNull();
    expect(parse('control: {}').control).toMatchObject({ mode: 0o600, explicit: false });
  });

  it('defaults: /run/portcullis as root, else $XDG_RUNTIME_DIR, else next to the config', () => {
    expect(defaultSocketPath('/srv/app', {}, 0)).toBe('/run/portcullis/portcullis.sock');
    expect(defaultSocketPath('/srv/app', { XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe(
      '/run/user/1000/portcullis.sock',
    );
    expect(defaultSocketPath('/srv/app', { XDG_RUNTIME_DIR: 'relative' }, 1000)).toBe(
      '/srv/app/portcullis.sock',
    );
    expect(defaultSocketPath('/srv/app', {}, 1000)).toBe('/srv/app/portcullis.sock');
    const absent = controlOf({ file: '/srv/app/portcullis.yaml' });
    expect(absent).toMatchObject({ mode: 0o600, explicit: false });
  });

  it('refuses modes that are not quoted octal or that open the socket to other users', () => {
    expect(problemsOf('control: { mode: 0600 }')).toBe(
      'p.yaml: control.mode: expected an octal file mode in quotes like "0600", got 600 (quote it: YAML reads 0600 as the number 600)',
    );
    expect(problemsOf('control: { mode: "0666" }')).toBe(
      'p.yaml: control.mode: the control socket can ban, unban and stop portcullis: other users must not reach it, got "0666" (use "0600" or "0660")',
    );
    expect(problemsOf('control: { mode: "rw" }')).toBe(
      'p.yaml: control.mode: expected an octal file mode like "0600", got "rw"',
    );
    expect(problemsOf('control: { sockt: /x }')).toContain(
      'control.sockt: unknown setting (did you mean "socket"?)',
    );
    expect(problemsOf('control: true')).toContain(
      'p.yaml: control: expected false or { socket, mode }, got true',
    );
  });

  it('refuses a socket path too long for a Unix socket', () => {
    expect(problemsOf(`control: { socket: /${'a'.repeat(120)}.sock }`)).toContain(
      'p.yaml: control.socket: a Unix socket path is at most 107 bytes, got 126',
    );
  });
});
