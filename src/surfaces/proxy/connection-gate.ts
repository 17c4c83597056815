import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { CidrSet } from '../../core/prefix-trie.js';
import { originalClientAddress } from '../../sources/http/client-ip.js';
import { type AcceptGateOptions, acceptConnection } from '../../sources/socket/accept-gate.js';
import { ReplayingSocket } from '../../sources/socket/replaying-socket.js';
import type { ProxyStats } from './stats.js';
import type { TlsCredentials } from './tls-credentials.js';

export { canonicalAddress, dropSocket } from '../../sources/socket/accept-gate.js';

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

export interface GateOptions extends AcceptGateOptions {
  trusted: CidrSet;
  /** TLS credentials for a TLS listener; `null` for plain HTTP. */
  tls: TlsCredentials | null;
  /** Bound on the TLS handshake, ms. */
  handshakeTimeoutMs: number;
  /**
   * A connection that has sent no request yet is closed after this long without traffic, ms (the
   * proxy then moves it to the idle timeout at its first request).
   */
  firstByteTimeoutMs: number;
  stats: ProxyStats;
  /** Told of each connection handed to HTTP, with what the gate learnt. */
  onConnection?: (socket: Socket, info: ConnectionInfo) => void;
  /** Told of the first bytes of each connection, before HTTP parses them. */
  onFirstBytes?: (socket: Socket, chunk: Buffer) => void;
}

/**
 * Puts a gate in front of an HTTP server's connections: the handlers Node registered on
 * `'connection'` (the HTTP parser) are taken off and called only for connections that pass the
 * accept-time checks shared with every TCP listener ({@link acceptConnection}: PROXY header,
 * ban, connection cap); then TLS is terminated and the socket handed over. Nothing is parsed as
 * HTTP before a connection has passed.
 */
export function installGate(server: Server, options: GateOptions): void {
  const handlers = server.listeners('connection') as ((socket: Duplex) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    acceptConnection(socket, options, ({ peer, named, rest, header }) => {
      if (named !== undefined) originalClientAddress.set(socket, named);
      if (options.tls !== null) {
        // TLS over a socket whose handle is read directly would lose `rest`: replay it.
        if (rest.length === 0) startTls(server, socket, peer, options, handlers, named);
        else {
          startTls(server, new ReplayingSocket(socket, rest), peer, options, handlers, named);
          socket.resume();
        }
        return;
      }
      if (rest.length > 0) socket.unshift(rest);
      handToHttp(server, socket, peer, false, options, handlers);
      if (header !== undefined) socket.resume();
    });
  });
}

/**
 * Records what the gate learned about a connection and gives it to Node's HTTP parser once its
 * first bytes arrive (they are kept for the log line of a request that never completes). A
 * connection that sends nothing within `firstByteTimeoutMs` is closed without a word: a browser's
 * preconnected socket is no attack, and nothing is logged for it (as nginx does).
 */
function handToHttp(
  server: Server,
  socket: Socket,
  peer: string | null,
  encrypted: boolean,
  options: GateOptions,
  handlers: readonly ((socket: Duplex) => void)[],
): void {
  const info = { peer, trusted: peer !== null && options.trusted.has(peer), encrypted };
  connections.set(socket, info);
  options.onConnection?.(socket, info);
  socket.setTimeout(options.firstByteTimeoutMs);
  const silent = () => socket.destroy();
  socket.once('timeout', silent);
  socket.on('error', silent);
  socket.once('data', (chunk: Buffer) => {
    socket.pause();
    socket.removeListener('timeout', silent);
    socket.removeListener('error', silent);
    options.onFirstBytes?.(socket, chunk);
    socket.unshift(chunk);
    for (const handler of handlers) handler.call(server, socket);
    // The request head must now come within this (the server's 'timeout' handler answers 408).
    socket.setTimeout(options.firstByteTimeoutMs);
    socket.resume();
  });
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

function ignore(): void {}
