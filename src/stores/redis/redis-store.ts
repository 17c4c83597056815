import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { ConfigError, ErrorCodes, PortcullisError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { type Decision, isActive } from '../../core/types.js';
import type {
  FailureInput,
  FailureResult,
  LogPosition,
  Store,
  StoreEventMap,
  StoreMessage,
} from '../store.js';
import {
  ADD_FAILURE,
  DELETE_DECISION,
  DELETE_DECISIONS,
  PURGE_DECISIONS,
  PURGE_HISTORY,
  PUT_DECISION,
  PUT_DECISIONS,
} from './scripts.js';

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL of a standalone server (user, password and `/db` may be in it). */
  url?: string;
  /** Sentinel mode: sentinel addresses; requires `sentinelName`. */
  sentinels?: { host: string; port: number }[];
  /** Sentinel mode: the master group name (`sentinel monitor <name> ...`). */
  sentinelName?: string;
  /** Cluster mode: seed node URLs (`redis://host:port`). */
  cluster?: string[];
  /** ACL user; overrides one given in `url`. */
  username?: string;
  /** Password; overrides one given in `url`. */
  password?: string;
  /** Database index; not allowed in cluster mode. Default 0 (or the `/db` of `url`). */
  db?: number;
  /** Use TLS. Default false, or true for a `rediss://` URL. */
  tls?: boolean;
  /**
   * Key prefix, default `pc:`. Every key and the pub/sub channel start with it. In cluster mode it
   * is wrapped in a hash tag (`{pc:}`) unless it already holds one.
   */
  prefix?: string;
  /** How long a command may wait for its reply before failing with `PC_ERR_STORE_UNAVAILABLE`, ms; default 1000. */
  commandTimeoutMs?: number;
  /** How long `open()` keeps trying to reach Redis before it rejects, ms; default 5000. */
  openTimeoutMs?: number;
  /**
   * Both connections are PINGed this often, ms; default 5000. A connection whose PING gets no
   * reply within `commandTimeoutMs` is dropped and reconnected (emitting `'down'`, then `'up'`),
   * so a silently dead link (no RST, e.g. a network partition) is noticed in seconds, not when TCP
   * keepalive gives up two hours later, while the subscriber would miss every ban. The epoch key
   * is checked at the same pace, so a FLUSHALL (which drops no connection) emits `'lost'` within
   * about this long.
   */
  heartbeatMs?: number;
  /**
   * How long a target's ban history lives after its latest ban, ms; default 30 days. Keep it at
   * least as long as the history the guard counts (`dbpurgeage`); `purge()` trims it sooner.
   */
  historyTtlMs?: number;
  /** Identifies this instance in pub/sub so it ignores its own messages; default `${hostname}:${pid}:${random}`. */
  instanceId?: string;
  logger?: Logger;
}

const DEFAULTS = {
  prefix: 'pc:',
  commandTimeoutMs: 1000,
  openTimeoutMs: 5000,
  heartbeatMs: 5000,
  historyTtlMs: 30 * 24 * 3_600_000,
} as const;

/** Failure windows outlive `findtime` by this much, so a little clock skew between instances is harmless. */
const FAILURE_TTL_SLACK_MS = 60_000;
/** Decisions per page when restoring, and how many pages are requested ahead of the one being parsed. */
const LOAD_PAGE = 10_000;
const LOAD_PAGES_AHEAD = 3;
/** Restore passes before giving up on a quiet moment (see `loadDecisions`). */
const LOAD_MAX_PASSES = 3;
/** Decisions (or history targets) removed per purge script call: each call stays well under a millisecond or two. */
const PURGE_BATCH = 1000;
/**
 * Decisions per `putDecisions` / `deleteDecisions` script call, and how many calls are in flight
 * at once. A chunk of 500 runs ~4 ms on the server (measured on a 2-core EPYC), blocking every
 * other client meanwhile; a few in flight keep the server busy while the next is being sent,
 * without queueing so many that the last would wait past `commandTimeoutMs`.
 */
const WRITE_CHUNK = 500;
const WRITE_CHUNKS_IN_FLIGHT = 4;
/** How long to wait before checking the epoch again when the check failed on a live connection. */
const EPOCH_RETRY_MS = 1000;

/**
 * Reconnect backoff: 100 ms, 200 ms, ... capped at 500 ms; ioredis keeps retrying forever. The cap
 * bounds how late an instance notices Redis is back after a long outage (one connection attempt
 * every half second costs nothing), which is part of how long instances disagree.
 */
function retryDelayMs(attempt: number): number {
  return Math.min(attempt * 100, 500);
}

