import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { CONTROL_DEFAULTS } from '../../../src/config/control.js';
import { loadConfigFile } from '../../../src/config/load.js';

// The files a user deploys with: Containerfile, examples/compose.yaml, the systemd unit and the
// logrotate snippet. They parse, point at files that exist, and agree with each other and with
// what portcullis does (its signals, its default control socket, its config schema).

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const EXAMPLES = join(ROOT, 'examples');
const run = promisify(execFile);
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const temp = mkdtempSync(join(tmpdir(), 'portcullis-deploy-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** Loads a config written for the image with its absolute data/run paths moved into a temp dir. */
function loadRelocated(path: string) {
  const dir = mkdtempSync(join(temp, 'cfg-'));
  const token = join(dir, 'admin-token');
  writeFileSync(token, `${'t'.repeat(32)}\n`);
  chmodSync(token, 0o600);
  const text = read(path)
    .replaceAll('/var/lib/portcullis/', `${dir}/`)
    .replaceAll('/run/portcullis/', `${dir}/`);
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(file, text);
  return loadConfigFile(file, { env: {} });
}

function parseYaml(path: string): Record<string, unknown> {
  const document = parseDocument(read(path), { uniqueKeys: true });
  expect(document.errors, `${path} parses`).toEqual([]);
  expect(document.warnings, `${path} has no YAML warnings`).toEqual([]);
  return document.toJS() as Record<string, unknown>;
}

/** `KEY=value` lines by section; a key given twice keeps every value. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section !== null) {
      current = new Map();
      sections.set(section[1] as string, current);
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `a KEY=value line: ${line}`).toBeGreaterThan(0);
    expect(current, `a key before any [Section]: ${line}`).toBeDefined();
    const key = line.slice(0, eq);
    current?.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

describe('Containerfile', () => {
  const text = read('Containerfile');
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const defaults = loadRelocated('examples/container/portcullis.yaml');
  const allowed = read('.containerignore')
    .split('\n')
    .filter((line) => line.startsWith('!'))
    .map((line) => line.slice(1).replace(/\/$/, ''));

  it('takes its base as ARG BASE, defaulting to the slim Node 20 bookworm image, built in stages', () => {
    expect(instructions[0]).toBe('ARG BASE=node:20-bookworm-slim');
    const from = ['FROM $', '{BASE} AS '].join('');
    const stages = instructions.filter((i) => i.startsWith(from)).map((i) => i.slice(from.length));
    expect(stages).toEqual(['manifest', 'build', 'runtime']);
    // The runtime stage is the last: what `podman build` without --target produces.
    expect(
      instructions
        .slice(instructions.indexOf(`${from}runtime`))
        .some((i) => i.startsWith('RUN apt-get') && i.includes('g++')),
    ).toBe(false);
  });

  it('copies only files that exist and that .containerignore lets into the build context', () => {
    const copies = instructions.filter((i) => i.startsWith('COPY ') && !i.includes('--from='));
    expect(copies.length).toBeGreaterThan(4);
    for (const copy of copies) {
      const sources = copy.split(/\s+/).slice(1, -1);
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
        const admitted = allowed.some((entry) => source === entry || source.startsWith(`${entry}/`));
        expect(admitted, `${source} is in the build context`).toBe(true);
      }
    }
    expect(statSync(join(ROOT, 'examples/container/entrypoint.sh')).mode & 0o111).not.toBe(0);
  });

  it('runs as a non-root user, with the volumes, port and health check the default config needs', () => {
    expect(instructions).toContain('USER portcullis');
    const volume = instructions.find((i) => i.startsWith('VOLUME '));
    expect(JSON.parse(volume?.slice('VOLUME '.length) ?? '[]')).toEqual([
      '/etc/portcullis',
      '/var/lib/portcullis',
    ]);
    // The default config keeps its store and admin token on the data volume.
    const raw = parseYaml('examples/container/portcullis.yaml') as {
      store: { sqlite: string };
      admin: { listen: string; token_file: string };
      proxy: { listen: string };
    };
    expect(raw.store.sqlite.startsWith('/var/lib/portcullis/')).toBe(true);
    expect(raw.admin.token_file.startsWith('/var/lib/portcullis/')).toBe(true);
    const proxyPort = raw.proxy.listen.split(':').at(-1);
    expect(instructions).toContain(`EXPOSE ${proxyPort}`);
    const health = instructions.find((i) => i.startsWith('HEALTHCHECK '));
    expect(health).toContain(`http://${raw.admin.listen}/healthz`);
    expect(health).not.toMatch(/curl|wget/);
    // The entrypoint's default token path is the one the config reads.
    expect(read('examples/container/entrypoint.sh')).toContain(raw.admin.token_file);
    expect(defaults.store.kind).toBe('sqlite');
    expect(defaults.jails.map((jail) => jail.name)).toEqual(['scanners', 'flood', 'login']);
  });

  it('names only PORTCULLIS_* variables portcullis reads', async () => {
    const { ENV_OVERRIDES } = await import('../../../src/config/load.js');
    const named = new Set([...text.matchAll(/PORTCULLIS_[A-Z_]+/g)].map((m) => m[0]));
    for (const name of named) expect(Object.keys(ENV_OVERRIDES), name).toContain(name);
  });
});

describe('examples/compose.yaml', () => {
  const compose = parseYaml('examples/compose.yaml') as {
    services: Record<
      string,
      {
        image?: string;
        build?: { context: string; dockerfile: string };
        volumes?: string[];
        ports?: string[];
        command?: string[];
        depends_on?: Record<string, unknown>;
      }
    >;
  };
  const services = compose.services;
  const proxies = Object.entries(services).filter(([name]) => name.startsWith('portcullis-'));

  it('has Redis, a demo app and two portcullis proxies built from the Containerfile', () => {
    expect(Object.keys(services).sort()).toEqual(['app', 'portcullis-a', 'portcullis-b', 'redis']);
    expect(proxies).toHaveLength(2);
    for (const [, service] of [...proxies, ['app', services.app] as const]) {
      const build = service?.build;
      expect(build).toBeDefined();
      expect(existsSync(join(EXAMPLES, build?.context ?? '', build?.dockerfile ?? ''))).toBe(true);
      expect(resolve(EXAMPLES, build?.context ?? '')).toBe(ROOT);
    }
    const published = proxies.flatMap(([, s]) => s.ports ?? []);
    expect(new Set(published).size).toBe(published.length);
  });

  it('mounts files that exist; the proxies mount a valid config pointing at the compose services', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] as string;
        if (!source.startsWith('.')) continue; // a named volume
        expect(existsSync(join(EXAMPLES, source)), `${name}: ${source} exists`).toBe(true);
      }
    }
    for (const [name, service] of proxies) {
      const mount = service.volumes?.find((v) => v.endsWith(':/etc/portcullis/portcullis.yaml:ro'));
      expect(mount, `${name} mounts its config read-only`).toBeDefined();
      const path = join('examples', (mount as string).split(':')[0] as string);
      const config = loadRelocated(path);
      expect(config.store.kind).toBe('redis');
      const raw = parseYaml(path) as { store: { redis: { url: string } }; proxy: { target: string } };
      expect(new URL(raw.store.redis.url).hostname).toBe('redis');
      const target = new URL(raw.proxy.target);
      expect(Object.keys(services)).toContain(target.hostname);
      expect(services[target.hostname]?.command?.join(' ')).toContain(`port: ${target.port}`);
      expect(Object.keys(service.depends_on ?? {})).toEqual(expect.arrayContaining(['redis', 'app']));
    }
  });
});

describe('examples/portcullis.service', () => {
  const text = read('examples/portcullis.service');
  const unit = parseUnit(text);
  const service = unit.get('Service') as Map<string, string[]>;
  const one = (key: string) => service.get(key)?.join(' ') ?? '';

  it('runs portcullis on /etc/portcullis, reloads with SIGHUP to the main process, keeps exit 2 down', () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    expect(one('ExecStart')).toMatch(/\/portcullis run -c \/etc\/portcullis\/portcullis\.yaml$/);
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('RestartPreventExitStatus')).toBe('2');
    expect(one('User')).toBe('portcullis');
  });

  it('gives the firewall and capture capabilities, and the control socket dir portcullis status looks in', () => {
    for (const key of ['AmbientCapabilities', 'CapabilityBoundingSet']) {
      expect(one(key).split(/\s+/).sort(), key).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    }
    expect(one('RuntimeDirectory')).toBe('portcullis');
    // As a non-root user the daemon binds $XDG_RUNTIME_DIR/portcullis.sock; the CLI run as root
    // looks at CONTROL_DEFAULTS.rootSocket: the same file.
    expect(service.get('Environment')).toContain('XDG_RUNTIME_DIR=/run/portcullis');
    expect(`/run/${one('RuntimeDirectory')}/${CONTROL_DEFAULTS.userSocketName}`).toBe(
      CONTROL_DEFAULTS.rootSocket,
    );
    expect(one('RestrictAddressFamilies').split(/\s+/)).toEqual(
      expect.arrayContaining(['AF_NETLINK', 'AF_PACKET', 'AF_UNIX']),
    );
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    // V8 needs writable executable memory: this option would kill node at start.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
  });

  it('passes systemd-analyze verify without a warning', async () => {
    // verify checks that ExecStart's binary exists: point it at this machine's node for the check.
    const dir = mkdtempSync(join(temp, 'unit-'));
    const copy = join(dir, 'portcullis.service');
    writeFileSync(copy, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
    const { stdout, stderr } = await run('systemd-analyze', ['verify', copy], { timeout: 20_000 });
    expect(`${stdout}${stderr}`.trim()).toBe('');
  });
});

describe('examples/logrotate', () => {
  const text = read('examples/logrotate');

  it('rotates the unit LogsDirectory and sends SIGUSR1 (reopen) to the main process only', () => {
    const unit = parseUnit(read('examples/portcullis.service'));
    const logs = unit.get('Service')?.get('LogsDirectory')?.[0];
    expect(text).toMatch(new RegExp(`^/var/log/${logs}/\\*\\.log \\{$`, 'm'));
    const postrotate = /postrotate\n([\s\S]*?)\n\s*endscript/.exec(text)?.[1]?.trim();
    expect(postrotate).toMatch(/^systemctl kill --kill-whom=main --signal=USR1 portcullis\.service\b/);
    expect(text.split('{').length).toBe(text.split('}').length);
    // What SIGUSR1 does in `portcullis run`.
    expect(read('src/surfaces/cli/main.ts')).toMatch(
      /process\.on\('SIGUSR1', \(\) => void instance\.reopenLogs\(\)\)/,
    );
  });

  it('is what the README tells a logrotate user to do', () => {
    const readme = read('README.md');
    expect(readme).not.toContain('systemctl kill -s USR1 portcullis');
    expect(readme).toContain('systemctl kill --kill-whom=main --signal=USR1 portcullis.service');
  });
});
