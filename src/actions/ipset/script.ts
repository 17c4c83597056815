import type { NftElement } from '../nftables/script.js';
import type { IpsetConfig } from './options.js';

/**
 * Pure builders of the `ipset restore -exist` input the ipset action runs. Nothing here runs a
 * command. Four sets per action, each with a default timeout so every entry carries its own:
 * `<prefix>-v4` / `-v6` (`hash:ip`, single addresses) and `<prefix>-n4` / `-n6` (`hash:net`,
 * networks of any prefix length; overlapping ones are fine and the most specific matches).
 * Entries carry the ban's remaining time in seconds, so the kernel lifts a ban on time even when
 * portcullis is not running.
 */

/** One of the action's sets. */
export interface IpsetSet {
  readonly name: string;
  readonly family: 4 | 6;
  readonly type: 'hash:ip' | 'hash:net';
}

/** Longest timeout ipset takes, s (about 24.8 days). A longer ban is kept without one; see {@link timeoutSeconds}. */
export const IPSET_MAX_TIMEOUT_S = 2_147_483;

/** The four sets of an action: addresses and networks, per family. */
export function ipsetSets(config: Pick<IpsetConfig, 'setPrefix'>): IpsetSet[] {
  const p = config.setPrefix;
  return [
    { name: `${p}-v4`, family: 4, type: 'hash:ip' },
    { name: `${p}-v6`, family: 6, type: 'hash:ip' },
    { name: `${p}-n4`, family: 4, type: 'hash:net' },
    { name: `${p}-n6`, family: 6, type: 'hash:net' },
  ];
}

/** The set an element belongs in. */
export function setOf(config: IpsetConfig, element: NftElement): string {
  const full = element.prefix === (element.family === 4 ? 32 : 128);
  return `${config.setPrefix}-${full ? 'v' : 'n'}${element.family}`;
}

/** Whether ipset can hold it: `hash:net` refuses a /0 network. */
export function storable(element: NftElement): boolean {
  return element.prefix > 0;
}

/**
 * An entry's timeout, s: the remaining time rounded up; `0` (no timeout) for a permanent ban and
 * for one longer than ipset takes — portcullis removes that one when it ends (or, if it ended
 * while portcullis was down, at the next start's replay), so the kernel never lifts a ban early.
 */
export function timeoutSeconds(timeoutMs: number | null): number {
  if (timeoutMs === null) return 0;
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  return seconds > IPSET_MAX_TIMEOUT_S ? 0 : seconds;
}

/** `create NAME hash:ip family inet timeout 0 maxelem N` (with `-exist`, a no-op when it exists the same). */
export function createLine(set: IpsetSet, maxelem: number, name = set.name): string {
  return `create ${name} ${set.type} family ${set.family === 4 ? 'inet' : 'inet6'} timeout 0 maxelem ${maxelem}`;
}

/** Adds (or, with `-exist`, refreshes the timeout of) each element. */
export function addLines(
  config: IpsetConfig,
  elements: readonly NftElement[],
  rename?: (set: string) => string,
): string[] {
  return elements.map((e) => {
    const set = setOf(config, e);
    return `add ${rename === undefined ? set : rename(set)} ${e.text} timeout ${timeoutSeconds(e.timeoutMs)}`;
  });
}

/** Deletes each element (with `-exist`, an absent one is fine). */
export function delLines(config: IpsetConfig, elements: readonly NftElement[]): string[] {
  return elements.map((e) => `del ${setOf(config, e)} ${e.text}`);
}

/** The temporary twin a restore fills before swapping it in. */
export const tempName = (set: string) => `${set}t`;

/**
 * Replaces the four sets' contents with exactly these elements: each is built as a temporary set
 * (made with the configured `maxelem`, so a changed setting takes effect), swapped in atomically —
 * the iptables rules never see a half-filled set — and the old contents destroyed.
 */
export function restoreLines(config: IpsetConfig, elements: readonly NftElement[]): string[] {
  const sets = ipsetSets(config);
  const lines: string[] = [];
  for (const set of sets)
    lines.push(`destroy ${tempName(set.name)}`, createLine(set, config.maxelem, tempName(set.name)));
  lines.push(...addLines(config, elements, tempName));
  for (const set of sets)
    lines.push(`swap ${tempName(set.name)} ${set.name}`, `destroy ${tempName(set.name)}`);
  return lines;
}

/** What `ipset list -t` says of one set. */
export interface SetHeader {
  readonly type: string;
  /** The `Header:` line: `family inet hashsize 1024 maxelem 65536 timeout 0 ...`. */
  readonly header: string;
}

/** Parses `ipset list -t` (every set's header, no members) into name → header. */
export function parseSetHeaders(text: string): Map<string, SetHeader> {
  const sets = new Map<string, SetHeader>();
  let name: string | undefined;
  let type = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('Name: ')) {
      name = line.slice(6).trim();
      type = '';
      sets.set(name, { type: '', header: '' });
    } else if (name !== undefined && line.startsWith('Type: ')) {
      type = line.slice(6).trim();
      sets.set(name, { type, header: '' });
    } else if (name !== undefined && line.startsWith('Header: '))
      sets.set(name, { type, header: line.slice(8) });
  }
  return sets;
}

/**
 * Whether an existing set is one portcullis made for `set` (its type and family, with timeout
 * support): ipset has no owner mark, so a set of that name made by someone else — another type, no
 * timeouts — is never filled, swapped or destroyed.
 */
export function setIsOurs(set: IpsetSet, found: SetHeader): boolean {
  const words = found.header.split(/\s+/);
  const family = words[words.indexOf('family') + 1];
  return (
    found.type === set.type &&
    words.includes('family') &&
    family === (set.family === 4 ? 'inet' : 'inet6') &&
    words.includes('timeout')
  );
}

/** The four sets and their temporary twins: every name an action may create, fill or destroy. */
export function ownedSets(config: Pick<IpsetConfig, 'setPrefix'>): IpsetSet[] {
  return ipsetSets(config).flatMap((set) => [set, { ...set, name: tempName(set.name) }]);
}

/**
 * Keeps at most `maxelem` elements per set (a fresh, empty set: a restore's twins); the rest is
 * returned as `overflow`, never written — a set past maxelem fails the whole `ipset restore`.
 */
export function capToMaxelem(
  config: IpsetConfig,
  elements: readonly NftElement[],
): { fits: NftElement[]; overflow: NftElement[] } {
  const counts = new Map<string, number>();
  const fits: NftElement[] = [];
  const overflow: NftElement[] = [];
  for (const e of elements) {
    const set = setOf(config, e);
    const n = counts.get(set) ?? 0;
    if (n >= config.maxelem) overflow.push(e);
    else {
      counts.set(set, n + 1);
      fits.push(e);
    }
  }
  return { fits, overflow };
}

/** The set `ipset restore` names in its `Error in line N: Hash is full` message, or `null`. */
export function fullSetOf(message: string, lines: readonly string[]): { line: number; set: string } | null {
  const match = /Error in line (\d+): Hash is full/.exec(message);
  if (match === null) return null;
  const line = Number(match[1]);
  const words = (lines[line - 1] ?? '').split(' ');
  if (words[0] !== 'add' || words[1] === undefined) return null;
  return { line, set: words[1] };
}

/** Empties the four sets. */
export function flushLines(config: IpsetConfig): string[] {
  return ipsetSets(config).map((set) => `flush ${set.name}`);
}

/** `ipset restore` input: the lines, newline-terminated. */
export function script(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}
