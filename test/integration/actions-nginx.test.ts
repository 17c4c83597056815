import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNginxAction } from '../../src/actions/nginx/nginx-action.js';
import { nginxOptionsSchema, resolveNginxOptions } from '../../src/actions/nginx/options.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { guardWithRunner } from '../helpers/action-runner.js';
import { waitFor } from '../helpers/wait-for.js';

// Debian's nginx, started by the test on a free loopback port with its own prefix, pid file, error
// log and config in a temp dir; its geo block includes the file the nginx action writes. Clients
// use distinct loopback source addresses (127.0.0.2 banned, 127.0.0.3 not).

let dir: string;
let port: number;
let nginx: ChildProcess | undefined;
let nginxLog = '';
const cleanups: (() => Promise<void>)[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: free } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return free;
}

/** The status nginx answers a GET from `localAddress`. */
function status(localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const base = () => ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pc-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  port = await freePort();
  const include = join(dir, 'banned.conf');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')};
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  geo $portcullis_banned { default 0; include ${include}; }
  server {
    listen 127.0.0.1:${port};
    location / {
      if ($portcullis_banned) { return 403; }
      return 200 "ok\\n";
    }
  }
}
`,
  );
  // The include exists before nginx starts (the action also makes it at start).
  writeFileSync(include, '');
  nginx = spawn('nginx', [...base(), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  nginx.stderr?.on('data', (c: Buffer) => {
    nginxLog += c.toString();
  });
  await waitFor(
    () =>
      status('127.0.0.3').then(
        (s) => s === 200,
        () => false,
      ),
    {
      timeoutMs: 10_000,
      intervalMs: 50,
      message: () => `nginx to answer (${nginxLog})`,
    },
  );
}, 30_000);

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  if (nginx !== undefined && nginx.exitCode === null) {
    const exited = new Promise((resolve) => nginx?.once('exit', resolve));
    nginx.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('nginx action with a real nginx', () => {
  it('a banned client gets 403 from nginx within 2 s, another gets 200; unban lifts it; the file is replaced atomically', async () => {
    const file = join(dir, 'banned.conf');
    const config = resolveNginxOptions(
      'nginx',
      nginxOptionsSchema.parse({ file, reload: ['nginx', ...base(), '-s', 'reload'], debounce: '300ms' }),
    );
    const action = createNginxAction('nginx', config, {
      logger: silentLogger,
      clock: systemClock,
      baseDir: null,
    });
    const { guard, runner } = await guardWithRunner([action], cleanups);
    await runner.idle();
    const inode = statSync(file).ino;

    const bannedAt = Date.now();
    await guard.ban('127.0.0.2', { duration: '1h' });
    await waitFor(async () => (await status('127.0.0.2')) === 403, {
      timeoutMs: 2000,
      intervalMs: 20,
      message: () => `403 for the banned client (${nginxLog} ${runner.stats().nginx?.lastError})`,
    });
    const tookMs = Date.now() - bannedAt;
    expect(tookMs).toBeLessThan(2000);
    expect(await status('127.0.0.3')).toBe(200);
    expect(readFileSync(file, 'utf8')).toContain('\n127.0.0.2 1;\n');
    expect(statSync(file).ino).not.toBe(inode);

    // A range, and a burst: reloads are at most one per debounce, the burst lands together.
    const before = action.reloads;
    await Promise.all([
      guard.ban('127.0.1.0/24', { duration: '1h' }),
      guard.ban('127.0.0.9', { duration: '1h' }),
    ]);
    await runner.idle();
    expect(action.reloads - before).toBeLessThanOrEqual(2);
    await waitFor(async () => (await status('127.0.1.5')) === 403, { timeoutMs: 2000, intervalMs: 20 });

    await guard.unban('127.0.0.2');
    await waitFor(async () => (await status('127.0.0.2')) === 200, {
      timeoutMs: 2000,
      intervalMs: 20,
      message: 'the unbanned client to get 200',
    });
    expect(readFileSync(file, 'utf8')).not.toContain('127.0.0.2 ');
  }, 30_000);

  it('a reload that fails is reported and retried, never dropped', async () => {
    const file = join(dir, 'banned.conf');
    // A wrong prefix: nginx cannot find the pid file and exits 1.
    const config = resolveNginxOptions(
      'nginx',
      nginxOptionsSchema.parse({
        file,
        reload: ['nginx', '-p', join(dir, 'missing'), '-s', 'reload'],
        debounce: 0,
      }),
    );
    const action = createNginxAction('nginx', config, {
      logger: silentLogger,
      clock: systemClock,
      baseDir: null,
    });
    const { guard, runner } = await guardWithRunner([action], cleanups);
    await runner.idle();
    await guard.ban('127.0.0.4', { duration: '1h' });
    await waitFor(() => (runner.stats().nginx?.failures ?? 0) >= 2, { timeoutMs: 5000 });
    expect(runner.stats().nginx?.lastError).toMatch(/nginx -p .* -s reload exited 1/);
    expect(runner.stats().nginx?.pending).toBeGreaterThan(0);
  }, 30_000);

  it('the reload command sees only PATH, LANG and LC_* of the daemon, never its secrets; a /0 ban is never written', async () => {
    const file = join(dir, 'floor.conf');
    const seen = join(dir, 'reload-env');
    const config = resolveNginxOptions(
      'nginx',
      nginxOptionsSchema.parse({ file, reload: ['sh', '-c', 'env > "$0"', seen], debounce: 0 }),
    );
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (_f: object, m?: string) => errors.push(String(m)) };
    const action = createNginxAction(
      'nginx',
      config,
      { logger, clock: systemClock, baseDir: null },
      {
        env: {
          PATH: process.env.PATH,
          LANG: 'C.UTF-8',
          LC_TIME: 'C',
          PORTCULLIS_ADMIN_TOKEN: 'secret-admin-token-0123456789',
          REDIS_PASSWORD: 'hunter2',
          HOME: '/root',
        },
      },
    );
    await action.start();
    const now = Date.now();
    const decision = (target: string) => ({
      target,
      jail: 'sshd',
      reason: 'test',
      startedAt: now,
      expiresAt: now + 60_000,
      banCount: 1,
      dryRun: false,
      origin: 'test',
    });
    await action.apply(['0.0.0.0/0', '::/0', '128.0.0.0/1', '10.0.0.0/8', '192.0.2.7'].map(decision));
    const written = readFileSync(file, 'utf8');
    expect(written).toContain('\n10.0.0.0/8 1;\n');
    expect(written).toContain('\n192.0.2.7 1;\n');
    expect(written).not.toMatch(/^(0\.0\.0\.0\/0|::\/0|128\.0\.0\.0\/1) /m);
    expect(action.refused).toBe(3);
    expect(errors.join('\n')).toMatch(/3 network\(s\) refused: wider than \/8/);
    const names = readFileSync(seen, 'utf8')
      .split('\n')
      .map((line) => line.split('=')[0])
      .filter((name) => name !== '' && name !== 'PWD' && name !== 'SHLVL' && name !== '_');
    expect(names.sort()).toEqual(['LANG', 'LC_TIME', 'PATH', 'PORTCULLIS_RUN_ID']);
    await action.close();
  }, 30_000);
});