interface ScriptCommands {
  pcAddFailure(
    key: string,
    timeMs: number,
    member: string,
    findTimeMs: number,
    maxRetry: number,
    ttlMs: number,
  ): Promise<[string, number]>;
  pcPutDecision(...keysAndArgs: (string | number)[]): Promise<string>;
  /** Variable key count: the first argument is the number of keys. */
  pcPutDecisions(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<string[]>;
  pcDeleteDecision(
    bans: string,
    exp: string,
    removals: string,
    target: string,
    channel: string,
    message: string,
  ): Promise<string | null>;
  pcDeleteDecisions(
    bans: string,
    exp: string,
    removals: string,
    channel: string,
    message: string,
    ...targets: string[]
  ): Promise<(string | null)[]>;
  pcPurgeDecisions(bans: string, exp: string, nowMs: number, limit: number): Promise<number>;
  /** Variable key count: the first argument is the number of keys. */
  pcPurgeHistory(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number>;
}

type Client = (Redis | Cluster) & ScriptCommands;

interface Keys {
  bans: string;
  expiries: string;
  historyIndex: string;
  removals: string;
  positions: string;
  epoch: string;
  channel: string;
}

type State = 'idle' | 'opening' | 'up' | 'down' | 'closed';

/**
 * The store for several instances: counters, decisions, ban history and log positions in Redis
 * (standalone, Sentinel or Cluster), with bans and unbans announced to every instance over
 * pub/sub.
 *
 * Layout under the prefix `p`:
 * - `p fail:<jail>:<key>`: a failure window (sorted set, see `ADD_FAILURE`), expires on its own;
 * - `p bans`: hash target → decision JSON; `p bans:exp`: sorted set target → expiry (+inf = permanent);
 * - `p hist:<target>`: ban history (sorted set `<jail>:<time>:<unique>` → time), expires on its own;
 *   `p hist-index`: target → time of its oldest history entry, so purge never scans the keyspace;
 * - `p pos`: hash id → log position JSON; channel `p events`;
 * - `p epoch`: a random id created by the first instance that finds it missing (see below).
 *
 * Connection policy: commands never queue. While Redis is unreachable every command rejects at
 * once (or after `commandTimeoutMs` when the server does not answer) with
 * `PC_ERR_STORE_UNAVAILABLE`, and ioredis reconnects in the background with a capped backoff.
 * `'down'` is emitted once per outage, `'up'` once the command and the subscriber connections are
 * both back and the subscription is live again, so a reload started on `'up'` misses nothing.
 *
 * Epoch: a Redis without persistence that restarts comes back empty, and reloading on `'up'`
 * would then drop every ban. So `open()` remembers the epoch key (creating it with SET NX when
 * missing), and every reconnect, before `'up'`, and every heartbeat read it again (SET NX a new
 * random id, then GET: instances racing to recreate it all end up with the one that won). When it
 * differs from the remembered one, the store emits `'lost'` and then `'up'`, and the user writes
 * back what it enforces. This cannot tell data that is partly gone while the key survived (a
 * restore from an older snapshot, a replica that lagged, keys deleted by hand or evicted by a
 * `maxmemory` policy); an evicted or deleted epoch key only costs a needless write-back.
 */
export class RedisStore extends EventEmitter<StoreEventMap> implements Store {
  readonly kind = 'redis' as const;
  readonly shared = true;
  /** The id this instance puts in its pub/sub messages. */
  readonly instanceId: string;
  /** The effective key prefix (hash-tagged in cluster mode). */
  readonly keyPrefix: string;

  readonly #options: RedisStoreOptions;
  readonly #commandTimeoutMs: number;
  readonly #openTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #historyTtlMs: number;
  readonly #logger: Logger;
  readonly #where: string;
  readonly #keys: Keys;
  /** Precomputed pub/sub message heads: the decision JSON (or target) and `}` are appended. */
  readonly #banMessageHead: string;
  readonly #unbanMessageHead: string;
  readonly #bansMessageHead: string;
  readonly #unbansMessageHead: string;
  /** Makes failure and history members unique across instances without a random call per event. */
  readonly #memberSeed = randomBytes(6).toString('base64url');
  #memberSeq = 0;

  #state: State = 'idle';
  #client: Client | undefined;
  #subscriber: Redis | Cluster | undefined;
  #clientReady = false;
  #subscriberReady = false;
  #lastError: Error | undefined;
  #opening: Promise<void> | undefined;
  #settleOpen: ((error?: Error) => void) | undefined;
  #closing: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** The epoch this instance last saw (undefined until the first check after `open()`). */
  #epoch: string | undefined;
  #epochCheck: Promise<void> | undefined;
  #epochRetry: NodeJS.Timeout | undefined;
  /** Bumped whenever the command connection closes, so a check answered before a drop is discarded. */
  #generation = 0;

  constructor(options: RedisStoreOptions) {
    super();
    validate(options);
    this.#options = options;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs;
    this.#openTimeoutMs = options.openTimeoutMs ?? DEFAULTS.openTimeoutMs;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULTS.heartbeatMs;
    this.#historyTtlMs = options.historyTtlMs ?? DEFAULTS.historyTtlMs;
    this.#logger = options.logger ?? silentLogger;
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    const prefix = options.prefix ?? DEFAULTS.prefix;
    // Redis Cluster only runs a multi-key script when all its keys live in one hash slot. Only the
    // part of a key between the first `{` and `}` is hashed, so a hash-tagged prefix puts every
    // portcullis key in the same slot (and on one shard: the price of atomic decisions).
    this.keyPrefix = options.cluster !== undefined && !/\{[^}]+\}/.test(prefix) ? `{${prefix}}` : prefix;
    this.#keys = {
      bans: `${this.keyPrefix}bans`,
      expiries: `${this.keyPrefix}bans:exp`,
      historyIndex: `${this.keyPrefix}hist-index`,
      removals: `${this.keyPrefix}bans:removals`,
      positions: `${this.keyPrefix}pos`,
      epoch: `${this.keyPrefix}epoch`,
      channel: `${this.keyPrefix}events`,
    };
    this.#where = describeServer(options);
    const from = JSON.stringify(this.instanceId);
    this.#banMessageHead = `{"from":${from},"type":"ban","decision":`;
    this.#unbanMessageHead = `{"from":${from},"type":"unban","target":`;
    this.#bansMessageHead = `{"from":${from},"type":"bans","decisions":[`;
    this.#unbansMessageHead = `{"from":${from},"type":"unbans","targets":`;
  }

  /**
   * The store epoch this instance last saw: the value of `<prefix>epoch` (undefined before
   * `open()` resolves). Instances on the same data agree on it; it changes when the data is lost.
   */
  get epoch(): string | undefined {
    return this.#epoch;
  }

