import { formatDuration } from '../../core/duration.js';
import { showableMatch } from '../../core/match-memory.js';
import type { Decision } from '../../core/types.js';

/** What one message announces: the bans (or unbans) collected since the last one of its group. */
export interface Notification {
  readonly event: 'ban' | 'unban';
  /** Every decision of the message, in arrival order (renderers list the first `maxListed`). */
  readonly decisions: readonly Decision[];
  /** Per jail, how many. */
  readonly jails: Readonly<Record<string, number>>;
  /** When the first of them arrived and when the message was made, ms since the epoch. */
  readonly firstAtMs: number;
  readonly madeAtMs: number;
  /** This host (`os.hostname()`). */
  readonly instance: string;
  /** How many of `decisions` a renderer lists. */
  readonly maxListed: number;
}

/** Builds a notification from decisions (at least one). */
export function notificationOf(
  event: 'ban' | 'unban',
  decisions: readonly Decision[],
  times: { firstAtMs: number; madeAtMs: number },
  instance: string,
  maxListed: number,
): Notification {
  const jails: Record<string, number> = {};
  for (const decision of decisions) jails[decision.jail] = (jails[decision.jail] ?? 0) + 1;
  return Object.freeze({ event, decisions, jails, ...times, instance, maxListed });
}

/** The failures a jail's reason counts (`5 failures within 10m`), or `null`. */
export function failuresOf(decision: Decision): number | null {
  const match = /^(\d+) failures?\b/.exec(decision.reason);
  return match === null ? null : Number(match[1]);
}

/** `1h`, or `permanent`. */
export function banLength(decision: Decision): string {
  return decision.expiresAt === null ? 'permanent' : formatDuration(decision.expiresAt - decision.startedAt);
}

/** ISO time of the ban's end, or `never`. */
export function banEnd(decision: Decision): string {
  return decision.expiresAt === null ? 'never' : new Date(decision.expiresAt).toISOString();
}

/** `sshd 998, web 2`, largest first. */
export function jailCounts(notification: Notification): string {
  return Object.entries(notification.jails)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([jail, n]) => `${jail} ${n}`)
    .join(', ');
}

/** The decisions a renderer lists, and how many it leaves out. */
export function listed(notification: Notification): { shown: readonly Decision[]; more: number } {
  const shown = notification.decisions.slice(0, notification.maxListed);
  return { shown, more: notification.decisions.length - shown.length };
}

/**
 * One line that says it all, the subject of a mail and the text of an SMS:
 * `banned 203.0.113.9 (sshd, 5 failures) for 1h`, `1000 bans in 10m (sshd 998, web 2)`,
 * `unbanned 203.0.113.9 (sshd)`. A dry-run decision is a "would ban".
 */
export function summaryOf(notification: Notification): string {
  const { decisions, event } = notification;
  const first = decisions[0] as Decision;
  if (decisions.length === 1) {
    if (event === 'unban') return `unbanned ${first.target} (${first.jail})`;
    const failures = failuresOf(first);
    const detail =
      failures === null
        ? first.jail
        : `${first.jail}, ${failures} ${failures === 1 ? 'failure' : 'failures'}`;
    const verb = first.dryRun ? 'would ban' : 'banned';
    return first.expiresAt === null
      ? `${verb} ${first.target} (${detail}) permanently`
      : `${verb} ${first.target} (${detail}) for ${banLength(first)}`;
  }
  const noun = event === 'unban' ? 'unbans' : decisions.every((d) => d.dryRun) ? 'would-bans' : 'bans';
  const spanMs = notification.madeAtMs - notification.firstAtMs;
  const span = spanMs >= 1000 ? ` in ${formatDuration(Math.round(spanMs / 1000) * 1000)}` : '';
  return `${decisions.length} ${noun}${span} (${jailCounts(notification)})`;
}

/** One plain-text line per decision: `203.0.113.9  sshd  5 failures within 10m  1h until 2026-...  #2  host:123`. */
export function decisionLine(decision: Decision, event: 'ban' | 'unban'): string {
  if (event === 'unban') return `${decision.target}  ${decision.jail}  ${decision.reason}`;
  const parts = [
    decision.target,
    decision.jail,
    decision.reason,
    decision.expiresAt === null ? 'permanent' : `${banLength(decision)} until ${banEnd(decision)}`,
  ];
  if (decision.banCount > 1) parts.push(`ban #${decision.banCount}`);
  if (decision.dryRun) parts.push('dry run: not enforced');
  if (decision.origin !== '') parts.push(`by ${decision.origin}`);
  return parts.join('  ');
}

/** A decision as JSON bodies carry it (times as ISO strings). */
export function decisionJson(decision: Decision): Record<string, unknown> {
  return {
    target: decision.target,
    jail: decision.jail,
    reason: decision.reason,
    failures: failuresOf(decision),
    startedAt: new Date(decision.startedAt).toISOString(),
    expiresAt: decision.expiresAt === null ? null : new Date(decision.expiresAt).toISOString(),
    banLength: banLength(decision),
    banCount: decision.banCount,
    dryRun: decision.dryRun,
    origin: decision.origin,
  };
}

/** Cuts `text` to `max` characters, ending with `…` when cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** How many matches a chat message shows per decision, and how much of each. */
export const CHAT_MATCHES = Object.freeze({ count: 5, chars: 300 });

/**
 * The newest `count` matches of a decision (fail2ban's `<matches>`), oldest first, each one line
 * of plain characters ({@link showableMatch}) cut to `chars`, and how many older ones are left
 * out. A match is the attacker's text: each format still escapes it for its own markup.
 */
export function shownMatches(
  decision: Decision,
  count: number,
  chars: number,
): { lines: string[]; more: number } {
  const matches = Array.isArray(decision.matches) ? decision.matches : [];
  const from = Math.max(0, matches.length - count);
  const lines: string[] = [];
  for (let i = from; i < matches.length; i++) lines.push(clip(showableMatch(String(matches[i])), chars));
  return { lines, more: from };
}

/** The decision without its matches (the same object when it has none). */
export function withoutMatches(decision: Decision): Decision {
  if (decision.matches === undefined) return decision;
  const { matches: _dropped, ...rest } = decision;
  return rest;
}
