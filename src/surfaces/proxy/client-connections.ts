import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { dropSocket } from '../../sources/socket/accept-gate.js';

/** An exchange as its connection sees it (the proxy's `Exchange` is one). */
export interface LiveExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse | null;
  readonly ip: string | null;
  /** The client whose share of upstream requests this exchange holds (see {@link ClientConnections.takeUpstream}). */
  upstreamHeldBy: string | null;
  /** The proxy answered it itself (408, 400): the upstream's answer, if any comes, is not wanted. */
  answered: boolean;
  /** The request to the upstream, once it has a socket. */
  proxyReq: ClientRequest | undefined;
}

/**
 * One client connection the proxy serves: the exchanges on it whose response has not closed yet
 * (several when the client pipelines), and what the slow-client checks need.
 */
export class ClientConnection {
  /** The socket HTTP reads (the TLS socket on a TLS listener). */
  readonly socket: Socket;
  /** The peer, as the gate decided (`null`: unknown). */
  readonly peer: string | null;
  /** Exchanges whose response has not closed, oldest first. */
  readonly live = new Set<LiveExchange>();
  /** Requests parsed on this connection. */
  requests = 0;
  /** `socket.bytesRead` when the connection last had no exchange in flight. */
  idleAt = 0;
  /** The first bytes the client sent, kept until its first request is parsed (a 408's log line). */
  head: Buffer | undefined = undefined;
  /** The first request line as sent (latin1, no CRLF), when the first bytes held a whole one. */
  firstLine: string | undefined = undefined;
  /** Answered and closing: a timeout or parse error that follows is not answered nor logged again. */
  closing = false;
  /** Who this connection is closed for when banned: the peer, and the client of a WebSocket on it. */
  readonly clients = new Set<string>();
  /** Switched to another protocol (a WebSocket): closing it is the only way to stop it. */
  upgraded = false;
  /** A ban marked it to close after the responses it owes (counted once in `closedOnBan`). */
  cutForBan = false;

  constructor(socket: Socket, peer: string | null) {
    this.socket = socket;
    this.peer = peer;
  }

  /** The exchange whose request body is still arriving, if any (the newest: only it can be). */
  incomplete(): LiveExchange | undefined {
    let found: LiveExchange | undefined;
    for (const exchange of this.live) if (exchange.res !== null && !exchange.req.complete) found = exchange;
    return found;
  }
}

const byHttpSocket = new WeakMap<object, ClientConnection>();

/** The connection state of a socket HTTP reads, when the proxy's gate admitted it. */
export function clientConnectionOf(socket: object): ClientConnection | undefined {
  return byHttpSocket.get(socket);
}

const kLive = Symbol('portcullis.live');
type Tracked = ServerResponse & {
  [kLive]?: { client: ClientConnection; exchange: LiveExchange; owner: ClientConnections };
};

/**
 * Every client connection of a proxy: by client address (so a ban closes a client's connections
 * and WebSockets at once), with the exchanges in flight on each (so that an exchange whose
 * connection dies — a parse error or a FIN after pipelined requests — is still logged and judged),
 * and each client's share of upstream requests (`max_upstream_per_ip`).
 */
export class ClientConnections {
  readonly #byClient = new Map<string, Set<ClientConnection>>();
  readonly #upstream = new Map<string, number>();
  readonly #maxUpstream: number;

  /** @param maxUpstreamPerIp requests one client may have at the upstreams at once. */
  constructor(maxUpstreamPerIp: number) {
    this.#maxUpstream = maxUpstreamPerIp;
  }

