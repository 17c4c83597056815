import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeProxyV2 } from '../../src/sources/socket/proxy-protocol.js';
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

afterEach(runCleanups);

const fixtures = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

/** Copies the `one` (or `two`) pair into a temporary directory the test may overwrite. */
function certFiles(): { cert: string; key: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(fixtures, 'one-cert.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(fixtures, 'one-key.pem'), join(dir, 'key.pem'));
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), dir };
}

function get(
  port: number,
  from: string,
  path = '/',
): Promise<{ status: number; body: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, localAddress: from, rejectUnauthorized: false, agent: false },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            subject: String((res.socket as TLSSocket).getPeerCertificate().subject?.CN),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('reverse proxy: TLS termination', () => {
  it('terminates TLS, tells the upstream the scheme, and reloads the certificate', async () => {
    const files = certFiles();
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, {
      target: upstream.url,
      tls: { cert: files.cert, key: files.key },
    });
    expect(proxy.addresses[0]!.url).toMatch(/^https:\/\//);
    const port = proxy.addresses[0]!.port;
    const reply = await get(port, A, '/echo');
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)['x-forwarded-proto']).toBe('https');
    expect(reply.subject).toBe('portcullis-test-one');

    copyFileSync(join(fixtures, 'two-cert.pem'), files.cert);
    copyFileSync(join(fixtures, 'two-key.pem'), files.key);
    expect(proxy.reloadTls()).toBe(true);
    expect((await get(port, A)).subject).toBe('portcullis-test-two');

    // A broken pair is refused and the running one kept.
    copyFileSync(join(fixtures, 'one-key.pem'), files.key);
    expect(proxy.reloadTls()).toBe(false);
    expect((await get(port, A)).subject).toBe('portcullis-test-two');
  });

  it('drops a banned client before the handshake', async () => {
    const files = certFiles();
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, tls: files, deny: 'drop' });
    await guard.ban(A);
    const port = proxy.addresses[0]!.port;
    await expect(get(port, A)).rejects.toThrow(/ECONNRESET|socket disconnected|EPIPE/);
    expect((await get(port, B)).status).toBe(200);
    expect(proxy.stats.dropped).toBe(1);
  });

  it('reads a PROXY header sent in the same packet as the TLS ClientHello', async () => {
    const files = certFiles();
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, {
      target: upstream.url,
      tls: files,
      listen: [{ address: '127.0.0.1:0', proxyProtocol: true }],
    });
    const port = proxy.addresses[0]!.port;
    const body = await new Promise<string>((resolve, reject) => {
      const raw = netConnect({ host: '127.0.0.1', port });
      let header: Buffer | undefined = encodeProxyV2('203.0.113.50', 40000, '127.0.0.1', 443);
      // The first TLS record goes out glued to the PROXY header, as load balancers send it.
      const glue = new Duplex({
        write(chunk: Buffer, _encoding, callback) {
          const data = header === undefined ? chunk : Buffer.concat([header, chunk]);
          header = undefined;
          raw.write(data, callback);
        },
        read() {},
        final(callback) {
          raw.end(callback);
        },
      });
      raw.on('data', (chunk) => glue.push(chunk));
      raw.on('end', () => glue.push(null));
      raw.on('error', reject);
      const secure = tlsConnect({ socket: glue, rejectUnauthorized: false }, () => {
        secure.write('GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      let text = '';
      secure.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      secure.on('end', () => {
        raw.destroy();
        resolve(text);
      });
      secure.on('error', reject);
    });
    expect(body).toMatch(/^HTTP\/1\.1 200/);
    expect(body).toContain('"x-forwarded-for":"203.0.113.50"');
    expect(body).toContain('"x-forwarded-proto":"https"');
  });

  it('closes a connection that fails the handshake', async () => {
    const files = certFiles();
    const guard = await startGuard({});
    const upstream = await startUpstream();
    const proxy = await startProxy(guard, { target: upstream.url, tls: files });
    const reply = await rawExchange(proxy.addresses[0]!.port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], {
      from: A,
    });
    expect(reply.end).not.toBe('timeout');
    expect(proxy.stats.tlsErrors).toBe(1);
  });
});
