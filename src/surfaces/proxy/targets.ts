import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyServer, type ServerOptions } from 'http-proxy-3';
import { ConfigError } from '../../core/errors.js';
import { UpstreamTimeoutError } from './upstream-errors.js';

/** One upstream: its URL, its keep-alive agent, and the http-proxy-3 servers that forward to it. */
export interface Target {
  /** `http://127.0.0.1:3000` as configured. */
  readonly url: string;
  readonly agent: HttpAgent;
  /**
   * Forwards to this target (`web(req, res, callback)`, `ws(req, socket, head, callback)`). The
   * options live in the server, not in each call: passing them per call costs ~10 µs a request
   * (measured), as http-proxy-3 then merges two option objects for every request.
   */
  readonly proxy: ProxyServer;
  /** The same, sending `Connection: keep-alive` upstream whatever the client's `Connection` said. */
  readonly keepAliveProxy: ProxyServer;
  /** The options both were built with. */
  readonly proxyOptions: Readonly<ServerOptions>;
  /** Skipped until this time (ms since the epoch, `Date.now()`) after a connect error. */
  downUntil: number;
}

export interface TargetPoolOptions {
  /** Connections kept per target. */
  maxSockets: number;
  /** How long a target that refused a connection is skipped, ms. */
  downMs: number;
  /** Timeout of an upstream socket, connecting included, ms. */
  upstreamTimeoutMs: number;
  /** Send the target's host as `Host` (false: the client's). */
  changeOrigin: boolean;
  /** Called once for each http-proxy-3 server created, to attach its listeners. */
  setup?: (proxy: ProxyServer) => void;
}

/**
 * Makes the agent's socket timeout (`timeout`: inactivity, connecting included) end the request
 * using the socket with an {@link UpstreamTimeoutError} (a 504). Node's agent only destroys
 * *idle* sockets that time out; a request in flight would wait forever. One listener per upstream
 * connection, none per request.
 */
function watchTimeouts(agent: HttpAgent): void {
  const create = agent.createConnection;
  agent.createConnection = function createWatchedConnection(this: HttpAgent, options, callback) {
    const socket = create.call(this, options, callback);
    socket?.on('timeout', onUpstreamSocketTimeout);
    return socket;
  } as HttpAgent['createConnection'];
}

function onUpstreamSocketTimeout(this: Duplex): void {
  // `_httpMessage`: the request using the socket (Node's own field; null while the socket is free).
  const request = (this as Socket & { _httpMessage?: { destroy(error: Error): void } | null })._httpMessage;
  if (request != null) request.destroy(new UpstreamTimeoutError((this as Socket).timeout ?? 0));
}

/**
 * The upstreams, used round-robin. A target that refused a connection is skipped for `downMs`
 * while another is up; when all are down the least recently failed is tried anyway (a refused
 * request costs a 502, a skipped healthy target costs every request).
 */
export class TargetPool {
  readonly targets: readonly Target[];
  readonly #downMs: number;
  #next = 0;
  /** Targets marked down whose time has not been checked out yet; 0 keeps `pick()` to a modulo. */
  #down = 0;

  constructor(urls: readonly string[], options: TargetPoolOptions) {
    if (urls.length === 0) throw new ConfigError(['proxy: set exactly one of target or targets']);
    this.#downMs = options.downMs;
    this.targets = urls.map((url, i) => {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new ConfigError([
          `proxy.targets.${i}: expected an http:// or https:// URL, got ${JSON.stringify(url)}`,
        ]);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new ConfigError([
          `proxy.targets.${i}: expected an http:// or https:// URL, got ${JSON.stringify(url)}`,
        ]);
      }
      const agentOptions = {
        keepAlive: true,
        maxSockets: options.maxSockets,
        maxFreeSockets: options.maxSockets,
        // Also bounds connecting: a target that never answers the SYN gets a 504, not a hang.
        timeout: options.upstreamTimeoutMs,
        scheduling: 'lifo' as const,
      };
      const agent = parsed.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
      watchTimeouts(agent);
      const proxyOptions: ServerOptions = {
        target: parsed,
        agent,
        xfwd: false,
        ws: true,
        changeOrigin: options.changeOrigin,
        prependPath: true,
      };
      const proxy = new ProxyServer({ ...proxyOptions });
      const keepAliveProxy = new ProxyServer({ ...proxyOptions, headers: { connection: 'keep-alive' } });
      options.setup?.(proxy);
      options.setup?.(keepAliveProxy);
      return { url, agent, proxy, keepAliveProxy, proxyOptions, downUntil: 0 };
    });
  }

  /** The next target to try. */
  pick(): Target {
    const targets = this.targets;
    if (targets.length === 1) return targets[0] as Target;
    if (this.#down === 0) return targets[this.#next++ % targets.length] as Target;
    const now = Date.now();
    let fallback: Target | undefined;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[this.#next++ % targets.length] as Target;
      if (target.downUntil <= now) {
        if (target.downUntil !== 0) {
          target.downUntil = 0;
          this.#down--;
        }
        return target;
      }
      if (fallback === undefined || target.downUntil < fallback.downUntil) fallback = target;
    }
    return fallback as Target;
  }

  /** Another target than `failed` to retry on, when one is up. */
  alternative(failed: Target): Target | undefined {
    if (this.targets.length === 1) return undefined;
    const next = this.pick();
    return next === failed || next.downUntil > Date.now() ? undefined : next;
  }

  /** Marks `target` down for `downMs` (after ECONNREFUSED and the like). */
  markDown(target: Target): void {
    if (this.targets.length === 1) return;
    if (target.downUntil === 0) this.#down++;
    target.downUntil = Date.now() + this.#downMs;
  }

  /** Closes every pooled upstream connection; the http-proxy-3 servers keep only a no-op `error` listener. */
  destroy(): void {
    for (const target of this.targets) {
      target.agent.destroy();
      for (const proxy of [target.proxy, target.keepAliveProxy]) {
        proxy.removeAllListeners();
        proxy.on('error', () => {});
      }
    }
  }
}
