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
}

export type SourceConfig =
  | { readonly kind: 'api' }
  | { readonly kind: 'http' }
  | { readonly kind: 'socket' }
  | { readonly kind: 'log'; readonly paths: readonly string[] }
  | { readonly kind: 'command'; readonly argv: readonly string[] };

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
  readonly actions: readonly (string | Readonly<Record<string, unknown>>)[];
}
