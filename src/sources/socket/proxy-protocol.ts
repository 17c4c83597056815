import type { Socket } from 'node:net';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import { formatIPv4, normalizeIp } from '../../core/ip.js';

/**
 * PROXY protocol v1 (text) and v2 (binary), as sent by HAProxy, AWS NLB, nginx `proxy_protocol on`
 * and most TCP load balancers: a header opening the connection that names the original client.
 * Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 *
 * A listener that enables it requires the header from *every* peer, as nginx and HAProxy do: a
 * connection that does not open with a valid header in time is closed. Only put such a listener
 * where nothing but the load balancer can reach it (a client that can connect directly can claim
 * any address).
 */

/** A parsed PROXY header. */
export interface ProxyHeader {
  version: 1 | 2;
  /** `local`: the balancer's own connection (a health check): the socket peer is the client. */
  command: 'proxy' | 'local';
  /** `unknown` (v1 `UNKNOWN`, v2 `UNSPEC`) and `unix` carry no usable address. */
  transport: 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix' | 'unknown';
  /** The original client, canonical (`192.0.2.7`, `2001:db8::1`); absent without an IP transport. */
  sourceAddress?: string;
  sourcePort?: number;
  destinationAddress?: string;
  destinationPort?: number;
}

export type ProxyHeaderParse =
  /** More bytes are needed. */
  | { kind: 'incomplete' }
  /** Not a PROXY header (or a malformed one). */
  | { kind: 'invalid'; reason: string }
  /** A header of `length` bytes; what follows belongs to the proxied protocol. */
  | { kind: 'header'; header: ProxyHeader; length: number };

/** v1 headers are at most 107 bytes, CRLF included. */
const V1_MAX = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const INCOMPLETE: ProxyHeaderParse = { kind: 'incomplete' };

/** Parses the header at the start of `data`. Pure; never throws. */
export function parseProxyHeader(data: Buffer): ProxyHeaderParse {
  if (data.length === 0) return INCOMPLETE;
  if (data[0] === 0x50 /* P */) return parseV1(data);
  if (data[0] === 0x0d) return parseV2(data);
  return { kind: 'invalid', reason: 'not a PROXY protocol header' };
}

function startsWithPrefix(data: Buffer, prefix: Buffer): boolean | 'partial' {
  const n = Math.min(data.length, prefix.length);
  for (let i = 0; i < n; i++) if (data[i] !== prefix[i]) return false;
  return n < prefix.length ? 'partial' : true;
}

function parseV1(data: Buffer): ProxyHeaderParse {
  const prefix = startsWithPrefix(data, V1_PREFIX);
  if (prefix === false) return { kind: 'invalid', reason: 'not a PROXY protocol header' };
  if (prefix === 'partial') return INCOMPLETE;
  const end = data.indexOf('\r\n', 0, 'latin1');
  if (end === -1) {
    if (data.length >= V1_MAX) return { kind: 'invalid', reason: 'v1 header longer than 107 bytes' };
    // A byte that cannot appear in a v1 line (binary garbage after "PROXY ") ends it early.
    for (let i = V1_PREFIX.length; i < data.length; i++) {
      const c = data[i] as number;
      if ((c < 0x20 || c > 0x7e) && c !== 0x0d) return { kind: 'invalid', reason: 'v1 header is not text' };
    }
    return INCOMPLETE;
  }
  if (end + 2 > V1_MAX) return { kind: 'invalid', reason: 'v1 header longer than 107 bytes' };
  const line = data.toString('latin1', V1_PREFIX.length, end);
  const parts = line.split(' ');
  const length = end + 2;
  if (parts[0] === 'UNKNOWN') {
    return { kind: 'header', length, header: { version: 1, command: 'proxy', transport: 'unknown' } };
  }
  if (parts.length !== 5 || (parts[0] !== 'TCP4' && parts[0] !== 'TCP6')) {
    return { kind: 'invalid', reason: 'v1 header: expected "TCP4|TCP6 src dst sport dport"' };
  }
  const family = parts[0] === 'TCP4' ? 4 : 6;
  const source = v1Address(parts[1] as string, family);
  const destination = v1Address(parts[2] as string, family);
  const sourcePort = v1Port(parts[3] as string);
  const destinationPort = v1Port(parts[4] as string);
  if (source === null || destination === null || sourcePort < 0 || destinationPort < 0) {
    return { kind: 'invalid', reason: 'v1 header: bad address or port' };
  }
  return {
    kind: 'header',
    length,
    header: {
      version: 1,
      command: 'proxy',
      transport: family === 4 ? 'tcp4' : 'tcp6',
      sourceAddress: source,
      sourcePort,
      destinationAddress: destination,
      destinationPort,
    },
  };
}

