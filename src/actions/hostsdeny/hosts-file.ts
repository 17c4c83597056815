import { type Cidr, formatIPv4, parseCidr } from '../../core/ip.js';
import type { Decision } from '../../core/types.js';

/**
 * Pure builders of the tcp_wrappers file the hostsdeny action writes. Nothing here touches a file.
 *
 * portcullis's lines live in one block of their own, between two comment lines:
 *
 *     # BEGIN portcullis hostsdeny: written by portcullis; lines between these markers are replaced
 *     sshd: 192.0.2.7
 *     sshd: [2001:db8::1]
 *     sshd: 10.0.0.0/255.0.0.0
 *     sshd: [2001:db8::]/64
 *     # END portcullis hostsdeny
 *
 * Why a block and not a trailing `# portcullis` on each line: tcp_wrappers (`hosts_access.c`,
 * `table_match`) only skips lines that *start* with `#`; on any other line `#` and the word after it
 * are two more client patterns, and a word like `portcullis` is a host name pattern that costs a
 * reverse DNS lookup of every client. Every line outside the block is kept byte for byte.
 *
 * Patterns (hosts_access(5)): an IPv4 address as is; an IPv4 network as `net/mask` with a dotted
 * mask (`10.0.0.0/255.0.0.0`), the one form every tcp_wrappers since 7.6 takes (`/8` is only
 * understood by some patched builds); an IPv6 address in brackets (`[2001:db8::1]`) and an IPv6
 * network as `[net]/prefixlen` (`[2001:db8::]/64`).
 */

/** What the marker lines call an action: its name with anything but `A-Za-z0-9_.-` as `_`. */
export function markerName(actionName: string): string {
  return actionName.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'hostsdeny';
}

const beginLine = (marker: string) =>
  `# BEGIN portcullis ${marker}: written by portcullis; lines between these markers are replaced`;
const endLine = (marker: string) => `# END portcullis ${marker}`;

/** Whether `line` (without its end of line) is the marker `prefix` for exactly this name. */
function isMarker(line: string, prefix: string): boolean {
  if (!line.startsWith(prefix)) return false;
  const rest = line.slice(prefix.length);
  return rest === '' || rest.startsWith(':') || /^\s/.test(rest);
}

function v4Mask(prefix: number): string {
  return formatIPv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** The tcp_wrappers client pattern of a canonical address or network. */
export function hostsPattern(cidr: Cidr): string {
  if (cidr.family === 4) {
    if (cidr.prefix === 32) return cidr.text;
    return `${cidr.text.slice(0, cidr.text.indexOf('/'))}/${v4Mask(cidr.prefix)}`;
  }
  if (cidr.prefix === 128) return `[${cidr.text}]`;
  const slash = cidr.text.indexOf('/');
  return `[${cidr.text.slice(0, slash)}]/${cidr.prefix}`;
}

/** The canonical target a pattern written by {@link hostsPattern} stands for; `null` for any other text. */
export function targetOfPattern(pattern: string): string | null {
  let text: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?:\/(\d{1,3}))?$/.exec(pattern);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,3}(?:\.\d{1,3}){3}))?$/.exec(pattern);
  if (v6 !== null) text = v6[2] === undefined ? (v6[1] as string) : `${v6[1]}/${v6[2]}`;
  else if (v4 !== null) {
    if (v4[2] === undefined) text = v4[1] as string;
    else {
      const prefix = Array.from({ length: 33 }, (_, n) => n).find((n) => v4Mask(n) === v4[2]);
      if (prefix === undefined) return null;
      text = `${v4[1]}/${prefix}`;
    }
  } else return null;
  const cidr = parseCidr(text);
  if (cidr === null || (v6 !== null) !== (cidr.family === 6)) return null;
  return cidr.text;
}

/** One line of the block, without its end of line. */
export function hostsLine(daemon: string, target: string): string {
  const cidr = parseCidr(target);
  if (cidr === null || cidr.text !== target)
    throw new Error(`not a canonical target: ${JSON.stringify(target)}`);
  return `${daemon}: ${hostsPattern(cidr)}`;
}

/** Belt and braces: what a pattern may contain once formatted. */
const PATTERN_TEXT = /^\[?[0-9a-f.:]+\]?(\/[0-9.]{1,15})?$/;

/** What {@link targetsOf} makes of a batch of decisions. */
export interface TargetBatch {
  /** Canonical targets still banned. */
  live: string[];
  /** Canonical targets whose ban already ended (to be removed, not added). */
  ended: string[];
  /** Targets refused: not a canonical address or network. Never written. */
  invalid: string[];
}

/**
 * Sorts decisions into targets to write and to remove. A target must parse with `parseCidr` **and**
 * be its own canonical text; anything else (`1.2.3.4\nALL: ALL`, `1.2.3.4 # x`, a user name) is
 * listed in `invalid`. Dry-run decisions are skipped.
 */
