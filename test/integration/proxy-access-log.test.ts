import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadLogFilter } from '../../src/detection/filters/regex/log-filter.js';
import { startCli } from '../helpers/cli.js';
import { send } from '../helpers/http-client.js';
import {
  A,
  B,
  cleanups,
  rawExchange,
  runCleanups,
  startGuard,
  startProxy,
  startUpstream,
} from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait-for.js';

afterEach(runCleanups);

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-access-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function lines(path: string, encoding: BufferEncoding = 'latin1'): string[] {
  return existsSync(path)
    ? readFileSync(path, encoding)
        .split('\n')
        .filter((l) => l !== '')
    : [];
}

const COMBINED =
  /^(\S+) - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "((?:[^"\\]|\\x[0-9A-F]{2})*)" (\d{3}) (\d+) "((?:[^"\\]|\\x[0-9A-F]{2})*)" "((?:[^"\\]|\\x[0-9A-F]{2})*)"$/;

describe('reverse proxy: access log', () => {
  it('writes the combined format, refused and unparseable requests included, readable by the portcullis-access filter', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.log');
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, accessLog: { path, format: 'combined' } });
    const port = proxy.addresses[0]!.port;
    await guard.ban(B);
    await send(port, {
      path: '/x?q=1',
      from: A,
      headers: { 'user-agent': 'curl/8.0', referer: 'http://r/' },
    });
    await send(port, { path: '/status/404', from: A });
    await send(port, { path: '/', from: B });
    await rawExchange(port, ['\x00\x01garbage\r\n\r\n'], { from: A });
    await proxy.accessLog?.flush();

    const written = lines(path);
    expect(written).toHaveLength(4);
    for (const line of written) expect(line).toMatch(COMBINED);
    const fields = written.map((line) => COMBINED.exec(line)?.slice(1, 7));
    expect(fields[0]).toEqual([A, 'GET /x?q=1 HTTP/1.1', '200', expect.any(String), 'http://r/', 'curl/8.0']);
    expect(fields[1]?.slice(0, 3)).toEqual([A, 'GET /status/404 HTTP/1.1', '404']);
    expect(fields[2]?.slice(0, 3)).toEqual([B, 'GET / HTTP/1.1', '403']);
    expect(fields[3]?.slice(0, 3)).toEqual([A, '-', '400']);

    const filter = loadLogFilter('portcullis-access');
    const found = written.map((line) => filter.processLine(line).matches.map((m) => m.ip));
    expect(found).toEqual([[], [A], [B], [A]]);
  });

  it('writes JSON lines with time and ip first', async () => {
    const dir = tempDir();
    const path = join(dir, 'access.jsonl');
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, accessLog: { path, format: 'json' } });
    const port = proxy.addresses[0]!.port;
    await send(port, { path: '/status/401', from: A, headers: { 'user-agent': 'ua "quoted"' } });
    await proxy.accessLog?.flush();
    const [line] = lines(path);
    const entry = JSON.parse(line as string) as Record<string, unknown>;
    expect(Object.keys(entry).slice(0, 2)).toEqual(['time', 'ip']);
    expect(entry).toMatchObject({
      ip: A,
      method: 'GET',
      url: '/status/401',
      status: 401,
      user_agent: 'ua "quoted"',
    });
    expect(
      loadLogFilter('portcullis-access')
        .processLine(line as string)
        .matches.map((m) => m.ip),
    ).toEqual([A]);
  });

  it('a user agent or URL with quotes, backslashes and raw bytes cannot forge a field or a line', async () => {
    const dir = tempDir();
    const guard = await startGuard({});
    const upstream = await startUpstream();
    for (const format of ['combined', 'json'] as const) {
      const path = join(dir, `forge.${format}`);
      const proxy = await startProxy(guard, { target: upstream.url, accessLog: { path, format } });
      const port = proxy.addresses[0]!.port;
      // A 200 whose user agent pretends the request was a 404 from another client.
      const forged =
        'x" 404 0 "-" "y\\" \n192.0.2.66 - - [25/Nov/2026:12:00:01 +0000] "GET / HTTP/1.1" 404 1 "-" "z';
      const ua = forged.replace('\n', '\\n'); // a raw newline ends the header: HTTP cannot carry one
      await rawExchange(
        port,
        [
          Buffer.concat([
            Buffer.from(
              `GET /ok"x\\ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: ${ua}\xff\xfe\r\n\r\n`,
              'latin1',
            ),
          ]),
        ],
        { from: A },
      );
      await proxy.accessLog?.flush();
      // Combined lines are ASCII; JSON strings are UTF-8 (a Latin-1 header byte becomes its character).
      const written = lines(path, format === 'json' ? 'utf8' : 'latin1');
      expect(written).toHaveLength(1);
      const result = loadLogFilter('portcullis-access').processLine(written[0] as string);
      expect(result.matches).toEqual([]);
      if (format === 'combined') {
        expect(written[0]).toMatch(COMBINED);
        expect(COMBINED.exec(written[0] as string)?.[3]).toBe('200');
        expect(written[0]).toContain('\\x22 404 0 \\x22-\\x22 \\x22y\\x5C\\x22');
        expect(written[0]).toContain('\\xFF\\xFE');
      } else {
        const entry = JSON.parse(written[0] as string) as Record<string, unknown>;
        expect(entry).toMatchObject({ ip: A, status: 200, url: '/ok"x\\' });
        expect(entry.user_agent).toBe(`${ua}\xff\xfe`);
      }
    }
  });

  it('portcullis run reopens the access log on SIGUSR1 (logrotate)', async () => {
    const dir = tempDir();
    const upstream = await startUpstream();
    const path = join(dir, 'access.log');
    const config = join(dir, 'portcullis.yaml');
    writeFileSync(
      config,
      [
        'store: { memory: true }',
        'proxy:',
        '  listen: ["127.0.0.1:0"]',
        `  target: ${upstream.url}`,
        '  access_log: { path: access.log, format: combined, flush_interval: 50ms }',
        'jails:',
        '  web: { source: http, filter: { status: [401] }, ignoreip: [], ignoreself: false }',
        '',
      ].join('\n'),
    );
    const cli = startCli(['run', '-c', config]);
    cleanups.push(async () => {
      cli.child.kill('SIGTERM');
      await cli.exited;
    });
    await cli.waitFor(/proxy listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const port = Number(/proxy listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(cli.output())?.[1]);

    expect((await send(port, { path: '/before', from: A })).status).toBe(200);
    await waitFor(() => lines(path).length === 1, { message: 'the line of /before' });
    renameSync(path, `${path}.1`);
    // Still written to the renamed file until the signal: the file descriptor follows it.
    expect((await send(port, { path: '/renamed', from: A })).status).toBe(200);
    await waitFor(() => lines(`${path}.1`).length === 2, { message: 'the line of /renamed' });

    cli.child.kill('SIGUSR1');
    await cli.waitFor('access log reopened');
    expect((await send(port, { path: '/after', from: A })).status).toBe(200);
    await waitFor(() => lines(path).length === 1, { message: 'the line of /after' });
    expect(lines(path)[0]).toContain('"GET /after HTTP/1.1" 200');
    expect(lines(`${path}.1`).map((l) => /"GET (\S+)/.exec(l)?.[1])).toEqual(['/before', '/renamed']);

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });
});
