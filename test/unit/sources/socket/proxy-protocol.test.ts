import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeProxyV1,
  encodeProxyV2,
  parseProxyHeader,
  readProxyHeader,
} from '../../../../src/sources/socket/proxy-protocol.js';

const request = Buffer.from('GET / HTTP/1.1\r\n\r\n');

describe('PROXY protocol v1', () => {
  it('parses TCP4 and TCP6 headers and says where the payload starts', () => {
    const data = Buffer.concat([Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n'), request]);
    expect(parseProxyHeader(data)).toEqual({
      kind: 'header',
      length: 45,
      header: {
        version: 1,
        command: 'proxy',
        transport: 'tcp4',
        sourceAddress: '192.0.2.1',
        sourcePort: 56324,
        destinationAddress: '198.51.100.2',
        destinationPort: 443,
      },
    });
    const v6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:DB8::1 ::1 1 2\r\n'));
    expect(v6).toMatchObject({ kind: 'header', header: { transport: 'tcp6', sourceAddress: '2001:db8::1' } });
  });

  it("accepts UNKNOWN (the balancer's own connection) without an address", () => {
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toMatchObject({
      kind: 'header',
      length: 15,
      header: { transport: 'unknown' },
    });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'))).toMatchObject({
      kind: 'header',
    });
  });

  it('waits for more bytes of an unfinished header', () => {
    for (const text of ['P', 'PROX', 'PROXY ', 'PROXY TCP4 192.0.2.1 198.51']) {
      expect(parseProxyHeader(Buffer.from(text))).toEqual({ kind: 'incomplete' });
    }
  });

  it.each([
    ['plain HTTP', 'GET / HTTP/1.1\r\n'],
    ['a lower-case keyword', 'proxy TCP4 1.2.3.4 1.2.3.5 1 2\r\n'],
    ['a bad family', 'PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n'],
    ['a bad address', 'PROXY TCP4 1.2.3.400 1.2.3.5 1 2\r\n'],
    ['an IPv6 address in TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
    ['a port out of range', 'PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n'],
    ['a port with a leading zero', 'PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n'],
    ['missing fields', 'PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n'],
    ['binary after the keyword', 'PROXY \x00\x01\x02'],
    ['no end within 107 bytes', `PROXY TCP4 ${'1'.repeat(120)}`],
  ])('refuses %s', (_name, text) => {
    expect(parseProxyHeader(Buffer.from(text, 'latin1')).kind).toBe('invalid');
  });
});

describe('PROXY protocol v2', () => {
  it('parses IPv4 and IPv6 PROXY headers, skipping TLVs', () => {
    const v4 = encodeProxyV2('192.0.2.1', 56324, '198.51.100.2', 443);
    expect(parseProxyHeader(Buffer.concat([v4, request]))).toEqual({
      kind: 'header',
      length: 28,
      header: {
        version: 2,
        command: 'proxy',
        transport: 'tcp4',
        sourceAddress: '192.0.2.1',
        sourcePort: 56324,
        destinationAddress: '198.51.100.2',
        destinationPort: 443,
      },
    });
    const v6 = encodeProxyV2('2001:db8::7', 1, '2001:db8::1', 2);
    expect(parseProxyHeader(v6)).toMatchObject({
      header: { transport: 'tcp6', sourceAddress: '2001:db8::7' },
    });
    // An IPv4-mapped source is the IPv4 client.
    const mapped = encodeProxyV2('::ffff:192.0.2.9', 1, '::1', 2);
    expect(parseProxyHeader(mapped)).toMatchObject({ header: { sourceAddress: '192.0.2.9' } });

    const withTlv = Buffer.from(v4);
    withTlv.writeUInt16BE(12 + 7, 14);
    const tlv = Buffer.from([0x04, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64]);
    expect(parseProxyHeader(Buffer.concat([withTlv, tlv, request]))).toMatchObject({
      kind: 'header',
      length: 35,
    });
  });

  it('parses LOCAL, UNSPEC and unix headers as carrying no client', () => {
    expect(parseProxyHeader(encodeProxyV2(null))).toEqual({
      kind: 'header',
      length: 16,
      header: { version: 2, command: 'local', transport: 'unknown' },
    });
    const unix = Buffer.concat([
      encodeProxyV2(null).subarray(0, 12),
      Buffer.from([0x21, 0x31, 0, 216]),
      Buffer.alloc(216),
    ]);
    expect(parseProxyHeader(unix)).toMatchObject({ kind: 'header', header: { transport: 'unix' } });
  });

  it('waits for the whole address block', () => {
    const v4 = encodeProxyV2('192.0.2.1', 1, '192.0.2.2', 2);
    for (const n of [1, 12, 15, 16, 27])
      expect(parseProxyHeader(v4.subarray(0, n))).toEqual({ kind: 'incomplete' });
  });

  it('refuses a wrong version, command, family or a short address block', () => {
    const v4 = encodeProxyV2('192.0.2.1', 1, '192.0.2.2', 2);
    const patch = (offset: number, value: number) => {
      const copy = Buffer.from(v4);
      copy[offset] = value;
      return copy;
    };
    expect(parseProxyHeader(patch(12, 0x31)).kind).toBe('invalid');
    expect(parseProxyHeader(patch(12, 0x22)).kind).toBe('invalid');
    expect(parseProxyHeader(patch(13, 0x41)).kind).toBe('invalid');
    expect(parseProxyHeader(patch(15, 4)).kind).toBe('invalid');
    expect(parseProxyHeader(patch(3, 0x0b)).kind).toBe('invalid');
  });

  it('round-trips v1 encoding', () => {
    expect(parseProxyHeader(encodeProxyV1('2001:db8::5', 9, '2001:db8::6', 10))).toMatchObject({
      header: { sourceAddress: '2001:db8::5', sourcePort: 9, destinationPort: 10 },
    });
  });
});

describe('readProxyHeader', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  async function serve(onSocket: (socket: Socket) => void): Promise<number> {
    const server = createServer(onSocket);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return (server.address() as AddressInfo).port;
  }

  it('hands back the header and the bytes after it, across several packets', async () => {
    const result = new Promise<{ source?: string; rest: string }>((resolve, reject) => {
      void serve((socket) =>
        readProxyHeader(socket, { timeoutMs: 2_000 }, (error, read) => {
          socket.destroy();
          if (error !== null) reject(error);
          else resolve({ source: read?.header.sourceAddress, rest: read?.rest.toString() ?? '' });
        }),
      ).then((port) => {
        const client = connect(port, '127.0.0.1', () => {
          client.write('PROXY TCP4 192.0.2.');
          // Kept: the pause is the subject, so the header arrives in two packets.
          setTimeout(() => client.end('7 192.0.2.8 1 2\r\nGET /'), 30);
        });
        client.on('error', () => {});
      });
    });
    expect(await result).toEqual({ source: '192.0.2.7', rest: 'GET /' });
  });

  it('fails on garbage, on a header larger than maxBytes and after the timeout', async () => {
    const outcome = (write: (client: Socket) => void, options = {}) =>
      new Promise<string>((resolve) => {
        void serve((socket) =>
          readProxyHeader(socket, { timeoutMs: 200, ...options }, (error) => {
            socket.destroy();
            resolve(error?.code ?? 'ok');
          }),
        ).then((port) => {
          const client = connect(port, '127.0.0.1', () => write(client));
          client.on('error', () => {});
        });
      });
    expect(await outcome((c) => c.write('\x16\x03\x01garbage'))).toBe('PC_ERR_PROXY_PROTOCOL');
    const big = Buffer.from(encodeProxyV2('192.0.2.1', 1, '192.0.2.2', 2));
    big.writeUInt16BE(60_000, 14);
    expect(await outcome((c) => c.write(Buffer.concat([big, Buffer.alloc(1000)])), { maxBytes: 512 })).toBe(
      'PC_ERR_PROXY_PROTOCOL',
    );
    expect(await outcome(() => {})).toBe('PC_ERR_PROXY_PROTOCOL');
    expect(await outcome((c) => c.end('PROXY TCP4'))).toBe('PC_ERR_PROXY_PROTOCOL');
  });
});
