/** A ban (or, in a dry-run jail, a "would ban"): the only thing enforcement reads. */
export interface Decision {
  /** What is banned: a canonical address (`192.0.2.7`) or network (`2001:db8::/64`, `10.0.0.0/8`). */
  target: string;
  /** The jail that decided, or `manual` for a ban made through the API or CLI. */
  jail: string;
  /** Human-readable cause, e.g. `5 failures in 10m`. */
  reason: string;
  /** Start of the ban, ms since the epoch. */
  startedAt: number;
  /** End of the ban, ms since the epoch; `null` for a permanent ban. */
  expiresAt: number | null;
  /** 1 for a first ban, 2 for the second within `dbpurgeage`, ... (drives `bantime_increment`). */
  banCount: number;
  /** A dry-run jail's decision: recorded and announced, never enforced. */
  dryRun: boolean;
  /** Which instance decided (`hostname:pid`), for the operator reading the store. */
  origin: string;
  /**
   * What the client was seen doing (fail2ban's `<matches>`): the last matched log lines, requests
   * or connection events, oldest first, each one line of at most 1 KiB. Only on the announcement
   * of a ban decided here (what actions receive); never stored nor sent to other instances.
   */
  matches?: readonly string[];
}

/** One observation about one client, as sources hand it to jails. */
export interface ClientEvent {
  /** Canonical client address. */
  ip: string;
  /** When it happened, ms since the epoch (a log line's own time, not the read time). */
  timeMs: number;
  /** Labelled fields: `status`, `path`, `user`, ... */
  fields: Readonly<Record<string, string | number | undefined>>;
}

/** True when a decision with this expiry still holds at `nowMs`. */
export function isActive(expiresAt: number | null, nowMs: number): boolean {
  return expiresAt === null || expiresAt > nowMs;
}

/** What the local ban table knows about a banned target: enough to enforce and to say until when. */
export interface BanEntry {
  target: string;
  jail: string;
  /** ms since the epoch; `Infinity` for a permanent ban. */
  expiresAt: number;
}

/** Labelled fields of an event, for filters, reasons and logs (`user`, `path`, `status`, ...). */
export type EventFields = Readonly<Record<string, string | number | undefined>>;

/** What `report()` concluded. */
export type ReportOutcome =
  /** Counted; not (yet) enough failures for a ban. */
  | 'counted'
  /** This failure reached `maxretry`: the client is now banned. */
  | 'banned'
  /** A dry-run jail reached `maxretry`: a "would ban" decision was recorded. */
  | 'would-ban'
  /** The client is in `ignoreip` / `ignoreself`. */
  | 'ignored'
  /** The client is already banned (or would-banned in a dry-run jail); failures are not counted. */
  | 'already-banned'
  /** The address did not parse; counted in `stats.invalidIps`. */
  | 'invalid-ip'
  /** The store is unreachable and `on_store_error` is `stop`. */
  | 'not-counted';

/** The answer to one `report()`. */
export interface ReportResult {
  outcome: ReportOutcome;
  /** Failures inside `findtime` after this one, when counted. */
  failures?: number;
  decision?: Decision;
}

/** One failure, as a source reports it. */
export interface ReportOptions {
  /** The jail to count in. Required. */
  jail: string;
  /** Failures this event counts for. Default 1. */
  weight?: number;
  /** Event time, ms since the epoch (a log line's own time). Default now. */
  timeMs?: number;
  /** Fields for the reason and the logs (`user`, `path`, ...). */
  fields?: EventFields;
  /**
   * What was seen, for the ban's announcement (`<matches>`): the log line; for HTTP
   * `METHOD URL STATUS "UA"`. Kept only for jails with a command, email or webhook action.
   */
  match?: string;
}

/** A ban made by hand (CLI, API, library). */
export interface BanOptions {
  /** Jail to record the ban under. Default `manual`. */
  jail?: string;
  /** `1h`, ms as a number, or `-1` for permanent. Default the jail's bantime (manual: 1h). */
  duration?: string | number;
  reason?: string;
  /**
   * Bans a range wider than /8 (IPv4) or /32 (IPv6), or one written with bits set past its prefix
   * (`192.0.2.7/0` is `0.0.0.0/0`: everyone). Refused without it, as the typo it usually is.
   */
  force?: boolean;
}

/** Where a ban or unban came from. */
export type DecisionSource = 'local' | 'remote' | 'restore';

/** A ban that stopped being enforced here. */
export interface UnbanEvent {
  target: string;
  jail: string;
  /** `expired`: bantime ran out; `unban`: `unban()` here; `remote`: another instance unbanned. */
  reason: 'expired' | 'unban' | 'remote';
}

/** One failure to count in a sliding window (a store's or the local fallback's). */
export interface FailureInput {
  jail: string;
  /** Client key: canonical IPv4, or the IPv6 /prefix network. */
  key: string;
  /** Time of the failure, ms since the epoch. */
  timeMs: number;
  /** How many failures this event counts for (default 1). */
  weight: number;
  findTimeMs: number;
  maxRetry: number;
}

export interface FailureResult {
  /** Failures inside the window after this one (before the reset, when reached). */
  count: number;
  /** True when this failure reached `maxRetry`; the counter has been cleared. */
  reached: boolean;
}
