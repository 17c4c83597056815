import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { normalizeIp, parseIPv4 } from '../../core/ip.js';
import type { Logger } from '../../core/logger.js';
import type { CidrSet } from '../../core/prefix-trie.js';
import type { Guard } from '../../guard.js';
import { originalClientAddress } from '../../sources/http/client-ip.js';
import { readProxyHeader } from '../../sources/http/proxy-protocol.js';
import type { ConnectionLimit } from './connection-limit.js';
import type { ProxyStats } from './stats.js';
import type { TlsCredentials } from './tls-credentials.js';

/** What the proxy knows about one client connection, decided once at accept. */
export interface ConnectionInfo {
  /** The peer: the socket's, or the client a PROXY protocol header named. `null`: unknown. */
  readonly peer: string | null;
  /** The peer is in `trusted_proxies`: its forwarding headers are believed and extended. */
  readonly trusted: boolean;
  /** TLS was terminated here. */
  readonly encrypted: boolean;
}

/** Connection info by the socket HTTP sees (the TLS socket on a TLS listener). */
export const connections = new WeakMap<object, ConnectionInfo>();

export interface GateOptions {
  guard: Guard;
  /** `deny: drop`: a banned peer's socket is reset before anything is read. */
  drop: boolean;
  trusted: CidrSet;
  proxyProtocol: boolean;
  proxyProtocolTimeoutMs: number;
  /** TLS credentials for a TLS listener; `null` for plain HTTP. */
  tls: TlsCredentials | null;
  /** Bound on the TLS handshake, ms. */
  handshakeTimeoutMs: number;
  /**
   * A connection that has sent no request yet is closed after this long without traffic, ms (the
   * proxy then moves it to the idle timeout at its first request).
   */
  firstByteTimeoutMs: number;
  limit: ConnectionLimit | null;
  /** Every raw socket accepted and not yet closed (for `close()`). */
  sockets: Set<Socket>;
  stats: ProxyStats;
  logger: Logger;
}

/** Canonical text of a socket address; dotted quads (the common case) as they are. */
export function canonicalAddress(address: string | undefined): string | null {
  if (address === undefined) return null;
  if (parseIPv4(address) >= 0) return address;
  return normalizeIp(address);
}

/**
 * Puts a gate in front of an HTTP server's connections: the handlers Node registered on
 * `'connection'` (the HTTP parser) are taken off and called only for connections that pass.
 * In order, per connection: track it; read the PROXY header (when the listener takes one); close
 * a banned peer (`deny: drop`) or one over `max_connections_per_ip`; terminate TLS; hand over.
 * Nothing is parsed as HTTP before a connection has passed.
 */
export function installGate(server: Server, options: GateOptions): void {
  const handlers = server.listeners('connection') as ((socket: Duplex) => void)[];
  server.removeAllListeners('connection');
  const { sockets, stats, guard, limit } = options;

  const handOver = (socket: Socket, peer: string | null) => {
    if (options.tls !== null) {
      startTls(server, socket, peer, options, handlers);
      return;
    }
    handToHttp(server, socket, peer, false, options, handlers);
  };

  const admit = (socket: Socket, peer: string | null): boolean => {
    if (options.drop && peer !== null && guard.isBanned(peer)) {
      stats.dropped++;
      dropSocket(socket);
      return false;
    }
    if (limit !== null && peer !== null) {
      if (!limit.acquire(peer)) {
        stats.overConnectionLimit++;
        dropSocket(socket);
        return false;
      }
      socket.once('close', () => limit.release(peer));
    }
    return true;
  };

  server.on('connection', (socket: Socket) => {
    stats.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (!options.proxyProtocol) {
      const peer = canonicalAddress(socket.remoteAddress);
      if (admit(socket, peer)) handOver(socket, peer);
      return;
    }
    // Only a trusted peer may name the client (DESIGN rule 5). With no trusted_proxies at all the
    // listener believes every header, as nginx does; createProxy warns about that at start.
    const tcpPeer = canonicalAddress(socket.remoteAddress);
    if (options.trusted.size > 0 && (tcpPeer === null || !options.trusted.has(tcpPeer))) {
      stats.proxyProtocolErrors++;
      options.logger.debug(
        { event: 'proxy-protocol', peer: socket.remoteAddress },
        'connection closed: PROXY protocol header from a peer not in trusted_proxies',
      );
      socket.destroy();
      return;
    }
    // Until the HTTP parser (or TLS) owns the socket, its errors are ours to swallow.
    socket.on('error', ignore);
    readProxyHeader(socket, { timeoutMs: options.proxyProtocolTimeoutMs }, (error, read) => {
      if (error !== null || read === undefined) {
        stats.proxyProtocolErrors++;
        options.logger.debug(
          { event: 'proxy-protocol', peer: socket.remoteAddress, error: error?.message },
          'connection closed: no valid PROXY protocol header',
        );
        socket.destroy();
        return;
      }
      const { header, rest } = read;
      // LOCAL (a health check) or an address-less transport: the balancer itself is the peer.
      const named = header.command === 'proxy' ? header.sourceAddress : undefined;
      const peer = named ?? canonicalAddress(socket.remoteAddress);
      if (!admit(socket, peer)) return;
      socket.removeListener('error', ignore);
      if (named !== undefined) originalClientAddress.set(socket, named);
      if (options.tls !== null) {
        // TLS over a socket whose handle is read directly would lose `rest`: replay it.
        if (rest.length === 0) {
          startTls(server, socket, peer, options, handlers, named);
        } else {
          startTls(server, new ReplayingSocket(socket, rest), peer, options, handlers, named);
          socket.resume();
        }
        return;
      }
      if (rest.length > 0) socket.unshift(rest);
      handToHttp(server, socket, peer, false, options, handlers);
      socket.resume();
    });
  });
}

