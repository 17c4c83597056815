import type { Decision } from '../core/types.js';

/**
 * What an operator can ask of a running daemon, independent of the transport: the control socket
 * (`portcullis status`, ...) and the admin HTTP API both call this. Built by `createControl` from
 * the running instance (guard, sources, actions). Every answer is plain JSON-able data.
 */

/** fail2ban's four numbers, per jail, plus what the jail watches. */
export interface JailStatus {
  name: string;
  /** `log`, `http`, `socket`, `packets`. */
  source: string;
  dryRun: boolean;
  /** Clients with failures inside the jail's findtime right now (this instance's view). */
  currentlyFailed: number;
  /** Failures counted since start. */
  totalFailed: number;
  /** Bans of this jail in force now. */
  currentlyBanned: number;
  /** Bans of this jail since start (decided here or received). */
  totalBanned: number;
  maxretry: number;
  findtimeMs: number;
  bantimeMs: number;
}

export interface StatusReport {
  version: string;
  pid: number;
  instanceId: string;
  startedAt: number;
  uptimeMs: number;
  store: { kind: string; available: boolean; pendingWrites: number };
  jails: JailStatus[];
  /** Per running source (`log:sshd`, `proxy`, `tcp:ssh`): its stats object. */
  sources: Record<string, object>;
  /** Per action name: its counters. */
  actions: Record<string, object>;
  activeBans: number;
}

export interface JailReport extends JailStatus {
  /** Files / command followed (log jails), listeners (tcp/proxy), interface (packets). */
  watching: string[];
  bans: Decision[];
}

/** One entry of `portcullis banned IP`: which jails ban it and until when. */
export interface BannedAnswer {
  ip: string;
  banned: boolean;
  decisions: Decision[];
}

export interface DecisionFilter {
  jail?: string;
  /** An address: decisions whose target covers it. */
  ip?: string;
  limit?: number;
}

/** What `reload` did. */
export interface ReloadAnswer {
  /** What was re-read: always the whole configuration in this version. */
  scope: 'all';
  /** The jail asked for, or `null` for all. */
  requested: string | null;
  /** The jails in force after the reload. */
  jails: string[];
}

/** What the event feed carries (admin SSE, dashboard). */
export type ControlEvent =
  | { type: 'failure'; time: number; jail: string; ip: string; failures: number; maxretry: number }
  | { type: 'ban'; time: number; decision: Decision; origin: string }
  | { type: 'unban'; time: number; target: string; jail: string; reason: string };

export interface Control {
  /** `config`: the absolute path of the daemon's configuration file (`null` for a config object). */
  ping(): { pong: true; pid: number; version: string; config?: string | null };
  status(): StatusReport;
  /** Rejects with PC_ERR_UNKNOWN_JAIL for a jail not in the config. */
  jail(name: string): Promise<JailReport>;
  decisions(filter?: DecisionFilter): Promise<Decision[]>;
  banned(ip: string): Promise<BannedAnswer>;
  /** `force`: a range wider than /8 (IPv4) or /32 (IPv6), or written with bits past its prefix. */
  ban(
    target: string,
    options: { jail?: string; bantimeMs?: number; reason?: string; force?: boolean },
  ): Promise<Decision>;
  /** `jail` given: only that jail's ban of the target. Resolves how many decisions were lifted. */
  unban(target: string, options?: { jail?: string }): Promise<number>;
  unbanAll(options?: { jail?: string }): Promise<number>;
  /**
   * Whole config, or (when `jail` is given) only that jail is re-read. The engine reloads the
   * whole file either way; the answer says so (`scope: 'all'`). Rejects with
   * PC_ERR_CONFIG_INVALID (the running configuration is kept) or PC_ERR_UNKNOWN_JAIL.
   */
  reload(jail?: string): Promise<ReloadAnswer>;
  /** Graceful stop of the daemon (what SIGTERM does). Resolves once the stop has begun. */
  stop(): Promise<void>;
  /** Subscribes to the live event feed; returns the unsubscribe function. */
  subscribe(listener: (event: ControlEvent) => void): () => void;
}
