import type { ServerResponse } from 'node:http';
import type { ControlEvent } from '../../operate/control.js';

/** The event feed of the admin listener as Server-Sent Events: `/v1/events`. */

export interface EventStreamOptions {
  /** Subscribes to the feed; returns the unsubscribe function. Called when the first client connects. */
  subscribe(listener: (event: ControlEvent) => void): () => void;
  /** A comment line is sent this often, so proxies and clients see a live stream. Default 15 000 ms. */
  heartbeatMs?: number;
  /**
   * Bytes a client may leave waiting (not yet taken by its socket) for longer than `slowClientMs`
   * before it is dropped; four times this much drops it at once. A client that does not read
   * costs at most that much memory, never an unbounded buffer; one that reads keeps its stream
   * through a burst. Default 1 MiB.
   */
  maxBufferBytes?: number;
  /** How long a client may stay above `maxBufferBytes` unread. Default 5 000 ms. */
  slowClientMs?: number;
  /** Concurrent clients; more get 503. Default 32. */
  maxClients?: number;
  /**
   * A client with bytes waiting that its socket has not drained for this long is dropped: it
   * stopped reading (below the buffer bounds, e.g. only heartbeats). Default 60 000 ms.
   */
  stallMs?: number;
  /**
   * Longest life of one stream, ms: it is then ended (the client reconnects and reloads the
   * state), so no stream holds a slot forever. Default 3 600 000 (1 hour).
   */
  maxLifetimeMs?: number;
  /**
   * Whether a stream's tag (the token it was opened with) is still good; checked at each
   * heartbeat. A stale stream is ended. Default: always good.
   */
  valid?: (tag: unknown) => boolean;
  /** Time source, ms. Default `Date.now`. */
  now?: () => number;
}