/** Records what the gate learned about a connection and gives it to Node's HTTP parser. */
function handToHttp(
  server: Server,
  socket: Socket,
  peer: string | null,
  encrypted: boolean,
  options: GateOptions,
  handlers: readonly ((socket: Duplex) => void)[],
): void {
  connections.set(socket, { peer, trusted: peer !== null && options.trusted.has(peer), encrypted });
  for (const handler of handlers) handler.call(server, socket);
  socket.setTimeout(options.firstByteTimeoutMs);
}

function ignore(): void {}

/** Closes a connection without a byte: a reset for TCP (no TIME_WAIT left here), a close otherwise. */
export function dropSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket instanceof TLSSocket) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy(); // not a TCP handle
  }
}

/**
 * Terminates TLS on `stream` and hands the clear-text socket to HTTP once the handshake is done
 * (within `handshakeTimeoutMs`, else the connection is closed).
 */
function startTls(
  server: Server,
  stream: Socket | Duplex,
  peer: string | null,
  options: GateOptions,
  handlers: ((socket: Duplex) => void)[],
  named?: string,
): void {
  const credentials = options.tls as TlsCredentials;
  stream.on('error', ignore);
  const tlsSocket = new TLSSocket(stream, {
    isServer: true,
    secureContext: credentials.context,
    ALPNProtocols: ['http/1.1'],
    requestCert: false,
    rejectUnauthorized: false,
  });
  // Node's HTTP server reads `socket.server` (for 'clientError'); tls.Server would have set it.
  (tlsSocket as TLSSocket & { server?: Server }).server = server;
  const timer = setTimeout(() => {
    options.stats.tlsErrors++;
    tlsSocket.destroy();
  }, options.handshakeTimeoutMs);
  timer.unref();
  const onError = (error: Error) => {
    clearTimeout(timer);
    options.stats.tlsErrors++;
    options.logger.debug({ event: 'tls-error', peer, error: error.message }, 'TLS handshake failed');
    tlsSocket.destroy();
    stream.destroy();
  };
  tlsSocket.once('error', onError);
  tlsSocket.once('secure', () => {
    clearTimeout(timer);
    tlsSocket.removeListener('error', onError);
    if (named !== undefined) originalClientAddress.set(tlsSocket, named);
    handToHttp(server, tlsSocket, peer, true, options, handlers);
  });
}

/**
 * A duplex over `socket` that first replays `head` (bytes read past a PROXY header), for TLS,
 * which otherwise reads the socket's handle directly and would never see them.
 */
class ReplayingSocket extends Duplex {
  readonly #socket: Socket;

  constructor(socket: Socket, head: Buffer) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.push(head);
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.once('end', () => this.push(null));
    socket.on('error', (error) => this.destroy(error));
    socket.once('close', () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#socket.write(chunk, encoding, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(error);
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.#socket.setTimeout(ms, callback);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.#socket.setKeepAlive(enable, delay);
    return this;
  }
}