  /** Starts tracking a connection the gate admitted. `trusted`: a proxy's, shared by many clients. */
  add(socket: Socket, peer: string | null, trusted: boolean): ClientConnection {
    const client = new ClientConnection(socket, peer);
    byHttpSocket.set(socket, client);
    if (peer !== null && !trusted) this.#index(client, peer);
    socket.once('close', () => this.#closed(client));
    return client;
  }

  /** Marks `client`'s connection upgraded; it is also closed when `who` is banned (a WebSocket's client). */
  upgraded(client: ClientConnection, who: string | null): void {
    client.upgraded = true;
    if (who !== null && !client.clients.has(who)) this.#index(client, who);
  }

  /** Records an exchange in flight on its connection until its response closes. */
  begin(client: ClientConnection, exchange: LiveExchange): void {
    const res = exchange.res;
    client.requests++;
    client.head = undefined;
    if (res === null) return;
    client.live.add(exchange);
    (res as Tracked)[kLive] = { client, exchange, owner: this };
    res.on('close', onResponseClose);
  }

  /**
   * Takes one of the client's upstream slots for `exchange`; false when it holds
   * `maxUpstreamPerIp` already. Given back when the response closes.
   */
  takeUpstream(exchange: LiveExchange, ip: string): boolean {
    if (exchange.upstreamHeldBy !== null) return true;
    const held = this.#upstream.get(ip) ?? 0;
    if (held >= this.#maxUpstream) return false;
    this.#upstream.set(ip, held + 1);
    exchange.upstreamHeldBy = ip;
    return true;
  }

  /** Requests `ip` has at the upstreams now. */
  upstreamOf(ip: string): number {
    return this.#upstream.get(ip) ?? 0;
  }

  /** Clients with a connection open. */
  get clients(): IterableIterator<string> {
    return this.#byClient.keys();
  }

  /**
   * Closes every connection of the clients `isBanned` names: `target` when it is a tracked client,
   * else every tracked client is asked (a range or an IPv6 network). `reset` (`deny: drop`):
   * each is closed at once. Otherwise (the client is to get the deny response) idle connections,
   * WebSockets and uploads still arriving are closed at once, and a request already in closes its
   * connection after its response (its next request, on a new connection, is refused). Returns
   * how many connections were closed or marked.
   */
  cut(target: string, isBanned: (ip: string) => boolean, reset: boolean): number {
    const exact = this.#byClient.get(target);
    const who = exact !== undefined ? [target] : [...this.#byClient.keys()].filter(isBanned);
    // A connection indexed under two clients (a trusted proxy's WebSocket) is one connection.
    const clients = new Set<ClientConnection>();
    for (const ip of who) for (const client of this.#byClient.get(ip) ?? []) clients.add(client);
    let closed = 0;
    for (const client of clients) {
      const socket = client.socket;
      if (socket.destroyed) continue;
      // Marked by an earlier cut to close after its responses: counted then; closed now on a reset.
      if (client.cutForBan && !reset) continue;
      if (!client.cutForBan) closed++;
      const idle = client.live.size === 0;
      if (reset) {
        // An idle socket is reset (no byte, as at accept); one owing responses is closed.
        if (idle && client.requests > 0 && socket.writableLength === 0) dropSocket(socket);
        else socket.destroy();
      } else if (client.upgraded || (idle && client.requests > 0) || client.incomplete() !== undefined) {
        // A connection not yet past its first request is left to get the deny response.
        socket.destroy();
      } else {
        client.cutForBan = true;
        for (const exchange of client.live) {
          const res = exchange.res as ServerResponse;
          res.shouldKeepAlive = false;
          if (!res.headersSent) res.setHeader('Connection', 'close');
        }
      }
    }
    return closed;
  }

  /** Called by the response's 'close': the exchange is over. */
  finished(client: ClientConnection, exchange: LiveExchange): void {
    client.live.delete(exchange);
    if (client.live.size === 0 && !client.socket.destroyed) client.idleAt = client.socket.bytesRead;
    const ip = exchange.upstreamHeldBy;
    if (ip === null) return;
    exchange.upstreamHeldBy = null;
    const held = this.#upstream.get(ip) ?? 0;
    if (held <= 1) this.#upstream.delete(ip);
    else this.#upstream.set(ip, held - 1);
  }

  #index(client: ClientConnection, who: string): void {
    client.clients.add(who);
    let set = this.#byClient.get(who);
    if (set === undefined) {
      set = new Set();
      this.#byClient.set(who, set);
    }
    set.add(client);
  }

  #closed(client: ClientConnection): void {
    for (const who of client.clients) {
      const set = this.#byClient.get(who);
      set?.delete(client);
      if (set?.size === 0) this.#byClient.delete(who);
    }
    if (client.live.size === 0) return;
    // Node closes the response it was writing; responses queued behind it (pipelined requests)
    // would never close, so their exchanges would be neither logged nor judged. After Node's own
    // close events, the ones left are closed here: aborted, status 0.
    setImmediate(() => {
      for (const exchange of [...client.live]) {
        const res = exchange.res as ServerResponse;
        if (!res.destroyed) res.destroy();
        res.emit('close');
      }
    });
  }
}

/** A shared listener (no closure per request). */
function onResponseClose(this: ServerResponse): void {
  const live = (this as Tracked)[kLive];
  if (live === undefined) return;
  (this as Tracked)[kLive] = undefined;
  live.owner.finished(live.client, live.exchange);
}
