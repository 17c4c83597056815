import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

// The container image, built for real: registry images cannot be pulled here and `podman run`
// does not work (cgroups), so scripts/container-base.sh makes a local bookworm base with this
// machine's Node (cached under /var/cache/portcullis-ci and in podman's storage), `podman build
// --isolation chroot` builds the real Containerfile on it, and the image's own ENTRYPOINT, CMD,
// environment, user and HEALTHCHECK are run in its root filesystem (a chroot in a network
// namespace of its own) by container-smoke.mjs: default config, a client banned, a 403.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE = 'localhost/portcullis:ci';
const run = promisify(execFile);
const big = { maxBuffer: 256 * 1024 * 1024 };
const MINUTE = 60_000;

interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  WorkingDir: string;
  Volumes: Record<string, object>;
  ExposedPorts: Record<string, object>;
}

let container: string | undefined;
afterAll(async () => {
  if (container === undefined) return;
  await run('podman', ['umount', container]).catch(() => {});
  await run('podman', ['rm', '--force', container]).catch(() => {});
});

describe('container image', () => {
  it(
    'builds from the Containerfile on a local Node 20 bookworm base; its default config bans a client (403)',
    async () => {
      const timings: Record<string, number> = {};
      let mark = performance.now();
      const lap = (name: string) => {
        const now = performance.now();
        timings[name] = Math.round((now - mark) / 1000);
        mark = now;
      };

      const base = (
        await run('bash', [join(ROOT, 'scripts/container-base.sh'), process.execPath], {
          ...big,
          timeout: 15 * MINUTE,
        })
      ).stdout
        .trim()
        .split('\n')
        .at(-1) as string;
      expect(base).toMatch(/^localhost\/portcullis-base:node-v20\./);
      lap('base');

      // Behind a TLS-inspecting proxy npm needs its CA: handed to the npm ci step as a build secret.
      const ca = process.env.NODE_EXTRA_CA_CERTS ?? '/etc/ssl/certs/ca-certificates.crt';
      const secret = existsSync(ca) ? ['--secret', `id=ca-certificates,src=${ca}`] : [];
      await run(
        'nice',
        [
          '-n',
          '10',
          'podman',
          'build',
          '--isolation',
          'chroot',
          '--format',
          'docker',
          ...secret,
          '--build-arg',
          `BASE=${base}`,
          '--tag',
          IMAGE,
          '--file',
          'Containerfile',
          '.',
        ],
        { ...big, cwd: ROOT, timeout: 30 * MINUTE },
      );
      lap('build');

      const [inspected] = JSON.parse((await run('podman', ['image', 'inspect', IMAGE], big)).stdout) as {
        Config: ImageConfig;
        /** Top level in podman's inspect output; kept only in the docker image format. */
        Healthcheck?: { Test: string[] };
        Size: number;
      }[];
      const config = inspected?.Config as ImageConfig;
      const healthcheck = inspected?.Healthcheck?.Test;
      expect(config.User).toBe('portcullis');
      expect(Object.keys(config.Volumes).sort()).toEqual(['/etc/portcullis', '/var/lib/portcullis']);
      expect(Object.keys(config.ExposedPorts)).toEqual(['8080/tcp']);
      expect(healthcheck?.[0]).toBe('CMD');
      expect(healthcheck?.join(' ')).toContain('/healthz');
      expect(config.Env).toContain('NODE_ENV=production');
      expect(config.Entrypoint).toEqual(['portcullis-entrypoint']);
      expect(config.Cmd).toEqual(['run', '-c', '/etc/portcullis/portcullis.yaml']);

      container = (await run('podman', ['create', IMAGE])).stdout.trim();
      const rootfs = (await run('podman', ['mount', container])).stdout.trim();
      // The image is slim: no compiler, no dev dependencies, no sources of the native addons.
      for (const absent of ['usr/bin/g++', 'opt/portcullis/node_modules/vitest', 'opt/portcullis/src']) {
        expect(existsSync(join(rootfs, absent)), `${absent} is not in the image`).toBe(false);
      }
      for (const present of [
        'opt/portcullis/node_modules/re2/build/Release/re2.node',
        'opt/portcullis/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
        'opt/portcullis/rules/http/scanners.yaml',
        'etc/portcullis/portcullis.yaml',
      ]) {
        expect(existsSync(join(rootfs, present)), `${present} is in the image`).toBe(true);
      }
      const passwd = readFileSync(join(rootfs, 'etc/passwd'), 'utf8');
      const entry = passwd.split('\n').find((line) => line.startsWith(`${config.User}:`));
      const [, , uid, gid] = (entry ?? '').split(':');
      expect(Number(uid)).toBeGreaterThan(0);
      copyFileSync(
        join(ROOT, 'test/privileged/container-smoke.mjs'),
        join(rootfs, 'tmp/container-smoke.mjs'),
      );

      const spec = JSON.stringify({
        entrypoint: config.Entrypoint,
        cmd: config.Cmd,
        env: Object.fromEntries(
          config.Env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        ),
        workdir: config.WorkingDir,
        healthcheck,
      });
      const smoke = await run(
        'unshare',
        [
          '--net',
          '--mount',
          '--propagation',
          'private',
          '--',
          'bash',
          join(ROOT, 'test/privileged/container-chroot.sh'),
          rootfs,
          `${uid}:${gid}`,
          spec,
        ],
        { ...big, timeout: 3 * MINUTE, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } },
      ).catch((error: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`smoke test failed: ${error.stdout ?? ''}${error.stderr ?? ''}${error.message}`);
      });
      lap('smoke');
      const result = JSON.parse(smoke.stdout.trim().split('\n').at(-1) as string) as {
        ok: boolean;
        steps: { name: string; uid?: number; probes?: number[] }[];
      };
      expect(result.ok).toBe(true);
      expect(result.steps.find((s) => s.name === 'proxy up')?.uid).toBe(Number(uid));
      expect(result.steps.map((s) => s.name)).toEqual([
        'app',
        'proxy up',
        'healthcheck',
        'probes',
        'banned',
        'stopped',
        'ban survives restart',
      ]);
      console.log(
        `container: base ${timings.base}s, build ${timings.build}s, smoke ${timings.smoke}s, image ${Math.round((inspected?.Size ?? 0) / 1e6)} MB`,
      );
    },
    45 * MINUTE,
  );
});