function v1Address(text: string, family: 4 | 6): string | null {
  if (family === 6 && text.indexOf(':') === -1) return null;
  if (family === 4 && text.indexOf(':') !== -1) return null;
  return normalizeIp(text);
}

function v1Port(text: string): number {
  if (!/^\d{1,5}$/.test(text) || (text.length > 1 && text[0] === '0')) return -1;
  const port = Number(text);
  return port <= 65_535 ? port : -1;
}

function parseV2(data: Buffer): ProxyHeaderParse {
  const prefix = startsWithPrefix(data, V2_SIGNATURE);
  if (prefix === false) return { kind: 'invalid', reason: 'not a PROXY protocol header' };
  if (prefix === 'partial' || data.length < 16) return INCOMPLETE;
  const versionCommand = data[12] as number;
  if (versionCommand >> 4 !== 2) return { kind: 'invalid', reason: 'v2 header: unsupported version' };
  const command = versionCommand & 0x0f;
  if (command > 1) return { kind: 'invalid', reason: 'v2 header: unknown command' };
  const familyTransport = data[13] as number;
  const bodyLength = data.readUInt16BE(14);
  const length = 16 + bodyLength;
  if (data.length < length) return INCOMPLETE;
  if (command === 0) {
    return { kind: 'header', length, header: { version: 2, command: 'local', transport: 'unknown' } };
  }
  const family = familyTransport >> 4;
  const transport = familyTransport & 0x0f;
  if (family === 0 || transport === 0) {
    return { kind: 'header', length, header: { version: 2, command: 'proxy', transport: 'unknown' } };
  }
  if (transport > 2) return { kind: 'invalid', reason: 'v2 header: unknown transport' };
  if (family === 3) {
    if (bodyLength < 216) return { kind: 'invalid', reason: 'v2 header: address block too short' };
    return { kind: 'header', length, header: { version: 2, command: 'proxy', transport: 'unix' } };
  }
  if (family === 1) {
    if (bodyLength < 12) return { kind: 'invalid', reason: 'v2 header: address block too short' };
    return {
      kind: 'header',
      length,
      header: {
        version: 2,
        command: 'proxy',
        transport: transport === 1 ? 'tcp4' : 'udp4',
        sourceAddress: formatIPv4(data.readUInt32BE(16)),
        destinationAddress: formatIPv4(data.readUInt32BE(20)),
        sourcePort: data.readUInt16BE(24),
        destinationPort: data.readUInt16BE(26),
      },
    };
  }
  if (family === 2) {
    if (bodyLength < 36) return { kind: 'invalid', reason: 'v2 header: address block too short' };
    const source = normalizeIp(ipv6Text(data, 16));
    const destination = normalizeIp(ipv6Text(data, 32));
    if (source === null || destination === null) return { kind: 'invalid', reason: 'v2 header: bad address' };
    return {
      kind: 'header',
      length,
      header: {
        version: 2,
        command: 'proxy',
        transport: transport === 1 ? 'tcp6' : 'udp6',
        sourceAddress: source,
        destinationAddress: destination,
        sourcePort: data.readUInt16BE(48),
        destinationPort: data.readUInt16BE(50),
      },
    };
  }
  return { kind: 'invalid', reason: 'v2 header: unknown address family' };
}

function ipv6Text(data: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(data.readUInt16BE(offset + i * 2).toString(16));
  return groups.join(':');
}

/** Builds a v1 header (for tests and for chaining to an upstream that expects one). */
export function encodeProxyV1(
  source: string,
  sourcePort: number,
  destination: string,
  destinationPort: number,
): Buffer {
  const family = source.indexOf(':') === -1 ? 'TCP4' : 'TCP6';
  return Buffer.from(
    `PROXY ${family} ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`,
    'latin1',
  );
}

