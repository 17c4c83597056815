import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ConnectionEnd } from '../../detection/filters/fields/socket-fields.js';
import { type Admitted, canonicalAddress } from './accept-gate.js';
import { encodeProxyV1, encodeProxyV2, type ProxyHeader } from './proxy-protocol.js';
import type { TcpEvent } from './tcp-jails.js';

/** What a connection tells its listener. */
export interface TcpConnectionHooks {
  /** 0: never. */
  idleTimeoutMs: number;
  /** Both sockets are closed: the connection is over (called once). */
  onClosed(connection: TcpConnection): void;
  onUpstreamError(): void;
  onTimeout(): void;
}

/**
 * One guarded connection: the client socket, and once the guard lets it through, the upstream
 * socket, piped both ways. It records how it ended (the first of: the client's FIN, the upstream's
 * FIN, a client error, the idle timeout, an upstream failure, a refusal) and calls `onClosed` once
 * both sockets are released — never before, so no socket outlives its connection's bookkeeping.
 */
export class TcpConnection {
  readonly client: Socket;
  /** The client, canonical. */
  readonly peer: string;
  readonly listener: string;
  /** The PROXY header the client's load balancer sent, if any. */
  readonly header: ProxyHeader | undefined;
  /** The port the client connected to (the balancer's, when a PROXY header names it). */
  readonly dport: number;
  upstream: Socket | null = null;
  /** How it ended, once known. */
  end: ConnectionEnd | undefined;
  /** The TLS server name (with `sni: true`). */
  sni: string | undefined;
  readonly #hooks: TcpConnectionHooks;
  readonly #startedAt = performance.now();
  readonly #headerBytes: number;
  #clientClosed = false;
  /** True while there is no upstream socket, or once it is closed. */
  #upstreamClosed = true;
  #connected = false;
  #finished = false;

  constructor(client: Socket, peer: string, admitted: Admitted, listener: string, hooks: TcpConnectionHooks) {
    this.client = client;
    this.peer = peer;
    this.listener = listener;
    this.header = admitted.header;
    this.dport = admitted.header?.destinationPort ?? client.localPort ?? 0;
    this.#hooks = hooks;
    // The PROXY header is the balancer's, not the client's: bytes_in starts after it.
    this.#headerBytes = admitted.header === undefined ? 0 : client.bytesRead - admitted.rest.length;
    client.setNoDelay(true);
    client.on('error', () => {
      this.end ??= 'reset';
      this.upstream?.destroy();
    });
    client.once('end', () => {
      this.end ??= 'client-close';
    });
    client.once('close', (hadError) => {
      this.#clientClosed = true;
      const upstream = this.upstream;
      if (upstream !== null && !upstream.destroyed) {
        // A clean close means both FINs went by: the upstream finishes writing on its own, but
        // only for a bounded time (an upstream that stops reading must not keep its socket).
        if (hadError || !this.#connected) upstream.destroy();
        else upstream.setTimeout(LINGER_MS, () => upstream.destroy());
      }
      this.#done();
    });
    if (hooks.idleTimeoutMs > 0) {
      client.setTimeout(hooks.idleTimeoutMs, () => {
        this.end ??= 'timeout';
        hooks.onTimeout();
        this.destroy();
      });
    }
  }

  /** Bytes the client sent (PROXY header excluded). */
  get bytesIn(): number {
    return Math.max(0, this.client.bytesRead - this.#headerBytes);
  }

  /** Bytes sent to the client. */
  get bytesOut(): number {
    return this.client.bytesWritten;
  }

  /** ms since accept. */
  get durationMs(): number {
    return performance.now() - this.#startedAt;
  }

  /**
   * Connects the two sides: `upstream` (connecting) gets `header` (a PROXY header, or `null`) and
   * `head` (client bytes already read) first, then both sockets are piped into each other, with
   * the streams' backpressure and half-close.
   */
  forward(upstream: Socket, header: Buffer | null, head: Buffer, connectTimeoutMs: number): void {
    const client = this.client;
    this.upstream = upstream;
    this.#upstreamClosed = false;
    upstream.setTimeout(connectTimeoutMs, () => {
      if (!this.#connected) upstream.destroy(new Error(`connect timeout after ${connectTimeoutMs} ms`));
    });
    upstream.once('connect', () => {
      this.#connected = true;
      upstream.setTimeout(0);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      if (header !== null) upstream.write(header);
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.once('end', () => {
      this.end ??= 'upstream-close';
    });
    upstream.on('error', () => {
      this.end ??= 'upstream-error';
      this.#hooks.onUpstreamError();
      client.destroy();
    });
    upstream.once('close', (hadError) => {
      this.#upstreamClosed = true;
      if (hadError || !this.#connected) client.destroy();
      this.#done();
    });
  }

  /** Closes both sockets now. */
  destroy(): void {
    this.client.destroy();
    this.upstream?.destroy();
  }

  /** The `open` or `close` event of this connection, for the jails. */
  event(kind: 'open' | 'close', concurrent: number): TcpEvent {
    if (kind === 'open') {
      return {
        event: 'open',
        ip: this.peer,
        listener: this.listener,
        dport: this.dport,
        concurrent,
        sni: this.sni,
      };
    }
    const bytesIn = this.bytesIn;
    return {
      event: 'close',
      ip: this.peer,
      listener: this.listener,
      dport: this.dport,
      concurrent,
      sni: this.sni,
      durationMs: this.durationMs,
      bytesIn,
      bytesOut: this.bytesOut,
      noData: bytesIn === 0,
      end: this.end ?? 'client-close',
    };
  }

  #done(): void {
    if (this.#finished || !this.#clientClosed || !this.#upstreamClosed) return;
    this.#finished = true;
    this.#hooks.onClosed(this);
  }
}

/** After a clean client close, how long the upstream may take to finish writing. */
const LINGER_MS = 30_000;

/**
 * The PROXY header announcing `connection`'s client to the upstream: the client's address and
 * port, and the address and port it connected to (as the client's own balancer named them, when
 * it sent a header). Mixed families (an IPv6 client named to an IPv4 listener) are written as
 * IPv6, the IPv4 side mapped (`::ffff:192.0.2.7`).
 */
export function upstreamProxyHeader(connection: TcpConnection, version: 1 | 2): Buffer {
  const client = connection.client;
  const header = connection.header?.command === 'proxy' ? connection.header : undefined;
  let source = connection.peer;
  const sourcePort = header?.sourcePort ?? client.remotePort ?? 0;
  let destination = header?.destinationAddress ?? canonicalAddress(client.localAddress) ?? '0.0.0.0';
  const destinationPort = header?.destinationPort ?? client.localPort ?? 0;
  const v6 = (address: string) => address.indexOf(':') !== -1;
  if (v6(source) !== v6(destination)) {
    if (!v6(source)) source = `::ffff:${source}`;
    if (!v6(destination)) destination = `::ffff:${destination}`;
  }
  return version === 1
    ? encodeProxyV1(source, sourcePort, destination, destinationPort)
    : encodeProxyV2(source, sourcePort, destination, destinationPort);
}
