import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { send } from '../helpers/http-client.js';

const SCANNER = '127.0.0.2';
const VISITOR = '127.0.0.3';

describe('end to end: the proxy writes its access log, a log jail reads it and bans', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-e2e-'));
  let upstream: Server;
  afterAll(async () => {
    await new Promise((resolve) => upstream?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a scanner probing missing paths through `portcullis run` is banned by the access-log jail; others are served', async () => {
    upstream = createServer((req, res) => {
      res.statusCode = req.url === '/' ? 200 : 404;
      res.end(req.url === '/' ? 'home\n' : 'not found\n');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const accessLog = join(dir, 'access.log');
    const config = join(dir, 'portcullis.yaml');
    writeFileSync(
      config,
      [
        `store: { sqlite: ${join(dir, 'e2e.db')} }`,
        'proxy:',
        '  listen: "127.0.0.1:0"',
        `  target: http://127.0.0.1:${upstreamPort}`,
        '  deny: 403',
        `  access_log: { path: ${accessLog}, format: combined, flush_interval: 50ms }`,
        'defaults: { ignoreip: [], ignoreself: false }',
        'jails:',
        '  probes:',
        `    source: { log: ${accessLog}, start: beginning }`,
        '    filter: portcullis-access',
        '    maxretry: 5',
        '    findtime: 1m',
        '    bantime: 1h',
        '',
      ].join('\n'),
    );
    const run = startCli(['run', '-c', config]);
    try {
      await run.waitFor(/proxy listening on http:\/\/127\.0\.0\.1:(\d+)/);
      const port = Number(/proxy listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(run.output())?.[1]);

      for (let i = 0; i < 5; i++) {
        expect((await send(port, { path: `/probe-${i}.php`, from: SCANNER })).status).toBe(404);
      }
      // The fifth 404 reaches the log, the jail reads it, the ban lands in the running proxy.
      await run.waitFor('"event":"ban","target":"127.0.0.2","jail":"probes"', 10_000);
      expect((await send(port, { path: '/', from: SCANNER })).status).toBe(403);
      expect((await send(port, { path: '/', from: VISITOR })).status).toBe(200);
      expect(readFileSync(accessLog, 'utf8')).toContain('127.0.0.2 - - [');
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });
});