/** Builds a v2 PROXY (or LOCAL, when `source` is `null`) header with TCP over IPv4 or IPv6. */
export function encodeProxyV2(
  source: string | null,
  sourcePort = 0,
  destination = '0.0.0.0',
  destinationPort = 0,
): Buffer {
  if (source === null) return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const v6 = source.indexOf(':') !== -1;
  const body = Buffer.alloc(v6 ? 36 : 12);
  if (v6) {
    writeIPv6(body, 0, source);
    writeIPv6(body, 16, destination.indexOf(':') === -1 ? `::ffff:${destination}` : destination);
    body.writeUInt16BE(sourcePort, 32);
    body.writeUInt16BE(destinationPort, 34);
  } else {
    Buffer.from(source.split('.').map(Number)).copy(body, 0);
    Buffer.from(destination.split('.').map(Number)).copy(body, 4);
    body.writeUInt16BE(sourcePort, 8);
    body.writeUInt16BE(destinationPort, 10);
  }
  const head = Buffer.from([0x21, v6 ? 0x21 : 0x11, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

function writeIPv6(target: Buffer, offset: number, text: string): void {
  const [left = '', right] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const head = parse(left);
  const tail = right === undefined ? [] : parse(right);
  const tailGroups: number[] = [];
  for (const group of tail) {
    if (group.indexOf('.') !== -1) {
      const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
      tailGroups.push((a << 8) | b, (c << 8) | d);
    } else tailGroups.push(Number.parseInt(group, 16));
  }
  const groups = [...head.map((g) => Number.parseInt(g, 16))];
  while (groups.length + tailGroups.length < 8) groups.push(0);
  groups.push(...tailGroups);
  for (let i = 0; i < 8; i++) target.writeUInt16BE(groups[i] ?? 0, offset + i * 2);
}

export interface ReadProxyHeaderOptions {
  /** The header must be complete within this many ms of the connection. Default 5000. */
  timeoutMs?: number;
  /**
   * Largest header accepted, bytes (v2 TLVs included). Default 4096; a v1 header is at most 107
   * bytes whatever this says.
   */
  maxBytes?: number;
}

/** What {@link readProxyHeader} hands back: the header, and the bytes read past it. */
export interface ProxyHeaderRead {
  header: ProxyHeader;
  /** Bytes of the proxied protocol that arrived with the header (often a TLS ClientHello). */
  rest: Buffer;
}

/**
 * Reads the PROXY header off a fresh socket, before anything else reads from it. Calls back once:
 * with the header (the socket is then paused, with the bytes after the header in `rest`, not
 * unshifted: the caller decides where they go), or with a `PC_ERR_PROXY_PROTOCOL` error (garbage,
 * too long, too slow, closed early) after which the caller destroys the socket. Reading is
 * bounded by `maxBytes` and `timeoutMs`.
 */
export function readProxyHeader(
  socket: Socket,
  options: ReadProxyHeaderOptions,
  callback: (error: PortcullisError | null, read?: ProxyHeaderRead) => void,
): void {
  const maxBytes = Math.max(V1_MAX, options.maxBytes ?? 4096);
  let buffered: Buffer | undefined;
  let done = false;
  const finish = (error: PortcullisError | null, read?: ProxyHeaderRead) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('error', onError);
    socket.removeListener('close', onEnd);
    socket.pause();
    callback(error, read);
  };
  const fail = (reason: string) =>
    finish(new PortcullisError(ErrorCodes.PROXY_PROTOCOL, `PROXY protocol: ${reason}`));
  const onData = (chunk: Buffer) => {
    buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
    const parsed = parseProxyHeader(buffered);
    if (parsed.kind === 'header') {
      if (parsed.length > maxBytes) return fail(`header of ${parsed.length} bytes is over ${maxBytes}`);
      return finish(null, { header: parsed.header, rest: buffered.subarray(parsed.length) });
    }
    if (parsed.kind === 'invalid') return fail(parsed.reason);
    if (buffered.length >= maxBytes) fail(`no complete header in ${maxBytes} bytes`);
  };
  const onEnd = () => fail('connection closed before the header');
  const onError = (error: Error) =>
    fail(`socket error ${(error as NodeJS.ErrnoException).code ?? error.message}`);
  const timer = setTimeout(
    () => fail(`no header within ${options.timeoutMs ?? 5000} ms`),
    options.timeoutMs ?? 5000,
  );
  timer.unref();
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  socket.on('error', onError);
}
