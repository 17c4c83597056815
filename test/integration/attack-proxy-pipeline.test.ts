import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createAccessLog } from '../../src/sources/http/access-log.js';
import {
  A,
  cleanups,
  rawExchange,
  runCleanups,
  startGuard,
  startProxy,
  startUpstream,
  statusOf,
} from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait-for.js';

afterEach(runCleanups);

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-attack-pipeline-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function logLines(path: string): string[] {
  return readFileSync(path, 'latin1')
    .split('\n')
    .filter((line) => line !== '');
}

/** Writes `data` from `from` and half-closes (FIN); resolves with what came back once closed. */
function writeThenFin(port: number, data: string, from: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from, allowHalfOpen: true });
    const received: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 3_000);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received).toString('latin1'));
    });
    socket.on('connect', () => socket.end(data));
  });
}

const PIPELINED = 50;
const request = 'GET /?file=/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n';

/** A proxy with an access log and a jail that counts every judged request (and bans at 50). */
async function logged() {
  const path = join(tempDir(), 'access.log');
  const guard = await startGuard({
    jails: { passwd: { source: 'http', filter: { url: 'etc/passwd' }, maxretry: PIPELINED } },
  });
  const upstream = await startUpstream();
  const proxy = await startProxy(guard, {
    target: upstream.url,
    headerTimeoutMs: 1_000,
    requestTimeoutMs: 2_000,
    accessLog: { path, flushIntervalMs: 20 },
  });
  return { path, guard, upstream, proxy, port: proxy.addresses[0]!.port };
}

describe('attack: pipelined requests, then the connection dies', () => {
  for (const [name, tail] of [
    ['garbage', '\x00\x01 not http at all\r\n\r\n'],
    ['a FIN', ''],
  ] as const) {
    it(`logs and judges every pipelined request followed by ${name}`, async () => {
      const { path, guard, upstream, proxy, port } = await logged();
      if (tail === '') await writeThenFin(port, request.repeat(PIPELINED), A);
      else await rawExchange(port, [request.repeat(PIPELINED) + tail], { from: A, timeoutMs: 3_000 });
      await waitFor(
        async () => {
          await proxy.accessLog?.flush();
          return logLines(path).filter((l) => l.includes('/etc/passwd')).length >= PIPELINED;
        },
        { timeoutMs: 5_000, message: () => `a line per request (${upstream.seen.length} upstream)` },
      );
      await guard.idle();
      const requestLines = logLines(path).filter((l) => l.includes('"GET /?file=/etc/passwd HTTP/1.1"'));
      expect(requestLines.length).toBe(PIPELINED);
      // Pipelined requests take turns, so those after the connection died never reach the
      // upstream: at most the one in flight did (none, when garbage kills the connection first).
      expect(upstream.seen.length).toBeLessThanOrEqual(1);
      // Each request that reached the upstream was judged, once; those still waiting for their
      // turn were not (they never reached it): one report at most, the request that had the turn.
      expect(guard.stats.reports).toBeGreaterThanOrEqual(upstream.seen.length);
      expect(guard.stats.reports).toBeLessThanOrEqual(1);
      // Each is logged with what the client got: nothing (status 0), but for an answer delivered.
      const statuses = requestLines.map((line) => Number(/" (\d{1,3}) /.exec(line)?.[1]));
      expect(statuses.filter((status) => status !== 0).length).toBeLessThanOrEqual(upstream.seen.length);
    });
  }
});

describe('attack: smaller hostile inputs', () => {
  it('logs an aborted upload once', async () => {
    const { path, proxy, port } = await logged();
    await rawExchange(
      port,
      (write) => {
        write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
        write('a'.repeat(1_000));
      },
      { from: A, timeoutMs: 300 },
    );
    // The client is gone (reset by the helper's timeout): its exchange ends now.
    await waitFor(
      async () => {
        await proxy.accessLog?.flush();
        return logLines(path).length >= 1;
      },
      { timeoutMs: 5_000, message: 'the upload logged' },
    );
    // Kept: a second line would come from the same close; give it the turn of the loop it needs.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await proxy.accessLog?.flush();
    const lines = logLines(path);
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain('"POST /upload HTTP/1.1"');
  });

  it('logs an upload cut short by a FIN once, as 400', async () => {
    const { path, proxy, port } = await logged();
    const reply = await writeThenFin(
      port,
      `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(1_000)}`,
      A,
    );
    expect(statusOf(reply)).toBe(400);
    await waitFor(
      async () => {
        await proxy.accessLog?.flush();
        return logLines(path).length >= 1;
      },
      { timeoutMs: 5_000, message: 'the upload logged' },
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await proxy.accessLog?.flush();
    expect(logLines(path).length).toBe(1);
    expect(logLines(path)[0]).toContain('"POST /upload HTTP/1.1" 400');
  });

  it('serves a request preceded by empty lines (allowed by RFC 9112), judging its real request line', async () => {
    const { port } = await logged();
    const reply = await rawExchange(
      port,
      ['\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      { from: A },
    );
    expect(statusOf(reply.text)).toBe(200);
  });

  it('refuses a non-HTTP protocol line (RTSP) with 400 and logs it, and HTTP/2.0 with 505', async () => {
    const { path, upstream, proxy, port } = await logged();
    const rtsp = await rawExchange(port, ['OPTIONS / RTSP/1.0\r\nCSeq: 1\r\n\r\n'], { from: A });
    expect(statusOf(rtsp.text)).toBe(400);
    const h2 = await rawExchange(port, ['GET / HTTP/2.0\r\nHost: x\r\n\r\n'], { from: A });
    expect(statusOf(h2.text)).toBe(505);
    expect(upstream.seen.length).toBe(0);
    expect(proxy.stats.badProtocol).toBe(2);
    await waitFor(
      async () => {
        await proxy.accessLog?.flush();
        return logLines(path).length >= 2;
      },
      { timeoutMs: 5_000, message: 'both refusals logged' },
    );
    expect(logLines(path).some((l) => l.includes('"OPTIONS / HTTP/1.0" 400'))).toBe(true);
    expect(logLines(path).some((l) => l.includes(' 505 '))).toBe(true);
  });

  it('refuses an access log in a missing directory, naming it, and creates nothing', async () => {
    const dir = tempDir();
    const missing = join(dir, 'no', 'such');
    await expect(createAccessLog({ path: join(missing, 'access.log') })).rejects.toThrow(
      `the directory ${missing} does not exist`,
    );
    expect(() => readFileSync(join(dir, 'no'))).toThrow(/ENOENT/);
    mkdirSync(missing, { recursive: true });
    const log = await createAccessLog({ path: join(missing, 'access.log') });
    await log.close();
  });
});
