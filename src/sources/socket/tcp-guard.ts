import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { TcpListenerConfig } from '../../config/tcp.js';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import { CidrSet } from '../../core/prefix-trie.js';
import type { Decision } from '../../core/types.js';
import type { ConnectionEnd } from '../../detection/filters/fields/socket-fields.js';
import type { SourceFactory } from '../registry.js';
import type { Source, SourceContext, SourceStats } from '../source.js';
import {
  type AcceptStats,
  type Admitted,
  acceptConnection,
  canonicalAddress,
  dropSocket,
} from './accept-gate.js';
import { TcpConnection, upstreamProxyHeader } from './tcp-connection.js';
import { type TcpJailStats, TcpJails } from './tcp-jails.js';
import { MAX_CLIENT_HELLO, parseClientHelloSni } from './tcp-sni.js';

/** The TCP guard listeners of the configuration (`tcp:`), one source each (`tcp:NAME`). */
export function tcpSources(): SourceFactory {
  return {
    kind: 'tcp',
    create(context: SourceContext): Source[] {
      return (context.config.tcp ?? []).map((listener) => new TcpGuard(context, listener.name));
    },
  };
}

/** A TCP guard's counters. Bytes count closed connections only. */
export interface TcpGuardStats extends TcpJailStats {
  /** Connections the listener accepted (before any check). */
  accepted: number;
  /** Connections open now (client side). */
  active: number;
  /** Closed at accept because the client is banned (also: banned by its own `open` event). */
  refusedBanned: number;
  /** Closed at accept: over `max_connections` or `max_connections_per_ip`. */
  refusedLimit: number;
  /** Live connections closed because their client was banned while connected. */
  closedOnBan: number;
  /** Closed for a missing, invalid or untrusted PROXY protocol header. */
  proxyProtocolErrors: number;
  /**
   * Reset by the client before the guard could read its address (a connect scan's probe, such
   * as `nmap -sT`, resets within microseconds): not judged, since nobody can be named.
   */
  unknownPeers: number;
  /** The upstream could not be reached (refused, timed out) or failed mid-way. */
  upstreamErrors: number;
  /** Closed by `idle_timeout`. */
  timeouts: number;
  /** Bytes received from clients (PROXY headers not counted). */
  bytesIn: number;
  /** Bytes sent to clients. */
  bytesOut: number;
}

/** A decision feed (the Guard's `subscribe`), when the context offers one. */
interface DecisionFeed {
  subscribe(listener: { ban?(decision: Decision): void }): () => void;
}

/** Without a decision feed, connected clients are checked this often for a ban. */
const BAN_POLL_MS = 50;

/**
 * One `tcp:` listener: a TCP forwarder in front of a service (SSH, SMTP, IMAP, a database) that
 * judges its connections with socket jails. A connection's journey:
 *
 * 1. accept — the gate tracks the socket and, on a `proxy_protocol` listener, reads the PROXY
 *    header (only from `trusted_proxies`), which names the client;
 * 2. refuse — a banned client, or one over `max_connections_per_ip` / `max_connections`, is
 *    closed (`deny: reset` or `drop`) before a byte is read from it or sent to the upstream;
 * 3. peek — with `sni: true`, its TLS ClientHello is read (not answered) for the server name;
 * 4. open — the `open` event goes to the jails, synchronously: when it bans (a connection flood's
 *    30th connection), this connection is refused too, and the ban closes the client's others;
 * 5. forward — only now is the upstream connected (with a PROXY header naming the client, when
 *    `proxy_protocol_upstream` says so); bytes flow both ways through stream pipes, so a slow
 *    reader on either side holds the other back (no unbounded buffering); a half-close is passed
 *    on (`allowHalfOpen`); `idle_timeout` closes a connection where nothing moves;
 * 6. close — once both sockets are closed, the `close` event (duration, bytes, how it ended)
 *    goes to the jails.
 */