  /**
   * The command connection (`undefined` before `open()` and after `close()`), for counters other
   * modules keep under {@link keyPrefix}: rate jails' shared windows (`<prefix>rate:...`). It fails
   * fast like every store command (no offline queue, `commandTimeoutMs`).
   */
  get commandClient(): Redis | Cluster | undefined {
    return this.#client;
  }

  /**
   * Connects the command and subscriber connections, subscribes to the channel and reads (or
   * creates) the epoch key, which later reconnects and heartbeats compare with. Rejects with
   * `PC_ERR_STORE_UNAVAILABLE` when Redis is not ready within `openTimeoutMs` (at once when the
   * server refuses the credentials or the database), leaving no connection or timer behind.
   */
  open(): Promise<void> {
    if (this.#state === 'closed') {
      return Promise.reject(new PortcullisError(ErrorCodes.CLOSED, 'the redis store is closed'));
    }
    this.#opening ??= this.#connect().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async addFailure(input: FailureInput): Promise<FailureResult> {
    const key = this.#failureKey(input.jail, input.key);
    const member = `${input.timeMs}:${this.#uniqueId()}:${input.weight}`;
    const [count, reached] = await this.#run('addFailure', (c) =>
      c.pcAddFailure(
        key,
        input.timeMs,
        member,
        input.findTimeMs,
        input.maxRetry,
        input.findTimeMs + FAILURE_TTL_SLACK_MS,
      ),
    );
    return { count: Number(count), reached: reached === 1 };
  }

  async clearFailures(jail: string, key: string): Promise<void> {
    await this.#run('clearFailures', (c) => c.del(this.#failureKey(jail, key)));
  }

  async putDecision(decision: Decision): Promise<Decision> {
    const { expiresAt, banCount, ...rest } = decision;
    const head = JSON.stringify(rest).slice(0, -1);
    const recordHistory = decision.jail !== 'manual' && !decision.dryRun;
    const historyMember = recordHistory ? `${decision.jail}:${decision.startedAt}:${this.#uniqueId()}` : '';
    const keys = this.#keys;
    const stored = await this.#run('putDecision', (c) =>
      c.pcPutDecision(
        keys.bans,
        keys.expiries,
        this.#historyKey(decision.target),
        keys.historyIndex,
        keys.removals,
        decision.target,
        head,
        expiresAt === null ? 'null' : String(expiresAt),
        String(banCount),
        decision.dryRun ? '1' : '0',
        historyMember,
        decision.startedAt,
        this.#historyTtlMs,
        keys.channel,
        this.#banMessageHead,
      ),
    );
    return JSON.parse(stored) as Decision;
  }

  async deleteDecision(target: string): Promise<Decision | undefined> {
    const message = `${this.#unbanMessageHead}${JSON.stringify(target)}}`;
    const removed = await this.#run('deleteDecision', (c) =>
      c.pcDeleteDecision(
        this.#keys.bans,
        this.#keys.expiries,
        this.#keys.removals,
        target,
        this.#keys.channel,
        message,
      ),
    );
    return removed === null ? undefined : (JSON.parse(removed) as Decision);
  }

  /**
   * One script call per chunk of {@link WRITE_CHUNK} decisions (a few in flight on the one
   * connection, so they run in input order), each announced as one `bans` message.
   */
  async putDecisions(decisions: readonly Decision[]): Promise<Decision[]> {
    const keys = this.#keys;
    const ttl = this.#historyTtlMs;
    const stored = await this.#inChunks('putDecisions', decisions.length, (c, start, end) => {
      const chunkKeys: string[] = [keys.bans, keys.expiries, keys.historyIndex, keys.removals];
      const args: (string | number)[] = [keys.channel, this.#bansMessageHead, ttl];
      for (let i = start; i < end; i++) {
        const decision = decisions[i] as Decision;
        const { expiresAt, banCount, ...rest } = decision;
        const recordHistory = decision.jail !== 'manual' && !decision.dryRun;
        chunkKeys.push(this.#historyKey(decision.target));
        args.push(
          decision.target,
          JSON.stringify(rest).slice(0, -1),
          expiresAt === null ? 'null' : String(expiresAt),
          String(banCount),
          decision.dryRun ? '1' : '0',
          recordHistory ? `${decision.jail}:${decision.startedAt}:${this.#uniqueId()}` : '',
          decision.startedAt,
        );
      }
      return c.pcPutDecisions(chunkKeys.length, ...chunkKeys, ...args);
    });
    return stored.map((json) => JSON.parse(json as string) as Decision);
  }

  /** Like `putDecisions`: one script call and one `unbans` message per chunk. */
  async deleteDecisions(targets: readonly string[]): Promise<(Decision | undefined)[]> {
    const keys = this.#keys;
    const removed = await this.#inChunks('deleteDecisions', targets.length, (c, start, end) => {
      const chunk = targets.slice(start, end);
      const message = `${this.#unbansMessageHead}${JSON.stringify(chunk)}}`;
      return c.pcDeleteDecisions(keys.bans, keys.expiries, keys.removals, keys.channel, message, ...chunk);
    });
    return removed.map((json) => (json === null ? undefined : (JSON.parse(json) as Decision)));
  }

  /**
   * Runs `send` for consecutive chunks of `[0, count)`, at most {@link WRITE_CHUNKS_IN_FLIGHT} at
   * once, and concatenates the replies in order. Chunks are sent in order on one connection, so
   * Redis runs them in order. After a failure no further chunk is sent; the first error is thrown
   * once those in flight have settled.
   */
  async #inChunks<T>(
    operation: string,
    count: number,
    send: (client: Client, start: number, end: number) => Promise<T[]>,
  ): Promise<T[]> {
    if (count === 0) return this.#run(operation, async () => []);
    const out = new Array<T>(count);
    let next = 0;
    let failure: { error: unknown } | undefined;
    const lane = async () => {
      while (failure === undefined && next < count) {
        const start = next;
        const end = Math.min(count, start + WRITE_CHUNK);
        next = end;
        try {
          const part = await this.#run(operation, (c) => send(c, start, end));
          for (let i = 0; i < part.length; i++) out[start + i] = part[i] as T;
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    const lanes = Math.min(WRITE_CHUNKS_IN_FLIGHT, Math.ceil(count / WRITE_CHUNK));
    await Promise.all(Array.from({ length: lanes }, lane));
    if (failure !== undefined) throw failure.error;
    return out;
  }

  /**
   * Streams active decisions, longest-lasting first: pages of the expiry index by rank
   * (ZREVRANGE, O(log n) per page), each followed by an HMGET of its decisions, with a few pages
   * requested ahead so Redis works while this process parses. (HSCAN over the hash was measured
   * at twice the server time per decision.)
   *
   * Rank paging from the top is unaffected by new bans (they only shift later pages down: a
   * decision may come twice, which is harmless) and by expiries and purges (they remove from the
   * bottom). Only a decision removed, or moved to an earlier expiry, above the page being read
   * shifts the rest up and could make one be skipped: those writes bump a counter, and when it
   * changed during a pass the load runs again, so nothing active at `nowMs` is missed. Decisions
   * written during the load also reach every instance through pub/sub.
   */
  async loadDecisions(nowMs: number, onBatch: (batch: Decision[]) => void): Promise<number> {
    let delivered = 0;
    for (let pass = 1; ; pass++) {
      const before = await this.#run('loadDecisions', (c) => c.get(this.#keys.removals));
      delivered += await this.#loadPass(nowMs, onBatch);
      const after = await this.#run('loadDecisions', (c) => c.get(this.#keys.removals));
      if (after === before) break;
      if (pass === LOAD_MAX_PASSES) {
        this.#logger.warn(
          { store: 'redis', passes: pass },
          'decisions kept being removed while loading; one removed meanwhile may have hidden another until its next message',
        );
        break;
      }
    }
    return delivered;
  }

  async #loadPass(nowMs: number, onBatch: (batch: Decision[]) => void): Promise<number> {
    const { bans, expiries } = this.#keys;
    // Ranks [0, active) are read without scores (formatting them costs Redis more than the
    // lookup); the tail is then read with scores, in case new bans pushed active ones past it.
    const active = await this.#run('loadDecisions', (c) => c.zcount(expiries, `(${nowMs}`, '+inf'));
    const fetchPage = (start: number, withScores: boolean) =>
      this.#run('loadDecisions', async (c) => {
        const stop = start + LOAD_PAGE - 1;
        let targets: string[];
        let last: boolean;
        if (withScores) {
          const page = await c.zrevrange(expiries, start, stop, 'WITHSCORES');
          targets = [];
          last = page.length < 2 * LOAD_PAGE;
          for (let i = 0; i < page.length; i += 2) {
            const score = page[i + 1] as string;
            if (score !== 'inf' && Number(score) <= nowMs) {
              last = true;
              break;
            }
            targets.push(page[i] as string);
          }
        } else {
          targets = await c.zrevrange(expiries, start, stop);
          last = targets.length < LOAD_PAGE;
        }
        const values = targets.length === 0 ? [] : await c.hmget(bans, ...targets);
        return { values, last };
      });

    const pending: ReturnType<typeof fetchPage>[] = [];
    let next = 0;
    let more = true;
    const request = () => {
      pending.push(fetchPage(next, next + LOAD_PAGE > active));
      next += LOAD_PAGE;
    };
    for (let i = 0; i <= LOAD_PAGES_AHEAD; i++) request();
    let delivered = 0;
    try {
      while (pending.length > 0) {
        const { values, last } = await (pending.shift() as ReturnType<typeof fetchPage>);
        // Only a page read with scores can tell where the active decisions end.
        if (last && next >= active) more = false;
        if (more && pending.length <= LOAD_PAGES_AHEAD) request();
        const batch: Decision[] = [];
        for (const value of values) {
          // null: unbanned between the two reads. The value is re-checked: it may have changed too.
          if (value === null) continue;
          const decision = JSON.parse(value) as Decision;
          if (isActive(decision.expiresAt, nowMs)) batch.push(decision);
        }
        if (batch.length > 0) {
          delivered += batch.length;
          onBatch(batch);
        }
      }
    } catch (error) {
      // Pages still in flight will fail too; nobody awaits them any more.
      for (const page of pending) page.catch(() => {});
      throw error;
    }
    return delivered;
  }

  async countBans(target: string, jail: string | null, sinceMs: number): Promise<number> {
    const key = this.#historyKey(target);
    if (jail === null) return this.#run('countBans', (c) => c.zcount(key, sinceMs, '+inf'));
    const members = await this.#run('countBans', (c) => c.zrangebyscore(key, sinceMs, '+inf'));
    let count = 0;
    for (const member of members) {
      // `<jail>:<time>:<unique>`: the jail is everything before the last two colons.
      const end = member.lastIndexOf(':', member.lastIndexOf(':') - 1);
      if (member.slice(0, end) === jail) count++;
    }
    return count;
  }

  async purge(nowMs: number, historyBeforeMs: number): Promise<void> {
    const keys = this.#keys;
    let removed: number;
    do {
      removed = await this.#run('purge', (c) =>
        c.pcPurgeDecisions(keys.bans, keys.expiries, nowMs, PURGE_BATCH),
      );
    } while (removed === PURGE_BATCH);

    let targets: string[];
    do {
      targets = await this.#run('purge', (c) =>
        c.zrangebyscore(keys.historyIndex, '-inf', `(${historyBeforeMs}`, 'LIMIT', 0, PURGE_BATCH),
      );
      if (targets.length === 0) break;
      const historyKeys = targets.map((target) => this.#historyKey(target));
      await this.#run('purge', (c) =>
        c.pcPurgeHistory(targets.length + 1, keys.historyIndex, ...historyKeys, historyBeforeMs, ...targets),
      );
    } while (targets.length === PURGE_BATCH);
  }

  async getPosition(id: string): Promise<LogPosition | undefined> {
    const raw = await this.#run('getPosition', (c) => c.hget(this.#keys.positions, id));
    if (raw === null) return undefined;
    const { offset, inode, headHash } = JSON.parse(raw) as LogPosition;
    return { offset, inode, headHash };
  }

  async setPosition(id: string, position: LogPosition): Promise<void> {
    const { offset, inode, headHash } = position;
    await this.#run('setPosition', (c) =>
      c.hset(this.#keys.positions, id, JSON.stringify({ offset, inode, headHash })),
    );
  }

  /** Idempotent. Quits both connections (or drops them when Redis is away) and stops reconnecting. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#state = 'closed';
      this.#settleOpen?.(new PortcullisError(ErrorCodes.CLOSED, 'the redis store was closed while opening'));
      this.#closing = this.#release();
    }
    return this.#closing;
  }

  // ── connection lifecycle ──────────────────────────────────────────────────────────────────

  async #connect(): Promise<void> {
    this.#state = 'opening';
    const client = this.#createConnection('portcullis') as Client;
    client.defineCommand('pcAddFailure', { lua: ADD_FAILURE, numberOfKeys: 1 });
    client.defineCommand('pcPutDecision', { lua: PUT_DECISION, numberOfKeys: 5 });
    client.defineCommand('pcDeleteDecision', { lua: DELETE_DECISION, numberOfKeys: 3 });
    client.defineCommand('pcPutDecisions', { lua: PUT_DECISIONS });
    client.defineCommand('pcDeleteDecisions', { lua: DELETE_DECISIONS, numberOfKeys: 3 });
    client.defineCommand('pcPurgeDecisions', { lua: PURGE_DECISIONS, numberOfKeys: 2 });
    client.defineCommand('pcPurgeHistory', { lua: PURGE_HISTORY });
    const subscriber = this.#createConnection('portcullis-sub');
    this.#client = client;
    this.#subscriber = subscriber;

    client.on('error', (error: Error) => this.#onError('command', error));
    subscriber.on('error', (error: Error) => this.#onError('subscriber', error));
    client.on('ready', () => {
      this.#clientReady = true;
      this.#checkUp();
    });
    subscriber.on('ready', () => this.#subscribe(subscriber));
    client.on('close', () => {
      this.#clientReady = false;
      this.#generation++;
      this.#checkDown();
    });
    subscriber.on('close', () => {
      this.#subscriberReady = false;
      this.#checkDown();
    });
    subscriber.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    this.#heartbeat = setInterval(() => {
      this.#probe(client, 'command');
      this.#probe(subscriber, 'subscriber');
      // Only while up: on the way up, #checkUp checks the epoch itself.
      if (this.#state === 'up') this.#checkEpoch();
    }, this.#heartbeatMs);
    this.#heartbeat.unref();

    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settleOpen?.(
          new PortcullisError(
            ErrorCodes.STORE_UNAVAILABLE,
            `could not connect to Redis at ${this.#where} within ${this.#openTimeoutMs} ms` +
              (this.#lastError ? `: ${this.#lastError.message}` : ''),
            {
              cause: this.#lastError,
              help: 'check that Redis is running and reachable, and the store.redis settings',
            },
          ),
        );
      }, this.#openTimeoutMs);
      this.#settleOpen = (error) => {
        this.#settleOpen = undefined;
        clearTimeout(timer);
        if (error === undefined) {
          resolve();
          return;
        }
        if (this.#state !== 'closed') this.#state = 'idle';
        this.#dropConnections();
        reject(error);
      };
    });
  }

  #createConnection(name: string): Redis | Cluster {
    const options = this.#options;
    const redisOptions: RedisOptions = {
      connectionName: name,
      username: options.username,
      password: options.password,
      tls: options.tls ? {} : undefined,
      // Fail fast instead of queueing: a command issued while Redis is away rejects at once,
      // one in flight when the connection drops rejects on the drop (maxRetriesPerRequest 0),
      // and one the server never answers rejects after commandTimeout. Nothing is resent later,
      // because the caller has already been told it failed.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.#commandTimeoutMs,
      connectTimeout: this.#openTimeoutMs,
      // disconnect() arms a timer of this length even when the socket is already gone (as it is
      // between reconnect attempts); ioredis' 2 s default would hold the process open that long.
      disconnectTimeout: 200,
      retryStrategy: retryDelayMs,
      // Resubscribed by hand on 'ready', so 'up' is only emitted once messages flow again.
      autoResubscribe: false,
      disableClientInfo: true,
    };
    if (options.cluster !== undefined) {
      const tls = options.tls || options.cluster.some((seed) => seed.startsWith('rediss:'));
      const clusterOptions: ClusterOptions = {
        redisOptions: { ...redisOptions, tls: tls ? {} : undefined },
        enableOfflineQueue: false,
        clusterRetryStrategy: retryDelayMs,
      };
      return new Cluster(options.cluster.map(parseNode), clusterOptions);
    }
    if (options.sentinels !== undefined) {
      return new Redis({
        ...redisOptions,
        db: options.db,
        sentinels: options.sentinels,
        name: options.sentinelName,
        sentinelRetryStrategy: retryDelayMs,
      });
    }
    const url = new URL(options.url as string);
    const dbInPath = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : undefined;
    return new Redis({
      ...redisOptions,
      host: stripBrackets(url.hostname) || '127.0.0.1',
      port: url.port === '' ? 6379 : Number(url.port),
      username: options.username ?? (url.username === '' ? undefined : decodeURIComponent(url.username)),
      password: options.password ?? (url.password === '' ? undefined : decodeURIComponent(url.password)),
      db: options.db ?? dbInPath,
      tls: options.tls || url.protocol === 'rediss:' ? {} : undefined,
    });
  }

  #subscribe(subscriber: Redis | Cluster): void {
    subscriber.subscribe(this.#keys.channel).then(
      () => {
        // The connection may have dropped again while the reply was on its way.
        if (subscriber.status !== 'ready' || subscriber !== this.#subscriber) return;
        this.#subscriberReady = true;
        this.#checkUp();
      },
      (error: Error) => this.#onError('subscriber', error),
    );
  }

  #probe(connection: Redis | Cluster, name: 'command' | 'subscriber'): void {
    if (connection.status !== 'ready') return;
    connection.ping().catch((error: Error) => {
      if (connection.status !== 'ready' || this.#state === 'closed') return;
      this.#lastError = error;
      this.#logger.warn(
        { store: 'redis', connection: name, err: error.message },
        'Redis did not answer a PING; reconnecting',
      );
      connection.disconnect(true);
    });
  }

  /** Both connections are ready: the epoch is checked, and its answer brings the store up. */
  #checkUp(): void {
    if (!this.#clientReady || !this.#subscriberReady) return;
    if (this.#state === 'opening' || this.#state === 'down') this.#checkEpoch();
  }

  /**
   * Reads the epoch unless a read is in flight (whose answer then decides). SET NX first: when
   * the key is missing this instance proposes a new epoch, and the GET tells which proposal won.
   */
  #checkEpoch(): void {
    const client = this.#client;
    if (client === undefined || this.#epochCheck !== undefined) return;
    clearTimeout(this.#epochRetry);
    const generation = this.#generation;
    const key = this.#keys.epoch;
    this.#epochCheck = Promise.all([client.set(key, newEpoch(), 'NX'), client.get(key)]).then(
      ([, epoch]) => {
        this.#epochCheck = undefined;
        this.#onEpoch(epoch, generation);
      },
      (error: Error) => {
        this.#epochCheck = undefined;
        this.#onEpochFailed(error, generation);
      },
    );
  }

  #onEpoch(epoch: string | null, generation: number): void {
    if (this.#state === 'closed') return;
    // Answered on a connection that has dropped since: ask again on the current one.
    if (generation !== this.#generation) {
      this.#checkUp();
      return;
    }
    // Flushed between the SET and the GET.
    if (epoch === null) {
      this.#retryEpoch();
      return;
    }
    const lost = this.#epoch !== undefined && epoch !== this.#epoch;
    if (this.#state === 'up') {
      if (!lost) return;
      // Flushed under a live connection (FLUSHALL, FLUSHDB, DEL): noticed by the heartbeat.
      this.#epoch = epoch;
      this.#announceLost();
      this.#emitSafely('up');
      return;
    }
    if (this.#state !== 'opening' && this.#state !== 'down') return;
    // The subscriber dropped meanwhile: its 'ready' checks again, and only then is the store up.
    if (!this.#clientReady || !this.#subscriberReady) return;
    this.#epoch = epoch;
    if (this.#state === 'opening') {
      this.#state = 'up';
      this.#logger.info({ store: 'redis', where: this.#where }, 'connected to Redis');
      this.#settleOpen?.();
    } else {
      this.#state = 'up';
      this.#logger.info({ store: 'redis', where: this.#where }, 'Redis is reachable again');
      if (lost) this.#announceLost();
    }
    this.#emitSafely('up');
  }

  #onEpochFailed(error: Error, generation: number): void {
    if (this.#state === 'closed') return;
    // The connection dropped: its next 'ready' checks again.
    if (generation !== this.#generation) {
      this.#checkUp();
      return;
    }
    // While up, a dead link is the PINGs' business; the next heartbeat checks again.
    if (this.#state === 'up') {
      this.#logger.debug({ store: 'redis', err: error.message }, 'could not read the store epoch');
      return;
    }
    if (this.#state === 'opening' && error.name === 'ReplyError') {
      this.#settleOpen?.(
        new PortcullisError(
          ErrorCodes.STORE_UNAVAILABLE,
          `Redis at ${this.#where} refused to read or create ${this.#keys.epoch}: ${error.message}`,
          {
            cause: error,
            help: 'the store.redis user needs read and write access to every key under the prefix',
          },
        ),
      );
      return;
    }
    this.#logger.warn(
      { store: 'redis', where: this.#where, err: error.message },
      'could not read the store epoch; trying again',
    );
    this.#retryEpoch();
  }

  #retryEpoch(): void {
    clearTimeout(this.#epochRetry);
    this.#epochRetry = setTimeout(() => {
      if (this.#state === 'up') this.#checkEpoch();
      else this.#checkUp();
    }, EPOCH_RETRY_MS).unref();
  }

  #announceLost(): void {
    this.#logger.warn(
      { store: 'redis', where: this.#where, epoch: this.#epoch },
      'Redis came back without the data this instance saw (restarted empty, flushed or failed over); asking for what this instance enforces to be written back',
    );
    this.#emitSafely('lost');
  }

  /**
   * A throwing listener must not unwind into ioredis' reply parser or leave a promise rejected
   * unseen, nor stop the events that follow: rethrown as an uncaught exception, as a plain
   * EventEmitter would.
   */
  #emitSafely<K extends keyof StoreEventMap>(event: K, ...args: StoreEventMap[K]): void {
    try {
      (this.emit as (event: K, ...args: StoreEventMap[K]) => boolean)(event, ...args);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }

  #checkDown(): void {
    if (this.#state !== 'up') return;
    this.#state = 'down';
    const error = new PortcullisError(
      ErrorCodes.STORE_UNAVAILABLE,
      `lost the connection to Redis at ${this.#where}`,
      {
        cause: this.#downCause(),
      },
    );
    this.#logger.warn(
      { store: 'redis', where: this.#where, err: this.#lastError?.message },
      'Redis is unreachable; reconnecting',
    );
    this.emit('down', error);
  }

  /**
   * Why the store is down: the last connection error, or, when Redis closed a connection cleanly
   * (a shutdown sends no error; the subscriber's close may also come before the client's), that.
   */
  #downCause(): Error {
    return this.#lastError ?? new Error(`a connection to Redis at ${this.#where} closed`);
  }

  #onError(connection: 'command' | 'subscriber', error: Error): void {
    this.#lastError = error;
    // ioredis reports every failed reconnect attempt; 'down' already told the operator once.
    this.#logger.debug({ store: 'redis', connection, err: error.message }, 'Redis connection error');
    // A reply error while connecting (wrong password, bad db index) will not fix itself by retrying.
    if (this.#state === 'opening' && error.name === 'ReplyError') {
      this.#settleOpen?.(
        new PortcullisError(
          ErrorCodes.STORE_UNAVAILABLE,
          `Redis at ${this.#where} refused the connection: ${error.message}`,
          {
            cause: error,
            help: 'check store.redis username, password and db',
          },
        ),
      );
    }
  }

  #onMessage(channel: string, raw: string): void {
    if (channel !== this.#keys.channel) return;
    let parsed: {
      from?: unknown;
      type?: unknown;
      decision?: unknown;
      target?: unknown;
      decisions?: unknown;
      targets?: unknown;
    };
    try {
      parsed = JSON.parse(raw);
    } catch {
      this.#logger.warn({ store: 'redis', channel }, 'ignored a malformed message');
      return;
    }
    if (parsed.from === this.instanceId) return;
    const messages: StoreMessage[] = [];
    let skipped = 0;
    if (parsed.type === 'ban' && isDecisionLike(parsed.decision)) {
      messages.push({ type: 'ban', decision: parsed.decision });
    } else if (parsed.type === 'unban' && typeof parsed.target === 'string') {
      messages.push({ type: 'unban', target: parsed.target });
    } else if (parsed.type === 'bans' && Array.isArray(parsed.decisions)) {
      for (const decision of parsed.decisions as unknown[]) {
        if (isDecisionLike(decision)) messages.push({ type: 'ban', decision });
        else skipped++;
      }
    } else if (parsed.type === 'unbans' && Array.isArray(parsed.targets)) {
      for (const target of parsed.targets as unknown[]) {
        if (typeof target === 'string') messages.push({ type: 'unban', target });
        else skipped++;
      }
    } else {
      this.#logger.warn({ store: 'redis', channel }, 'ignored a message of unknown shape');
      return;
    }
    if (skipped > 0) {
      this.#logger.warn({ store: 'redis', channel, skipped }, 'ignored entries of unknown shape in a batch');
    }
    for (const message of messages) this.#emitSafely('message', message);
  }

  /** Disconnects both connections at once: no graceful QUIT, no reconnect afterwards. */
  #dropConnections(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#epochRetry);
    const connections = [this.#client, this.#subscriber];
    this.#client = undefined;
    this.#subscriber = undefined;
    this.#clientReady = false;
    this.#subscriberReady = false;
    for (const connection of connections) connection?.disconnect();
  }

  async #release(): Promise<void> {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#epochRetry);
    const connections = [this.#client, this.#subscriber].filter((c) => c !== undefined);
    this.#client = undefined;
    this.#subscriber = undefined;
    this.#clientReady = false;
    this.#subscriberReady = false;
    await Promise.all(connections.map((connection) => quit(connection, this.#commandTimeoutMs)));
  }

  // ── commands ──────────────────────────────────────────────────────────────────────────────

  async #run<T>(operation: string, command: (client: Client) => Promise<T>): Promise<T> {
    const client = this.#client;
    if (client === undefined) {
      if (this.#state === 'closed') throw new PortcullisError(ErrorCodes.CLOSED, 'the redis store is closed');
      throw new PortcullisError(
        ErrorCodes.STORE_UNAVAILABLE,
        'the redis store is not open; call open() first',
      );
    }
    if (this.#state === 'down' && this.#clientReady) {
      // Reconnected, but not yet known to hold the data this instance saw (or the subscriber is
      // still away): a reload now could read an emptied store before 'lost' says so.
      throw new PortcullisError(
        ErrorCodes.STORE_UNAVAILABLE,
        `Redis ${operation} failed: Redis at ${this.#where} is reconnecting (not ready again yet)`,
        { cause: this.#downCause(), help: 'portcullis emits up once the store is ready again' },
      );
    }
    try {
      return await command(client);
    } catch (error) {
      if (this.#state === 'closed') {
        throw new PortcullisError(ErrorCodes.CLOSED, 'the redis store is closed', { cause: error });
      }
      const reason = error instanceof Error ? error.message : String(error);
      throw new PortcullisError(ErrorCodes.STORE_UNAVAILABLE, `Redis ${operation} failed: ${reason}`, {
        cause: error,
        help: `check that Redis at ${this.#where} is running and reachable; portcullis reconnects on its own`,
      });
    }
  }

  #failureKey(jail: string, key: string): string {
    // Jail names are encoded so a ':' in one cannot make two (jail, key) pairs collide.
    return `${this.keyPrefix}fail:${encodeURIComponent(jail)}:${key}`;
  }

  #historyKey(target: string): string {
    return `${this.keyPrefix}hist:${target}`;
  }

  #uniqueId(): string {
    this.#memberSeq = (this.#memberSeq + 1) % Number.MAX_SAFE_INTEGER;
    return `${this.#memberSeed}${this.#memberSeq.toString(36)}`;
  }
}

