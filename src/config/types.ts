import type { ActionSpec } from '../actions/registry.js';
import type { FieldFilterSpec } from '../detection/filters/fields/filter-schema.js';
import type { HttpFilterSpec } from '../detection/filters/http/filter-schema.js';
import type { AdminConfig } from './admin.js';
import type { ControlConfig } from './control.js';
import type { PacketWatcherConfig } from './packets.js';
import type { TcpListenerConfig } from './tcp.js';

export type { TcpListenerConfig };

/** The validated, frozen configuration. Times are milliseconds; `-1` means permanent. */
export interface PortcullisConfig {
  /** The file it was read from, or `null` for a config object. */
  readonly file: string | null;
  readonly store: StoreConfig;
  readonly onStoreError: 'local' | 'deny' | 'stop';
  /** How long ban history counts for `bantime_increment`. */
  readonly dbPurgeAgeMs: number;
  readonly log: { readonly level: string };
  readonly jails: readonly JailConfig[];
  /**
   * The action instances some jail uses (`nftables`, `ssh-fw`, `nftables-sshd`), each once even
   * when several jails list it. Absent in hand-built configs: none.
   */
  readonly actions?: readonly ActionSpec[];
  /** `defaults.actions`: besides every firewall action, these get bans of no configured jail (`manual`). */
  readonly defaultActions?: readonly ActionSpec[];
  /** HTTP surfaces (middleware, proxy). Absent in hand-built configs: `DEFAULTS.http` applies. */
  readonly http?: HttpConfig;
  /** The reverse proxy (`proxy:`); absent when the file has none. */
  readonly proxy?: ProxyConfig;
  /** TCP guard listeners (`tcp:`), in file order; absent or empty when the file has none. */
  readonly tcp?: readonly TcpListenerConfig[];
  /** Packet watchers (`packets:`), in file order; absent when the file has none. */
  readonly packets?: readonly PacketWatcherConfig[];
  /** The admin listener (`admin:`); absent when the file has none (off). */
  readonly admin?: AdminConfig;
  /** The control socket (`control:`); `null` when off, absent for the defaults (see `controlOf`). */
  readonly control?: ControlConfig | null;
  /**
   * Settings that are valid but probably not what was meant, one line each, named like errors
   * (`portcullis.yaml: defaults.ignoreip.2: 10.1.2.3/8 means 10.0.0.0/8`). `check-config` prints
   * them and `run` logs them. Empty when there is nothing to say.
   */
  readonly warnings: readonly string[];
}

