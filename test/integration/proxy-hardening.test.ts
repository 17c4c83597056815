import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { send } from '../helpers/http-client.js';
import {
  A,
  B,
  rawExchange,
  runCleanups,
  sleep,
  startGuard,
  startProxy,
  startUpstream,
  statusOf,
} from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait-for.js';

afterEach(runCleanups);

const SLOWHTTPTEST = '/usr/bin/slowhttptest';

/** A proxy with short timeouts in front of a plain upstream. */
async function hardened(extra: Record<string, unknown> = {}) {
  const guard = await startGuard({});
  const upstream = await startUpstream();
  const proxy = await startProxy(guard, {
    target: upstream.url,
    headerTimeoutMs: 1_000,
    requestTimeoutMs: 2_000,
    keepAliveTimeoutMs: 1_000,
    ...extra,
  });
  return { guard, upstream, proxy, port: proxy.addresses[0]!.port };
}

describe('reverse proxy: hostile clients', () => {
  it('answers garbage with 400 and closes', async () => {
    const { port, upstream, proxy } = await hardened();
    const reply = await rawExchange(port, ['\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n'], {
      from: A,
    });
    expect(statusOf(reply.text)).toBe(400);
    expect(reply.end).not.toBe('timeout');
    expect(upstream.seen.length).toBe(0);
    expect(proxy.stats.clientErrors).toBe(1);
  });

  it('answers a request line of binary bytes with 400', async () => {
    const { port } = await hardened();
    const binary = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 1) % 256));
    const reply = await rawExchange(port, [binary, '\r\n\r\n'], { from: A });
    expect(statusOf(reply.text)).toBe(400);
    expect(reply.end).not.toBe('timeout');
  });

  it('answers a 100 KB header with 431', async () => {
    const { port, upstream } = await hardened();
    const reply = await rawExchange(
      port,
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`],
      {
        from: A,
      },
    );
    expect(statusOf(reply.text)).toBe(431);
    expect(upstream.seen.length).toBe(0);
  });

  it('closes a slowloris client with 408 after the header timeout while serving others', async () => {
    const { port, proxy } = await hardened();
    let n = 0;
    const attack = rawExchange(
      port,
      (write) => {
        write('GET / HTTP/1.1\r\nHost: x\r\n');
        // Kept: the drip is the attack, one header line every 200 ms, past the 1 s header timeout.
        const drip = setInterval(() => {
          if (!write(`X-${n++}: y\r\n`) || n > 30) clearInterval(drip);
        }, 200);
      },
      { from: A, timeoutMs: 8_000 },
    );
    await waitFor(() => n >= 1, { timeoutMs: 5_000, message: 'the slowloris to be dripping' });
    const during = await send(port, { from: B });
    expect(during.status).toBe(200);
    const result = await attack;
    expect(statusOf(result.text)).toBe(408);
    expect(result.end).not.toBe('timeout');
    expect(result.elapsedMs).toBeLessThan(3_000);
    expect(proxy.stats.clientErrors).toBe(1);
  });

  it('closes a connection that never sends a byte after the header timeout', async () => {
    const { port } = await hardened();
    const silent = await rawExchange(port, [], { from: A, timeoutMs: 5_000 });
    expect(silent.end).not.toBe('timeout');
    expect(silent.elapsedMs).toBeGreaterThanOrEqual(900);
    expect(silent.elapsedMs).toBeLessThan(3_000);
  });

  it('closes a slow body (R-U-Dead-Yet) after the request timeout', async () => {
    const { port } = await hardened();
    const result = await rawExchange(
      port,
      (write) => {
        write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
        // Kept: the drip is the attack, a body byte every 100 ms, past the 2 s request timeout.
        const drip = setInterval(() => {
          if (!write('a')) clearInterval(drip);
        }, 100);
        setTimeout(() => clearInterval(drip), 6_000);
      },
      { from: A, timeoutMs: 8_000 },
    );
    expect(result.end).not.toBe('timeout');
    expect(result.elapsedMs).toBeLessThan(4_000);
  });

  it('counts a connection cut by a ban once, however often the ban is announced', async () => {
    const guard = await startGuard({});
    let answer: (() => void) | undefined;
    const upstream = await startUpstream('a', 0, (req, res) => {
      if (req.url !== '/slow') return false;
      answer = () => res.end('late\n');
      return true;
    });
    const proxy = await startProxy(guard, { target: upstream.url });
    const port = proxy.addresses[0]!.port;
    const pending = rawExchange(port, ['GET /slow HTTP/1.1\r\nHost: x\r\n\r\n'], {
      from: A,
      timeoutMs: 5_000,
    });
    await waitFor(() => answer !== undefined, { message: 'the request at the upstream' });
    await guard.ban(A, { duration: '10m' });
    await guard.ban(A, { duration: '1h' }); // a longer ban of the same client: announced again
    expect(proxy.stats.closedOnBan).toBe(1);
    answer?.();
    const result = await pending;
    // The response it owed is delivered, and the connection closes after it.
    expect(statusOf(result.text)).toBe(200);
    expect(result.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(result.end).toBe('closed');
    expect(proxy.stats.closedOnBan).toBe(1);
  });

  it('limits concurrent connections per client address', async () => {
    const { port, proxy, upstream } = await hardened({ maxConnectionsPerIp: 2 });
    const held = [
      rawExchange(port, ['GET /hang HTTP/1.1\r\nHost: x\r\n\r\n'], { from: A, timeoutMs: 400 }),
      rawExchange(port, ['GET /hang HTTP/1.1\r\nHost: x\r\n\r\n'], { from: A, timeoutMs: 400 }),
    ];
    await waitFor(() => upstream.seen.length >= 2, {
      timeoutMs: 5_000,
      message: 'both held requests upstream',
    });
    const third = await rawExchange(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], {
      from: A,
      timeoutMs: 1_000,
    });
    expect(third.data.length).toBe(0);
    expect(third.end).not.toBe('timeout');
    expect((await send(port, { from: B })).status).toBe(200);
    await Promise.all(held);
    expect(proxy.stats.overConnectionLimit).toBe(1);
  });

  it('survives slowhttptest (slowloris and slow body) and keeps serving meanwhile', async () => {
    const { port, proxy } = await hardened();
    const run = (mode: string) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(
          SLOWHTTPTEST,
          [
            mode,
            '-c',
            '150',
            '-r',
            '150',
            '-i',
            '1',
            '-l',
            '4',
            '-x',
            '10',
            '-s',
            '8192',
            '-p',
            '2',
            '-u',
            `http://127.0.0.1:${port}/`,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.stderr.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('error', (error) =>
          reject(new Error(`${SLOWHTTPTEST}: ${error.message} (apt-get install slowhttptest)`)),
        );
        child.on('close', () => {
          clearTimeout(killer);
          resolve(output);
        });
      });
    const attacks = Promise.all([run('-H'), run('-B')]);
    const during: number[] = [];
    for (let i = 0; i < 10; i++) {
      // Kept: samples spread over the attack (about 3 s of its 4), not a wait for a result.
      await sleep(300);
      during.push((await send(port, { from: B })).status);
    }
    const [slowloris, slowBody] = await attacks;
    expect(during.every((status) => status === 200)).toBe(true);
    expect(slowloris).not.toMatch(/service available:\s*NO/);
    expect(slowBody).not.toMatch(/service available:\s*NO/);
    // Timed-out requests were answered 408 and their connections closed.
    expect(proxy.stats.clientErrors).toBeGreaterThan(0);
    // Kept: time passing is the point, past the 1 s header and keep-alive timeouts of what the attack left.
    await sleep(1_500);
    expect((await send(port, { from: B })).status).toBe(200);
  });
});
