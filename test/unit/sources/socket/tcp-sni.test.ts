import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_HELLO, parseClientHelloSni } from '../../../../src/sources/socket/tcp-sni.js';

/** The first bytes Node's TLS client sends (its ClientHello), captured by a plain TCP server. */
async function clientHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const captured = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      let data = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const parsed = parseClientHelloSni(data);
        if (parsed.kind !== 'incomplete' || data.length > 20_000) {
          resolve(data);
          socket.destroy();
        }
      });
    });
  });
  const client = connect({
    port,
    host: '127.0.0.1',
    ...(servername === undefined ? {} : { servername }),
    rejectUnauthorized: false,
  });
  client.on('error', () => {});
  const hello = await captured;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return hello;
}

/** The handshake message of a single-record hello, re-framed as two TLS records. */
function splitIntoTwoRecords(hello: Buffer, at: number): Buffer {
  const body = hello.subarray(5);
  const record = (part: Buffer) => {
    const head = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    return Buffer.concat([head, part]);
  };
  return Buffer.concat([record(body.subarray(0, at)), record(body.subarray(at))]);
}

describe('ClientHello server name', () => {
  it('reads the name a real TLS client sends, lower-cased, once the whole hello is in', async () => {
    const hello = await clientHello('Mail.Example.COM');
    expect(parseClientHelloSni(hello)).toEqual({ kind: 'done', sni: 'mail.example.com' });
    // Every shorter prefix (a hello cut across TCP segments) asks for more, and never throws.
    for (let n = 1; n < hello.length; n++) {
      expect(parseClientHelloSni(hello.subarray(0, n)).kind).toBe('incomplete');
    }
    // Bytes after the hello (early data, the next record) change nothing.
    expect(parseClientHelloSni(Buffer.concat([hello, randomBytes(64)]))).toEqual({
      kind: 'done',
      sni: 'mail.example.com',
    });
  });

  it('a hello without a server name is read to its end: no SNI', async () => {
    const hello = await clientHello(undefined); // connecting to an IP address sends none
    expect(parseClientHelloSni(hello)).toEqual({ kind: 'done', sni: undefined });
  });

  it('a hello split over two TLS records, at any point', async () => {
    const hello = await clientHello('split.example');
    for (const at of [1, 3, 4, 40, 100, hello.length - 10]) {
      expect(parseClientHelloSni(splitIntoTwoRecords(hello, at))).toEqual({
        kind: 'done',
        sni: 'split.example',
      });
    }
  });

  it('other protocols are not TLS at once: SSH, SMTP, HTTP, a TLS alert', () => {
    for (const text of [
      'SSH-2.0-OpenSSH_9.6\r\n',
      'EHLO x\r\n',
      'GET / HTTP/1.1\r\n',
      '\u0015\u0003\u0003\u0000\u0002',
    ]) {
      expect(parseClientHelloSni(Buffer.from(text, 'latin1')).kind).toBe('not-tls');
    }
    expect(parseClientHelloSni(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0])).kind).toBe(
      'not-tls',
    );
    expect(parseClientHelloSni(Buffer.alloc(0)).kind).toBe('incomplete');
  });

  it('garbage and lying lengths never throw, and reading stops at MAX_CLIENT_HELLO bytes', async () => {
    const hello = await clientHello('fuzz.example');
    for (let i = 0; i < 2_000; i++) {
      const mutated = Buffer.from(hello);
      for (let j = 0; j < 4; j++)
        mutated[5 + Math.floor(Math.random() * (mutated.length - 5))] = Math.floor(Math.random() * 256);
      expect(() => parseClientHelloSni(mutated)).not.toThrow();
      expect(() =>
        parseClientHelloSni(Buffer.concat([Buffer.from([0x16, 0x03]), randomBytes(i % 300)])),
      ).not.toThrow();
    }
    // A record claiming 16 KiB that never completes: undecided until the cap, then given up.
    const endless = Buffer.concat([
      Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc]),
      Buffer.alloc(100),
    ]);
    expect(parseClientHelloSni(endless).kind).toBe('incomplete');
    const capped = Buffer.concat([endless, Buffer.alloc(MAX_CLIENT_HELLO)]);
    expect(parseClientHelloSni(capped).kind).not.toBe('incomplete');
  });
});