export class TcpGuard implements Source {
  readonly kind = 'tcp';
  readonly name: string;
  /** The listener's name under `tcp:`. */
  readonly listener: string;
  readonly #context: SourceContext;
  #config: TcpListenerConfig;
  readonly #settings: string;
  #server: Server | undefined;
  /** Raw client sockets not yet closed (the gate adds and removes them). */
  readonly #sockets = new Set<Socket>();
  /** Connections admitted and not yet over, by client address. */
  readonly #byClient = new Map<string, Set<TcpConnection>>();
  readonly #connections = new Set<TcpConnection>();
  readonly #accept: AcceptStats = {
    connections: 0,
    dropped: 0,
    overConnectionLimit: 0,
    proxyProtocolErrors: 0,
  };
  readonly #stats = {
    unknownPeers: 0,
    refusedBanned: 0,
    refusedLimit: 0,
    closedOnBan: 0,
    upstreamErrors: 0,
    timeouts: 0,
    bytesIn: 0,
    bytesOut: 0,
    events: 0,
    failures: 0,
    errors: 0,
  };
  readonly #trusted: CidrSet;
  readonly #jails: TcpJails;
  #stopWatchingBans: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  /** @param listener a name under the config's `tcp:` (throws when there is none). */
  constructor(context: SourceContext, listener: string) {
    const config = context.config.tcp?.find((entry) => entry.name === listener);
    if (config === undefined) throw new TypeError(`no tcp: listener named ${JSON.stringify(listener)}`);
    this.#context = context;
    this.#config = config;
    this.#settings = JSON.stringify(config);
    this.listener = listener;
    this.name = `tcp:${listener}`;
    this.#trusted = new CidrSet(config.trustedProxies);
    this.#jails = new TcpJails(context, listener, this.#stats);
  }

  /** The bound address (its port, when `listen` asked for port 0); `null` before `start()`. */
  get address(): AddressInfo | null {
    const address = this.#server?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  async start(): Promise<void> {
    const config = this.#config;
    const server = createServer({ allowHalfOpen: true }, (socket) => this.#onConnection(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          new PortcullisError(
            ErrorCodes.PROXY_LISTEN,
            `tcp.${this.listener}: cannot listen on ${config.listen}: ${error.code ?? error.message}`,
            { cause: error },
          ),
        );
      };
      server.once('error', onError);
      server.listen({ host: config.host, port: config.port, ipv6Only: config.ipv6Only }, () => {
        server.removeListener('error', onError);
        resolve();
      });
    });
    server.on('error', (error) => this.#context.reportError(error));
    this.#watchBans();
    const logger = this.#context.logger;
    if (config.proxyProtocol && config.trustedProxies.length === 0) {
      logger.warn(
        { event: 'config-warning', source: this.name },
        `tcp.${this.listener}: a PROXY protocol listener with no trusted_proxies believes any peer: set trusted_proxies to the load balancer`,
      );
    }
    if (!this.#jails.active) {
      logger.warn(
        { event: 'source-idle', source: this.name },
        `tcp.${this.listener}: no jail has source: { socket: ${this.listener} }; connections are forwarded, and only bans made elsewhere are enforced`,
      );
    }
    const bound = this.address;
    logger.info(
      { event: 'tcp-listening', source: this.name, address: bound, target: config.target },
      `tcp guard ${this.listener} listening on ${bound === null ? config.listen : formatAddress(bound)} -> ${config.target}`,
    );
  }

  /** Adopts a reload in place when this listener's settings are unchanged (jails are re-read). */
  async reload(): Promise<boolean> {
    if (this.#closing !== undefined || this.#server === undefined) return false;
    const next = this.#context.config.tcp?.find((entry) => entry.name === this.listener);
    return next !== undefined && JSON.stringify(next) === this.#settings;
  }

  stats(): SourceStats & TcpGuardStats {
    return {
      accepted: this.#accept.connections,
      active: this.#connections.size,
      proxyProtocolErrors: this.#accept.proxyProtocolErrors,
      ...this.#stats,
    };
  }

  /**
   * Stops listening, closes every connection (a TCP service has no request boundary to wait
   * for), lets the reports already made settle, and resolves once every socket is released.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#stopWatchingBans?.();
    this.#stopWatchingBans = undefined;
    const server = this.#server;
    const listening = server?.listening === true;
    const closed = new Promise<void>((resolve) => {
      if (!listening) resolve();
      else server?.close(() => resolve());
    });
    const drained = new Promise<void>((resolve) => {
      if (this.#connections.size === 0) resolve();
      else this.#drained = resolve;
    });
    for (const socket of this.#sockets) socket.destroy();
    for (const connection of this.#connections) connection.destroy();
    await Promise.all([closed, drained]);
    await this.#jails.drain();
  }

  #onConnection(socket: Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    const config = this.#config;
    acceptConnection(
      socket,
      {
        bans: this.#context,
        // The guard refuses banned clients itself (after the header), with its own `deny`.
        drop: false,
        trusted: this.#trusted,
        proxyProtocol: config.proxyProtocol,
        proxyProtocolTimeoutMs: config.proxyProtocolTimeoutMs,
        limit: null,
        sockets: this.#sockets,
        stats: this.#accept,
        logger: this.#context.logger,
      },
      (admitted) => this.#admit(admitted),
    );
  }

  /** Step 2: refuse a banned client, or one over a limit; else track the connection. */
  #admit(admitted: Admitted): void {
    const { socket, peer } = admitted;
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    if (peer === null) {
      // The kernel no longer knows who it was: reset before accept.
      this.#stats.unknownPeers++;
      socket.destroy();
      return;
    }
    if (this.#context.isBanned(peer)) {
      this.#stats.refusedBanned++;
      this.#deny(socket);
      return;
    }
    const config = this.#config;
    const held = this.#byClient.get(peer)?.size ?? 0;
    if (
      (config.maxConnections > 0 && this.#connections.size >= config.maxConnections) ||
      (config.maxConnectionsPerIp > 0 && held >= config.maxConnectionsPerIp)
    ) {
      this.#stats.refusedLimit++;
      this.#deny(socket);
      this.#jails.judge({
        event: 'close',
        ip: peer,
        listener: this.listener,
        dport: admitted.header?.destinationPort ?? socket.localPort ?? 0,
        durationMs: 0,
        bytesIn: 0,
        bytesOut: 0,
        noData: true,
        concurrent: held + 1,
        end: 'refused',
      });
      return;
    }
    const connection = new TcpConnection(socket, peer, admitted, this.listener, {
      idleTimeoutMs: config.idleTimeoutMs,
      onClosed: (closed) => this.#closed(closed),
      onUpstreamError: () => this.#stats.upstreamErrors++,
      onTimeout: () => this.#stats.timeouts++,
    });
    this.#connections.add(connection);
    let set = this.#byClient.get(peer);
    if (set === undefined) {
      set = new Set();
      this.#byClient.set(peer, set);
    }
    set.add(connection);
    if (config.sni) this.#peek(connection, admitted.rest);
    else this.#open(connection, admitted.rest);
  }

  /** Step 3: waits (bounded) for the ClientHello and reads its server name. */
  #peek(connection: TcpConnection, rest: Buffer): void {
    const socket = connection.client;
    let head = rest;
    let settled = false;
    const finish = (sni: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.pause();
      if (socket.destroyed) return;
      connection.sni = sni;
      this.#open(connection, head);
    };
    const examine = () => {
      const parsed = parseClientHelloSni(head);
      if (parsed.kind === 'done') finish(parsed.sni);
      else if (parsed.kind === 'not-tls' || head.length >= MAX_CLIENT_HELLO) finish(undefined);
    };
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      examine();
    };
    // Ended before a whole hello: forward what came (the upstream sees the client's FIN after it).
    const onEnd = () => finish(undefined);
    const timer = setTimeout(() => finish(undefined), this.#config.sniTimeoutMs);
    timer.unref();
    if (head.length > 0) examine();
    if (settled) return;
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  }

  /** Step 4 and 5: the `open` event, then (if the client is still welcome) the upstream. */
  #open(connection: TcpConnection, head: Buffer): void {
    const peer = connection.peer;
    this.#jails.judge(connection.event('open', this.#byClient.get(peer)?.size ?? 1));
    if (connection.client.destroyed) return; // its own open event banned it, and the ban cut it
    if (this.#context.isBanned(peer)) {
      this.#stats.refusedBanned++;
      connection.end = 'refused';
      this.#deny(connection.client);
      return;
    }
    const config = this.#config;
    const upstream = connect({
      host: config.targetHost,
      port: config.targetPort,
      allowHalfOpen: true,
      noDelay: true,
    });
    const header =
      config.proxyProtocolUpstream === null
        ? null
        : upstreamProxyHeader(connection, config.proxyProtocolUpstream);
    connection.forward(upstream, header, head, config.connectTimeoutMs);
  }

  /** Step 6: both sockets are closed. */
  #closed(connection: TcpConnection): void {
    const peer = connection.peer;
    const set = this.#byClient.get(peer);
    const concurrent = set?.size ?? 1;
    this.#stats.bytesIn += connection.bytesIn;
    this.#stats.bytesOut += connection.bytesOut;
    if (this.#closing === undefined) this.#jails.judge(connection.event('close', concurrent));
    set?.delete(connection);
    if (set?.size === 0) this.#byClient.delete(peer);
    this.#connections.delete(connection);
    if (this.#connections.size === 0) this.#drained?.();
  }

  /** Closes a refused connection without a byte: `reset` (RST) or `drop` (FIN). */
  #deny(socket: Socket): void {
    if (this.#config.deny === 'reset') dropSocket(socket);
    else socket.destroy();
  }

  /**
   * A ban closes the banned client's live connections at once: on the engine's ban event when it
   * has a decision feed, else by checking every connected client every 50 ms.
   */
  #watchBans(): void {
    const feed = this.#context as Partial<DecisionFeed>;
    if (typeof feed.subscribe === 'function') {
      this.#stopWatchingBans = feed.subscribe({
        ban: (decision) => {
          if (!decision.dryRun) this.#cut(decision.target);
        },
      });
      return;
    }
    const timer = setInterval(() => {
      for (const ip of [...this.#byClient.keys()]) if (this.#context.isBanned(ip)) this.#cut(ip);
    }, BAN_POLL_MS);
    timer.unref();
    this.#stopWatchingBans = () => clearInterval(timer);
  }

  /** Closes every connection of `target` (an address), or of every client a range covers. */
  #cut(target: string): void {
    const exact = canonicalAddress(target);
    const who =
      exact !== null && this.#byClient.has(exact)
        ? [exact]
        : [...this.#byClient.keys()].filter((ip) => this.#context.isBanned(ip));
    for (const ip of who) {
      for (const connection of [...(this.#byClient.get(ip) ?? [])]) {
        if (connection.client.destroyed) continue;
        // Not yet forwarded (its own open event banned it): a refusal; else a live connection cut.
        if (connection.upstream === null) this.#stats.refusedBanned++;
        else this.#stats.closedOnBan++;
        connection.end ??= 'refused' satisfies ConnectionEnd;
        this.#deny(connection.client);
        connection.upstream?.destroy();
      }
    }
  }
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6'
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`;
}
