import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import {
  A,
  B,
  cleanups,
  rawExchange,
  runCleanups,
  startGuard,
  startProxy,
  statusOf,
} from '../helpers/proxy.js';

afterEach(runCleanups);

/** A WebSocket upstream that echoes every message, prefixed, and tells who connected. */
async function startEchoServer(): Promise<{ url: string; forwardedFor: string[]; paths: string[] }> {
  const forwardedFor: string[] = [];
  const paths: string[] = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (socket, req) => {
    forwardedFor.push(String(req.headers['x-forwarded-for']));
    paths.push(req.url ?? '');
    socket.on('message', (data) => socket.send(`echo: ${data.toString()}`));
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, forwardedFor, paths };
}

function connectWs(
  url: string,
  from: string,
): Promise<{ ws: WebSocket } | { status: number } | { error: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { localAddress: from });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

describe('reverse proxy: WebSocket', () => {
  it("proxies an allowed client's WebSocket both ways, with X-Forwarded-For", async () => {
    const guard = await startGuard({});
    const upstream = await startEchoServer();
    const proxy = await startProxy(guard, { target: upstream.url });
    const opened = await connectWs(`ws://127.0.0.1:${proxy.addresses[0]!.port}/chat`, A);
    expect('ws' in opened).toBe(true);
    const ws = (opened as { ws: WebSocket }).ws;
    const replies: string[] = [];
    const twoReplies = new Promise<void>((resolve) =>
      ws.on('message', (data) => {
        replies.push(data.toString());
        if (replies.length === 2) resolve();
      }),
    );
    ws.send('hello');
    ws.send('again');
    await twoReplies;
    expect(replies).toEqual(['echo: hello', 'echo: again']);
    expect(upstream.forwardedFor).toEqual([A]);
    const closed = new Promise((resolve) => ws.once('close', resolve));
    ws.close();
    await closed;
  });

  it("refuses a banned client's upgrade with 403 (deny: 403) and drops it (deny: drop)", async () => {
    const guard = await startGuard({});
    const upstream = await startEchoServer();
    const answering = await startProxy(guard, { target: upstream.url });
    const dropping = await startProxy(guard, { target: upstream.url, deny: 'drop' });
    await guard.ban(A);
    expect(await connectWs(`ws://127.0.0.1:${answering.addresses[0]!.port}/`, A)).toEqual({ status: 403 });
    const dropped = await connectWs(`ws://127.0.0.1:${dropping.addresses[0]!.port}/`, A);
    expect(dropped).toHaveProperty('error');
    expect(upstream.forwardedFor).toEqual([]);
    // B still gets through both.
    const ok = await connectWs(`ws://127.0.0.1:${answering.addresses[0]!.port}/`, B);
    expect('ws' in ok).toBe(true);
    (ok as { ws: WebSocket }).ws.terminate();
  });

  it("refuses a banned client's upgrade with the configured deny status and body", async () => {
    const guard = await startGuard({
      http: { deny: { status: 451, body: 'Banned: ask ops@example.com\n' } },
    });
    const upstream = await startEchoServer();
    const proxy = await startProxy(guard, { target: upstream.url });
    await guard.ban(A);
    const upgrade =
      'GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    const refused = await rawExchange(proxy.addresses[0]!.port, [upgrade], { from: A });
    expect(statusOf(refused.text)).toBe(451);
    expect(refused.text).toMatch(/\r\nContent-Type: text\/plain; charset=utf-8\r\n/i);
    expect(refused.text.endsWith('\r\n\r\nBanned: ask ops@example.com\n')).toBe(true);
    expect(upstream.forwardedFor).toEqual([]);
  });

  it('forwards the path the jails judged: dot segments and encoded characters resolved', async () => {
    const guard = await startGuard({});
    const upstream = await startEchoServer();
    const proxy = await startProxy(guard, { target: upstream.url });
    const opened = await connectWs(`ws://127.0.0.1:${proxy.addresses[0]!.port}/a/../%63hat//./room?x=1`, A);
    expect('ws' in opened).toBe(true);
    (opened as { ws: WebSocket }).ws.terminate();
    expect(upstream.paths).toEqual(['/chat/room?x=1']);
  });

  it('answers 502 to an upgrade whose upstream is down, and closes open WebSockets on close()', async () => {
    const guard = await startGuard({});
    const upstream = await startEchoServer();
    const proxy = await startProxy(guard, { target: upstream.url, shutdownTimeoutMs: 100 });
    const opened = await connectWs(`ws://127.0.0.1:${proxy.addresses[0]!.port}/`, A);
    const ws = (opened as { ws: WebSocket }).ws;
    const closed = new Promise((resolve) => ws.once('close', resolve));
    await proxy.close();
    await closed;

    const deadProxy = await startProxy(guard, { target: 'http://127.0.0.1:1' });
    const reply = await rawExchange(deadProxy.addresses[0]!.port, [
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    ]);
    expect(statusOf(reply.text)).toBe(502);
  });
});
