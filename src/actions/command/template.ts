import { parseCidr } from '../../core/ip.js';
import { showableMatch } from '../../core/match-memory.js';
import type { Decision } from '../../core/types.js';

/**
 * Pure builders of what the command action runs: argv lists and environments. Nothing here runs
 * a process, and nothing ever builds a shell string: each template element becomes exactly one
 * argv element, whatever the substituted values contain.
 */

/** The tags an argument may contain, each also passed as `PORTCULLIS_<TAG>` in the environment. */
export const COMMAND_TAGS = [
  'ip',
  'family',
  'jail',
  'bantime',
  'bancount',
  'failures',
  'matches',
  'reason',
] as const;

export type CommandTag = (typeof COMMAND_TAGS)[number];
export type CommandTags = Readonly<Record<CommandTag, string>>;

/** Variables of the daemon's environment passed on to the program; nothing else (no secrets). */
export const INHERITED_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'HOME'] as const;

/** What the program may receive, at most, per value (a reason with a long user name is cut). */
const MAX_VALUE_CHARS = 4096;

/** Cuts a value and removes NUL, which no argv element or environment variable can hold. */
const clean = (value: string) => value.replace(/\0/g, '').slice(0, MAX_VALUE_CHARS);

/** `<matches>` at most: the guard keeps 10 matches of 1 KiB each; far below Linux's 128 KiB per argument. */
const MAX_MATCHES_CHARS = 16_384;

/**
 * The matched lines, oldest first, one per line (`\n`-separated, none inside a match: each is
 * escaped to one line), as one value; the oldest go when they would not fit.
 */
export function matchesText(matches: readonly string[] | undefined): string {
  if (matches === undefined || !Array.isArray(matches)) return '';
  const out: string[] = [];
  let used = 0;
  for (let i = matches.length - 1; i >= 0; i--) {
    const line = showableMatch(String(matches[i]).slice(0, MAX_VALUE_CHARS));
    if (used + line.length + 1 > MAX_MATCHES_CHARS) break;
    out.push(line);
    used += line.length + 1;
  }
  return out.reverse().join('\n');
}

/** The failures a jail's reason names (`5 failures within 10m`); `0` when it does not (a manual ban). */
function failuresOf(reason: string): string {
  const match = /^(\d+) failures? within /.exec(reason);
  return match === null ? '0' : (match[1] as string);
}

/**
 * The tag values of a decision, or `null` when its target is not a canonical address or network
 * (never passed to a program). `<bantime>` is whole seconds, `-1` for a permanent ban; `<family>`
 * is `inet4` or `inet6` (fail2ban's words); `<matches>` the lines that led to a ban decided on
 * this instance ({@link matchesText}), empty for other bans and for unbans.
 */
export function tagsOf(decision: Decision): CommandTags | null {
  const cidr = typeof decision.target === 'string' ? parseCidr(decision.target) : null;
  if (cidr === null || cidr.text !== decision.target) return null;
  const bantime =
    decision.expiresAt === null
      ? '-1'
      : String(Math.max(0, Math.round((decision.expiresAt - decision.startedAt) / 1000)));
  return {
    ip: cidr.text,
    family: cidr.family === 4 ? 'inet4' : 'inet6',
    jail: clean(String(decision.jail)),
    bantime,
    bancount: String(decision.banCount),
    failures: failuresOf(String(decision.reason)),
    matches: matchesText(decision.matches),
    reason: clean(String(decision.reason)),
  };
}

/**
 * Substitutes tags in each element, in one pass (a value that itself looks like `<jail>` stays as
 * it is), as plain text: `["--ip=<ip>"]` → `["--ip=192.0.2.7"]`, one element still. An unknown
 * `<word>` is left alone (the config refuses them).
 */
export function expandArgv(template: readonly string[], tags: CommandTags): string[] {
  return template.map((arg) =>
    arg.replace(/<([A-Za-z_]+)>/g, (whole, tag: string) =>
      Object.hasOwn(tags, tag) ? tags[tag as CommandTag] : whole,
    ),
  );
}

/** What happens: a ban starts or ends. */
export type CommandOp = 'ban' | 'unban';

/** The program's environment: the few inherited variables, then `PORTCULLIS_*`. */
export function commandEnv(
  base: NodeJS.ProcessEnv,
  op: CommandOp,
  actionName: string,
  tags: CommandTags | null,
  count?: number,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of INHERITED_ENV) {
    const value = base[key];
    if (value !== undefined) env[key] = value;
  }
  env.PORTCULLIS_OP = op;
  env.PORTCULLIS_ACTION = clean(actionName);
  if (count !== undefined) env.PORTCULLIS_COUNT = String(count);
  if (tags !== null) for (const tag of COMMAND_TAGS) env[`PORTCULLIS_${tag.toUpperCase()}`] = tags[tag];
  return env;
}

/** One JSON line per decision, for `batch: true` (on the program's stdin). */
export function batchInput(tags: readonly CommandTags[]): string {
  return tags.map((t) => `${JSON.stringify(t)}\n`).join('');
}