export const EVENT_TYPES = ['failure', 'ban', 'unban'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

interface Client {
  res: ServerResponse;
  types: ReadonlySet<EventType>;
  /** Armed while the client is above the soft bound; it drops the client unless it drains first. */
  slow: NodeJS.Timeout | undefined;
  /** What the stream was opened with (the token), for {@link EventStream.endWhere}. */
  tag: unknown;
  openedAt: number;
  /** Since when bytes have been waiting undrained; `undefined` while the socket keeps up. */
  pendingSince: number | undefined;
}

/** The hard bound, as a multiple of `maxBufferBytes`. */
const HARD_FACTOR = 4;

export interface EventStreamStats {
  clients: number;
  /** Events written (to all clients: one event to three clients counts three). */
  sent: number;
  /** Clients dropped because they did not read fast enough (or stopped reading). */
  dropped: number;
  /** Streams ended because they reached their lifetime or their token was replaced. */
  ended: number;
  /** Clients refused because `maxClients` were connected. */
  refused: number;
}

/**
 * Fans the feed out to every connected client. Each event is serialised once. A client whose
 * socket will not take more (its pending bytes pass `maxBufferBytes`) is disconnected; it can
 * reconnect and reload the state (`/v1/decisions`), which is cheaper than holding its backlog.
 */
export class EventStream {
  readonly #options: Required<Omit<EventStreamOptions, 'subscribe' | 'valid' | 'now'>>;
  readonly #valid: (tag: unknown) => boolean;
  readonly #now: () => number;
  readonly #subscribe: EventStreamOptions['subscribe'];
  readonly #clients = new Set<Client>();
  #unsubscribe: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #nextId = 1;
  #closed = false;
  readonly #stats = { sent: 0, dropped: 0, refused: 0, ended: 0 };

  constructor(options: EventStreamOptions) {
    this.#subscribe = options.subscribe;
    this.#options = {
      heartbeatMs: options.heartbeatMs ?? 15_000,
      maxBufferBytes: options.maxBufferBytes ?? 1 << 20,
      slowClientMs: options.slowClientMs ?? 5_000,
      maxClients: options.maxClients ?? 32,
      stallMs: options.stallMs ?? 60_000,
      maxLifetimeMs: options.maxLifetimeMs ?? 3_600_000,
    };
    this.#valid = options.valid ?? (() => true);
    this.#now = options.now ?? Date.now;
  }

  get stats(): EventStreamStats {
    return { clients: this.#clients.size, ...this.#stats };
  }

  /** Whether another client may connect now. */
  get full(): boolean {
    return this.#clients.size >= this.#options.maxClients;
  }

  /** Counts a refusal (the caller answered 503). */
  refused(): void {
    this.#stats.refused++;
  }

  /**
   * Starts the stream on `res` (headers written here) with the event types the client asked for;
   * `tag`: what it was opened with (the token), see {@link endWhere}.
   */
  add(res: ServerResponse, types: ReadonlySet<EventType>, tag?: unknown): void {
    if (this.#closed) {
      res.destroy();
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
      Connection: 'keep-alive',
    });
    res.socket?.setNoDelay(true);
    // The browser's reconnect delay, and a first line so the client knows the stream is open.
    res.write(`retry: 3000\n: portcullis events (${[...types].join(', ')})\n\n`);
    const client: Client = {
      res,
      types,
      slow: undefined,
      tag,
      openedAt: this.#now(),
      pendingSince: undefined,
    };
    this.#clients.add(client);
    res.once('close', () => this.#remove(client));
    res.on('drain', () => {
      clearTimeout(client.slow);
      client.slow = undefined;
      client.pendingSince = undefined;
    });
    if (this.#unsubscribe === undefined) this.#unsubscribe = this.#subscribe(this.#onEvent);
    if (this.#heartbeat === undefined) {
      this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatMs).unref();
    }
  }

  /** Ends (cleanly: the client may reconnect) every stream whose tag matches; resolves how many. */
  endWhere(match: (tag: unknown) => boolean): number {
    let n = 0;
    for (const client of [...this.#clients]) {
      if (!match(client.tag)) continue;
      this.#end(client);
      n++;
    }
    return n;
  }

  /** Ends every stream and stops listening. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const client of this.#clients) {
      clearTimeout(client.slow);
      client.res.end();
    }
    this.#clients.clear();
    this.#stop();
  }

  readonly #onEvent = (event: ControlEvent): void => {
    if (this.#clients.size === 0) return;
    let frame: string | undefined;
    for (const client of this.#clients) {
      if (!client.types.has(event.type)) continue;
      frame ??= `id: ${this.#nextId++}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
      this.#write(client, frame);
    }
  };

  #beat(): void {
    const now = this.#now();
    for (const client of [...this.#clients]) {
      if (!this.#valid(client.tag) || now - client.openedAt >= this.#options.maxLifetimeMs) {
        this.#end(client);
        continue;
      }
      if (client.pendingSince !== undefined && now - client.pendingSince >= this.#options.stallMs) {
        this.#drop(client);
        continue;
      }
      this.#write(client, ': heartbeat\n\n');
    }
  }

  #end(client: Client): void {
    this.#stats.ended++;
    this.#remove(client);
    const res = client.res;
    res.end();
    // A client that does not read would hold the connection until the last bytes are taken.
    setTimeout(() => {
      if (!res.writableFinished) res.destroy();
    }, 5_000).unref();
  }

  #write(client: Client, frame: string): void {
    const res = client.res;
    if (res.destroyed) return;
    res.write(frame);
    this.#stats.sent++;
    // What the socket has not taken yet: past the hard bound, or past the soft one for too long,
    // the client is too slow to keep.
    const waiting = res.writableLength;
    if (waiting > 0) client.pendingSince ??= this.#now();
    const soft = this.#options.maxBufferBytes;
    if (waiting > soft * HARD_FACTOR) this.#drop(client);
    else if (waiting > soft && client.slow === undefined) {
      client.slow = setTimeout(() => {
        if (!res.destroyed && res.writableLength > 0) this.#drop(client);
      }, this.#options.slowClientMs).unref();
    }
  }

  #drop(client: Client): void {
    this.#stats.dropped++;
    this.#remove(client);
    client.res.destroy();
  }

  #remove(client: Client): void {
    clearTimeout(client.slow);
    if (!this.#clients.delete(client)) return;
    if (this.#clients.size === 0) this.#stop();
  }

  #stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }
}
