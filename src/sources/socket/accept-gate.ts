import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { normalizeIp, parseIPv4 } from '../../core/ip.js';
import type { Logger } from '../../core/logger.js';
import type { CidrSet } from '../../core/prefix-trie.js';
import type { BanCheck } from '../source.js';
import type { ConnectionLimit } from './connection-limit.js';
import { type ProxyHeader, readProxyHeader } from './proxy-protocol.js';

/** Counters the gate moves (a proxy's or a TCP guard's stats object has these fields). */
export interface AcceptStats {
  /** Connections accepted (before any check). */
  connections: number;
  /** Banned clients' connections closed without a byte. */
  dropped: number;
  /** Connections closed because their address held `max_connections_per_ip` already. */
  overConnectionLimit: number;
  /** Connections closed for a missing or invalid PROXY protocol header. */
  proxyProtocolErrors: number;
}

export interface AcceptGateOptions {
  bans: BanCheck;
  /** A banned peer's socket is reset before anything is read. */
  drop: boolean;
  /** Peers allowed to send a PROXY protocol header (empty: any, as nginx does). */
  trusted: CidrSet;
  /** Every connection must open with a PROXY protocol v1/v2 header. */
  proxyProtocol: boolean;
  proxyProtocolTimeoutMs: number;
  limit: ConnectionLimit | null;
  /** Every raw socket accepted and not yet closed (for `close()`). */
  sockets: Set<Socket>;
  stats: AcceptStats;
  logger: Logger;
}

/** A connection that passed the gate. */
export interface Admitted {
  socket: Socket;
  /** The client: the socket's peer, or the one a PROXY header named. `null`: unknown. */
  peer: string | null;
  /** The address a PROXY header named (`undefined` without one, or for a LOCAL header). */
  named: string | undefined;
  /** Bytes read past the PROXY header, to be replayed before the socket's own data. */
  rest: Buffer;
  /** The PROXY header, when the listener takes one. */
  header: ProxyHeader | undefined;
}

/** Canonical text of a socket address; dotted quads (the common case) as they are. */
export function canonicalAddress(address: string | undefined): string | null {
  if (address === undefined) return null;
  if (parseIPv4(address) >= 0) return address;
  return normalizeIp(address);
}

/**
 * The accept-time checks every TCP listener of portcullis runs, in order: track the socket; read
 * the PROXY header (only from trusted peers, when the listener takes one); close a banned peer
 * (`drop`) or one over `max_connections_per_ip`. `onAdmitted` gets each connection that passes;
 * nothing is read from a connection before it has passed (except the PROXY header).
 */
export function acceptConnection(
  socket: Socket,
  options: AcceptGateOptions,
  onAdmitted: (admitted: Admitted) => void,
): void {
  const { sockets, stats } = options;
  stats.connections++;
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  if (!options.proxyProtocol) {
    const peer = canonicalAddress(socket.remoteAddress);
    if (admit(socket, peer, options)) {
      onAdmitted({ socket, peer, named: undefined, rest: EMPTY, header: undefined });
    }
    return;
  }
  // Only a trusted peer may name the client (DESIGN rule 5). With no trusted_proxies at all the
  // listener believes every header, as nginx does; the listener warns about that at start.
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
  // Until the next owner (HTTP parser, TLS, the pipe) has the socket, its errors are ours to swallow.
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
    const peer = named ?? tcpPeer;
    if (!admit(socket, peer, options)) return;
    socket.removeListener('error', ignore);
    onAdmitted({ socket, peer, named, rest, header });
  });
}

function admit(socket: Socket, peer: string | null, options: AcceptGateOptions): boolean {
  if (options.drop && peer !== null && options.bans.isBanned(peer)) {
    options.stats.dropped++;
    dropSocket(socket);
    return false;
  }
  const limit = options.limit;
  if (limit !== null && peer !== null) {
    if (!limit.acquire(peer)) {
      options.stats.overConnectionLimit++;
      dropSocket(socket);
      return false;
    }
    socket.once('close', () => limit.release(peer));
  }
  return true;
}

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

const EMPTY = Buffer.alloc(0);

function ignore(): void {}