/** QUIT when the connection is up (pending replies arrive first), otherwise just stop reconnecting. */
async function quit(connection: Redis | Cluster, timeoutMs: number): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status !== 'ready') {
    // No socket is open while reconnecting; disconnect() clears the pending reconnect timer.
    const live = connection.status === 'connecting' || connection.status === 'connect';
    const ended = live ? waitForEnd(connection, timeoutMs) : Promise.resolve();
    connection.disconnect();
    await ended;
    return;
  }
  const ended = waitForEnd(connection, timeoutMs);
  try {
    await connection.quit();
  } catch {
    connection.disconnect();
  }
  await ended;
}

/** A new store epoch: when it was made (base 36 ms) and 72 random bits, e.g. `mbx3k2q1.Zq0...`. */
function newEpoch(): string {
  return `${Date.now().toString(36)}.${randomBytes(9).toString('base64url')}`;
}

/** Enough of a decision for a guard to enforce it: a target and an expiry (`null`: permanent). */
function isDecisionLike(value: unknown): value is Decision {
  if (typeof value !== 'object' || value === null) return false;
  const { target, expiresAt } = value as { target?: unknown; expiresAt?: unknown };
  return typeof target === 'string' && (expiresAt === null || typeof expiresAt === 'number');
}

function waitForEnd(connection: Redis | Cluster, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      connection.disconnect();
      resolve();
    }, timeoutMs);
    connection.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function validate(options: RedisStoreOptions): void {
  const problems: string[] = [];
  const modes = (['url', 'sentinels', 'cluster'] as const).filter((name) => options[name] !== undefined);
  if (modes.length !== 1) {
    problems.push(
      `store.redis: set exactly one of url, sentinels or cluster (got ${modes.length === 0 ? 'none' : modes.join(' and ')})`,
    );
  }
  if (options.url !== undefined && !isRedisUrl(options.url)) {
    problems.push(
      `store.redis.url: expected a redis:// or rediss:// URL, got ${JSON.stringify(redact(options.url))}`,
    );
  }
  if (options.sentinels !== undefined) {
    if (!Array.isArray(options.sentinels) || options.sentinels.length === 0) {
      problems.push('store.redis.sentinels: expected at least one { host, port }');
    } else {
      options.sentinels.forEach((s, i) => {
        if (typeof s?.host !== 'string' || s.host === '' || !isPort(s.port)) {
          problems.push(`store.redis.sentinels[${i}]: expected { host, port }, got ${JSON.stringify(s)}`);
        }
      });
    }
    if (typeof options.sentinelName !== 'string' || options.sentinelName === '') {
      problems.push('store.redis.sentinelName: required with sentinels (the master group name)');
    }
  }
  if (options.cluster !== undefined) {
    if (!Array.isArray(options.cluster) || options.cluster.length === 0) {
      problems.push('store.redis.cluster: expected at least one seed node URL');
    } else {
      options.cluster.forEach((seed, i) => {
        if (!isRedisUrl(seed)) {
          problems.push(
            `store.redis.cluster[${i}]: expected a redis:// or rediss:// URL, got ${JSON.stringify(redact(seed))}`,
          );
        }
      });
    }
    if (options.db !== undefined && options.db !== 0) {
      problems.push(`store.redis.db: Redis Cluster has only database 0, got ${options.db}`);
    }
  }
  if (options.db !== undefined && (!Number.isInteger(options.db) || options.db < 0)) {
    problems.push(`store.redis.db: expected a database index (0, 1, ...), got ${options.db}`);
  }
  for (const name of ['commandTimeoutMs', 'openTimeoutMs', 'heartbeatMs', 'historyTtlMs'] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
      problems.push(`store.redis.${name}: expected a positive number of milliseconds, got ${value}`);
    }
  }
  if (options.prefix !== undefined && typeof options.prefix !== 'string') {
    problems.push(`store.redis.prefix: expected a string, got ${JSON.stringify(options.prefix)}`);
  }
  if (
    options.instanceId !== undefined &&
    (typeof options.instanceId !== 'string' || options.instanceId === '')
  ) {
    problems.push('store.redis.instanceId: expected a non-empty string');
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

function isRedisUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}

function isPort(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;
}

/** A URL without its password, for messages and logs. */
function redact(value: string): string {
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return '<unparsable URL>';
  }
}

function describeServer(options: RedisStoreOptions): string {
  if (options.url !== undefined) return redact(options.url);
  if (options.sentinels !== undefined) {
    const list = options.sentinels.map((s) => `${s.host}:${s.port}`).join(',');
    return `sentinels ${list} (master "${options.sentinelName}")`;
  }
  return `cluster ${(options.cluster ?? []).map(redact).join(',')}`;
}

function parseNode(seed: string): { host: string; port: number } {
  const url = new URL(seed);
  return { host: stripBrackets(url.hostname), port: url.port === '' ? 6379 : Number(url.port) };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
