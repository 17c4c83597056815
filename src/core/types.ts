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