/** A prepared response for a banned client. */
export interface DenyResponseConfig {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

/** One proxy listener, resolved. */
export interface ProxyListenConfig {
  /** `0.0.0.0:8080`, `[::]:8080` (IPv6 only), `:8080` (every interface, dual stack). */
  readonly address: string;
  /** Every connection must open with a PROXY protocol v1/v2 header. */
  readonly proxyProtocol: boolean;
  /** Terminate TLS with `proxy.tls`. */
  readonly tls: boolean;
}

/** The `proxy:` section, resolved (every default applied). Times are milliseconds. */
export interface ProxyConfig {
  readonly listen: readonly ProxyListenConfig[];
  /** Upstream URLs (`http://127.0.0.1:3000`), used round-robin. */
  readonly targets: readonly string[];
  /** `proxy.trusted_proxies`, else `http.trusted_proxies`. */
  readonly trustedProxies: readonly string[];
  /** `drop`: close a banned client's connection at accept; else the response it gets. */
  readonly deny: 'drop' | DenyResponseConfig;
  readonly headerTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Between two reads of a request body; 408 after. */
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly proxyProtocolTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly maxHeaderSize: number;
  /** Request header fields accepted; more is answered 431. */
  readonly maxHeaders: number;
  /** 0: unlimited. */
  readonly maxConnectionsPerIp: number;
  readonly maxSockets: number;
  /** Requests one client may have at the upstream at once (over every target); 503 past it. */
  readonly maxUpstreamPerIp: number;
  /** Request body bytes read before an upstream connection is taken. */
  readonly bodyBufferSize: number;
  readonly targetDownMs: number;
  readonly preserveHost: boolean;
  /** Absolute paths of the PEM files; `null` without TLS. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  readonly accessLog: {
    readonly path: string;
    readonly format: 'combined' | 'json';
    readonly flushIntervalMs: number;
  } | null;
}

/** The `http:` section, resolved. */
export interface HttpConfig {
  /** CIDRs whose forwarding header is believed; empty: the socket peer is the client. */
  readonly trustedProxies: readonly string[];
  readonly forwardedHeader: 'x-forwarded-for' | 'forwarded' | 'x-real-ip';
  /** The body is `deny.body`, or the contents of `deny.page`. */
  readonly deny: DenyResponseConfig;
}

export type StoreConfig =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'memory' }
  | ({ readonly kind: 'redis' } & RedisConfig);

export interface RedisConfig {
  readonly url?: string;
  readonly sentinels?: readonly { host: string; port: number }[];
  readonly sentinelName?: string;
  readonly cluster?: readonly string[];
  readonly username?: string;
  readonly password?: string;
  readonly db?: number;
  readonly tls?: boolean;
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  /** Absolute path of the outage outbox file; `null`: kept in memory. */
  readonly outbox: string | null;
}

export type SourceConfig =
  | { readonly kind: 'api' }
  | { readonly kind: 'http' }
  /** A TCP guard jail: the connections of the `tcp:` listener named `listener`. */
  | { readonly kind: 'socket'; readonly listener: string }
  | {
      readonly kind: 'log';
      readonly paths: readonly string[];
      /** Where a file without a saved position is read from; absent means `end`. */
      readonly start?: 'end' | 'beginning';
    }
  | { readonly kind: 'command'; readonly argv: readonly string[] }
  /** A packet watcher jail: the events of the `packets:` watcher named `watcher`. */
  | { readonly kind: 'packets'; readonly watcher: string };

export interface BanTimeIncrementConfig {
  readonly factor: number;
  readonly multipliers: readonly number[] | null;
  /** `null`: no upper bound. */
  readonly maxTimeMs: number | null;
  readonly rndTimeMs: number;
  readonly overallJails: boolean;
}

export interface JailConfig {
  readonly name: string;
  readonly enabled: boolean;
  readonly source: SourceConfig;
  readonly filter: string | Readonly<Record<string, unknown>> | null;
  readonly maxRetry: number;
  readonly findTimeMs: number;
  /** `-1`: permanent. */
  readonly banTimeMs: number;
  /** `null` when escalation is off. */
  readonly banTimeIncrement: BanTimeIncrementConfig | null;
  readonly ignoreIp: readonly string[];
  readonly ignoreSelf: boolean;
  readonly dryRun: boolean;
  readonly ipv6Prefix: number;
  /** The action instances this jail's bans go to (its own list, else `defaults.actions`). */
  readonly actions: readonly ActionSpec[];
  /**
   * http jails: the filter to apply, validated (an `HttpFilterSpec`): the inline object, or the
   * named rule's filter. `null`/absent: the jail counts only `fail()` reports (and its rate).
   */
  readonly httpFilter?: HttpFilterSpec | null;
  /** socket jails (`source: { socket: NAME }`): the validated filter over connection events. */
  readonly socketFilter?: FieldFilterSpec | null;
  /** packets jails (`source: { packets: NAME }`): the validated filter over packet events. */
  readonly packetFilter?: FieldFilterSpec | null;
  /** http jails: the request rate (`rate: 100/10s`); `null`/absent for none. */
  readonly rate?: { readonly points: number; readonly durationMs: number } | null;
  /** log jails: the filter's mode (`aggressive`); `null`/absent: the filter's default. */
  readonly mode?: string | null;
  /** log jails: strftime-style date pattern instead of detection; `null`/absent: detect. */
  readonly datePattern?: string | null;
  /** log jails: zone of zone-less times (`UTC`, `+0100`, `Europe/Berlin`); `null`/absent: the host's. */
  readonly logTimezone?: string | null;
  /** log jails: lines are cut to this many bytes before matching. Default 16384. */
  readonly maxLineLength?: number;
  /** log jails: DNS names in place of an address (`no`, `warn`, `yes`); `null`/absent: `no`. */
  readonly useDns?: 'no' | 'warn' | 'yes' | null;
}
