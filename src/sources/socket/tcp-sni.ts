/**
 * Reads the server name (SNI) a TLS client asks for from its ClientHello, without terminating
 * TLS: the guard peeks at the first bytes, then passes them through untouched. RFC 8446 §4.1.2
 * (ClientHello), RFC 6066 §3 (server_name). The ClientHello may span several TLS records and
 * TCP segments; it is read up to {@link MAX_CLIENT_HELLO} bytes and no further.
 */

/** What {@link parseClientHelloSni} made of the bytes so far. */
export type SniParse =
  /** More bytes are needed. */
  | { kind: 'incomplete' }
  /** Not a TLS handshake (another protocol, or garbage): there is no SNI to read. */
  | { kind: 'not-tls' }
  /** A whole ClientHello (or as much as is read): its server name, if it sent one. */
  | { kind: 'done'; sni: string | undefined };

/** Bytes of TLS records read for a ClientHello at most (a post-quantum hello is about 1.8 KB). */
export const MAX_CLIENT_HELLO = 16_384 + 5;

const INCOMPLETE: SniParse = { kind: 'incomplete' };
const NOT_TLS: SniParse = { kind: 'not-tls' };
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXTENSION_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;

/**
 * Parses the ClientHello at the start of `data`. Pure; never throws. The name is lower-cased
 * (DNS names compare case-insensitively, so a rule cannot be dodged by `ExAmPle.com`) and read
 * as latin1, so odd bytes stay visible to a rule instead of being dropped.
 */
export function parseClientHelloSni(data: Buffer): SniParse {
  if (data.length === 0) return INCOMPLETE;
  if (data[0] !== CONTENT_HANDSHAKE) return NOT_TLS;
  if (data.length >= 2 && data[1] !== 0x03) return NOT_TLS;
  // Gather the handshake bytes from consecutive handshake records.
  const fragments: Buffer[] = [];
  let gathered = 0;
  let offset = 0;
  let needed = -1;
  while (offset + 5 <= data.length) {
    if (data[offset] !== CONTENT_HANDSHAKE || data[offset + 1] !== 0x03) {
      return fragments.length === 0 ? NOT_TLS : done(Buffer.concat(fragments));
    }
    const length = data.readUInt16BE(offset + 3);
    if (length === 0 || length > 16_384 + 2_048) return NOT_TLS;
    const end = offset + 5 + length;
    const available = Math.min(end, data.length);
    fragments.push(data.subarray(offset + 5, available));
    gathered += available - offset - 5;
    if (needed === -1 && gathered >= 4) {
      const head = Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS;
      needed = 4 + ((head[1] as number) << 16) + ((head[2] as number) << 8) + (head[3] as number);
    }
    if (needed !== -1 && gathered >= needed) return done(Buffer.concat(fragments));
    if (available < end) break;
    offset = end;
  }
  // What was read ends mid-hello: wait for more, unless that is all we are willing to read.
  if (data.length >= MAX_CLIENT_HELLO)
    return fragments.length === 0 ? NOT_TLS : done(Buffer.concat(fragments));
  return INCOMPLETE;
}

/** The server name in a ClientHello handshake message (possibly cut short). */
function done(hello: Buffer): SniParse {
  return { kind: 'done', sni: serverName(hello) };
}

function serverName(hello: Buffer): string | undefined {
  if (hello[0] !== HANDSHAKE_CLIENT_HELLO) return undefined;
  // type(1) length(3) version(2) random(32)
  let at = 4 + 2 + 32;
  if (at + 1 > hello.length) return undefined;
  at += 1 + (hello[at] as number); // session id
  if (at + 2 > hello.length) return undefined;
  at += 2 + hello.readUInt16BE(at); // cipher suites
  if (at + 1 > hello.length) return undefined;
  at += 1 + (hello[at] as number); // compression methods
  if (at + 2 > hello.length) return undefined;
  const extensionsEnd = Math.min(hello.length, at + 2 + hello.readUInt16BE(at));
  at += 2;
  while (at + 4 <= extensionsEnd) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    const body = at + 4;
    if (type === EXTENSION_SERVER_NAME) return hostName(hello, body, Math.min(body + length, extensionsEnd));
    at = body + length;
  }
  return undefined;
}

function hostName(hello: Buffer, start: number, end: number): string | undefined {
  if (start + 2 > end) return undefined;
  const listEnd = Math.min(end, start + 2 + hello.readUInt16BE(start));
  let at = start + 2;
  while (at + 3 <= listEnd) {
    const type = hello[at] as number;
    const length = hello.readUInt16BE(at + 1);
    const name = at + 3;
    if (name + length > listEnd) return undefined;
    if (type === NAME_TYPE_HOST && length > 0)
      return hello.toString('latin1', name, name + length).toLowerCase();
    at = name + length;
  }
  return undefined;
}