export function targetsOf(decisions: readonly Decision[], nowMs: number): TargetBatch {
  const batch: TargetBatch = { live: [], ended: [], invalid: [] };
  for (const decision of decisions) {
    if (decision.dryRun) continue;
    const target = decision.target;
    const cidr = typeof target === 'string' ? parseCidr(target) : null;
    if (cidr === null || cidr.text !== target || !PATTERN_TEXT.test(hostsPattern(cidr))) {
      batch.invalid.push(String(target));
      continue;
    }
    if (decision.expiresAt !== null && decision.expiresAt <= nowMs) batch.ended.push(cidr.text);
    else batch.live.push(cidr.text);
  }
  return batch;
}

/** A file split around portcullis's block. */
export interface ParsedHostsFile {
  /** Everything before the (first) block, byte for byte. */
  before: string;
  /** Everything after it; lines of other blocks of the same name are taken out. */
  after: string;
  /** Targets of the block's lines, in file order, without duplicates. */
  targets: string[];
  /** Whether a block was found. */
  found: boolean;
}

/**
 * Splits `text` around the block of `marker`. Inside a block, a line that is not `daemon: pattern`
 * (a comment, a hand-written rule) is not portcullis's: it is kept, just above the block. A BEGIN
 * without its END (a hand edit) takes the portcullis lines that follow it and stops at the first
 * other line. A second block of the same name (two processes, a merge) is folded into the first.
 */
export function parseHostsFile(text: string, marker: string): ParsedHostsFile {
  const begin = `# BEGIN portcullis ${marker}`;
  const end = endLine(marker);
  const lines = text.split(/(?<=\n)/);
  const head: string[] = [];
  const tail: string[] = [];
  const kept: string[] = [];
  const targets = new Set<string>();
  let found = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const bare = line.replace(/\r?\n$/, '');
    if (!isMarker(bare, begin)) {
      (found ? tail : head).push(line);
      continue;
    }
    found = true;
    const closed = hasEnd(lines, i + 1, end);
    let j = i + 1;
    for (; j < lines.length; j++) {
      const inner = (lines[j] as string).replace(/\r?\n$/, '');
      if (isMarker(inner, end)) break;
      const match = /^[^:#\s][^:#]*:[ \t]*(\S+)[ \t]*$/.exec(inner);
      const target = match === null ? null : targetOfPattern(match[1] as string);
      if (target !== null) targets.add(target);
      else if (!closed)
        break; // a BEGIN without END: the block stops at the first other line
      else kept.push(lines[j] as string);
    }
    // j is the END line (skipped), or the first line that is not ours (kept, read again).
    i = j < lines.length && isMarker((lines[j] as string).replace(/\r?\n$/, ''), end) ? j : j - 1;
  }
  let before = head.join('');
  if (kept.length > 0) {
    if (before !== '' && !before.endsWith('\n')) before += '\n';
    before += kept.map((line) => (line.endsWith('\n') ? line : `${line}\n`)).join('');
  }
  return { before, after: tail.join(''), targets: [...targets], found };
}

function hasEnd(lines: readonly string[], from: number, end: string): boolean {
  for (let k = from; k < lines.length; k++)
    if (isMarker((lines[k] as string).replace(/\r?\n$/, ''), end)) return true;
  return false;
}

/** The block for these targets; empty when there are none (no markers are left behind). */
export function renderBlock(marker: string, daemon: string, targets: Iterable<string>): string {
  const body = [...targets].map((target) => `${hostsLine(daemon, target)}\n`);
  if (body.length === 0) return '';
  return `${beginLine(marker)}\n${body.join('')}${endLine(marker)}\n`;
}

/** What to change in the block. */
export interface HostsEdit {
  add?: readonly string[];
  remove?: readonly string[];
  /** Replace the block's targets with exactly these (then `add` and `remove` apply). */
  replace?: readonly string[];
}

/**
 * The file's new text after `edit`: the block's lines changed, every other line as it was. The
 * block stays where it is; a new one goes at the end. Returns `text` itself when nothing changes.
 */
export function editHostsText(
  text: string,
  marker: string,
  daemon: string,
  edit: HostsEdit,
): { text: string; targets: string[] } {
  const parsed = parseHostsFile(text, marker);
  const targets = new Set(edit.replace ?? parsed.targets);
  for (const target of edit.add ?? []) targets.add(target);
  for (const target of edit.remove ?? []) targets.delete(target);
  const block = renderBlock(marker, daemon, targets);
  let before = parsed.before;
  if (block !== '' && before !== '' && !before.endsWith('\n')) before += '\n';
  const next = before + block + parsed.after;
  return { text: next === text ? text : next, targets: [...targets] };
}
