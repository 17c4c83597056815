import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import { send } from '../helpers/http-client.js';
import { startUpstream, type Upstream } from '../helpers/proxy.js';

const dir = mkdtempSync(join(tmpdir(), 'pc-admin-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let upstream: Upstream | undefined;
let running: ReturnType<typeof startCli> | undefined;
afterEach(async () => {
  if (running !== undefined && running.child.exitCode === null) {
    running.child.kill('SIGKILL');
    await running.exited;
  }
  running = undefined;
  await upstream?.close();
  upstream = undefined;
});

describe('portcullis run with admin:', () => {
  it('serves the API, metrics and dashboard next to the proxy, never logs the token, and stops cleanly', async () => {
    upstream = await startUpstream('app');
    const token = randomBytes(20).toString('hex');
    writeFileSync(join(dir, 'admin.token'), `${token}\n`, { mode: 0o600 });
    const file = join(dir, 'portcullis.yaml');
    writeFileSync(
      file,
      [
        'store: { sqlite: ./state.db }',
        'defaults: { ignoreip: [], ignoreself: false }',
        `proxy: { listen: "127.0.0.1:0", target: "${upstream.url}" }`,
        'admin: { listen: "127.0.0.1:0", token_file: admin.token }',
        'jails:',
        '  web-auth: { source: http, filter: { status: [401] }, maxretry: 2 }',
        '',
      ].join('\n'),
    );
    running = startCli(['run', '-c', file], { PORTCULLIS_LOG_LEVEL: 'info' });
    await running.waitFor(/admin listening on http:\/\/127\.0\.0\.1:\d+/);
    await running.waitFor(/proxy listening on/);
    const port = Number(/admin listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(running.output())?.[1]);
    const auth = { authorization: `Bearer ${token}` };

    expect((await send(port, { path: '/healthz' })).status).toBe(200);
    expect((await send(port, { path: '/readyz' })).status).toBe(200);
    expect((await send(port, { path: '/v1/status' })).status).toBe(401);
    const status = JSON.parse((await send(port, { path: '/v1/status', headers: auth })).body);
    expect(status.jails.map((j: { name: string }) => j.name)).toEqual(['web-auth']);
    expect(status.store).toMatchObject({ kind: 'sqlite', available: true });
    const page = await send(port, { path: '/' });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);

    // Traffic through the proxy shows up in /metrics, with Node's process metrics.
    const proxyPort = Number(/proxy listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(running.output())?.[1]);
    for (let i = 0; i < 2; i++) await send(proxyPort, { path: '/status/401', from: '127.0.0.4' });
    const banned = async () => (await send(proxyPort, { path: '/', from: '127.0.0.4' })).status;
    const deadline = Date.now() + 5_000;
    while ((await banned()) !== 403 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const metrics = (await send(port, { path: '/metrics', headers: auth })).body;
    expect(metrics).toMatch(/^portcullis_bans_total\{jail="web-auth"\} 1$/m);
    expect(metrics).toMatch(/^portcullis_http_requests_total\{outcome="allowed"\} 2$/m);
    expect(metrics).toMatch(/^portcullis_http_requests_total\{outcome="denied"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^process_cpu_user_seconds_total \d/m);

    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);
    expect(running.output()).not.toContain(token);
    await expect(send(port, { path: '/healthz' })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses a short token or a public address with a config error (exit 2)', async () => {
    writeFileSync(join(dir, 'short.token'), 'tooshort\n', { mode: 0o600 });
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'store: { memory: true }\nadmin: { listen: "0.0.0.0:9191", token_file: short.token }\n',
    );
    const result = await runCli(['run', '-c', file]);
    expect(result.status).toBe(2);
    expect(result.stderr + result.stdout).toMatch(
      /admin\.listen: "0\.0\.0\.0:9191" is not a loopback address/,
    );
    expect(result.stderr + result.stdout).toMatch(
      /admin\.token_file: the token is 8 characters long; use at least 16/,
    );
    expect(result.stderr + result.stdout).not.toContain('tooshort');
  });
});
