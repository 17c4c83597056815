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
export function ipsetSets(config: IpsetConfig): IpsetSet[] {
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

/** Empties the four sets. */
export function flushLines(config: IpsetConfig): string[] {
  return ipsetSets(config).map((set) => `flush ${set.name}`);
}

/** `ipset restore` input: the lines, newline-terminated. */
export function script(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}
