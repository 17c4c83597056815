import { parseCidr } from '../../core/ip.js';
import type { Decision } from '../../core/types.js';
import type { NftablesConfig } from './options.js';

/**
 * Pure builders of the `nft -f -` scripts the nftables action runs. Nothing here runs a command.
 *
 * Layout in the `inet` table `config.table` (portcullis's own; nothing else is touched):
 * - `<prefix>_v4` / `<prefix>_v6`: single addresses, `flags timeout` (a hash set);
 * - `<prefix>_v4_<len>` / `<prefix>_v6_<len>`: networks of one prefix length, `flags interval,
 *   timeout`, made when a ban of that length first appears. One set per length because an interval
 *   set refuses overlapping elements (`10.1.2.0/24` inside a banned `10.0.0.0/8`), and two
 *   networks of one length are either equal or disjoint;
 * - `<prefix>_input` (or `_forward`, `_docker_user`): a base chain at priority `filter - 1`, one
 *   rule per set: source in the set (and the configured ports) → drop or reject.
 * Every element carries the ban's remaining time as its timeout (none when permanent), so the
 * kernel lifts a ban on time even when portcullis is not running.
 */

/** One set element, built only from a re-validated canonical target. */
export interface NftElement {
  readonly family: 4 | 6;
  /** Prefix length: 32 / 128 for a single address. */
  readonly prefix: number;
  /** Canonical text: `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/64`. */
  readonly text: string;
  /** Remaining time, ms; `null` for a permanent ban. */
  readonly timeoutMs: number | null;
}

/** Prefix lengths of the network sets in use, per family. */
export interface NftPrefixes {
  readonly 4: ReadonlySet<number>;
  readonly 6: ReadonlySet<number>;
}

/** Longest timeout written (10 years): nft and the kernel take it; a longer ban is re-applied at restart. */
export const MAX_TIMEOUT_MS = 3650 * 86_400_000;

/** Element statements per `nft -f -` call at most; a larger batch is split (100k bans: 2 calls). */
export const MAX_ELEMENTS_PER_SCRIPT = 50_000;

/** Belt and braces: what an element may contain once formatted. */
const ELEMENT_TEXT = /^[0-9a-f.:]+(\/\d{1,3})?$/;

/** What {@link elementsOf} makes of a batch of decisions. */
export interface ElementBatch {
  /** Elements still in force, with their remaining time. */
  live: NftElement[];
  /** Elements whose ban already ended (to be removed, not added). */
  ended: NftElement[];
  /** Targets refused: not a canonical address or network. Never reach nft. */
  invalid: string[];
}

/**
 * Turns decisions into set elements. A target must parse with `parseCidr` **and** be its own
 * canonical text; anything else (`1.2.3.4; rm -rf /`, a newline, ` 1.2.3.4`) is refused and listed
 * in `invalid`. Dry-run decisions are skipped.
 */
export function elementsOf(decisions: readonly Decision[], nowMs: number): ElementBatch {
  const batch: ElementBatch = { live: [], ended: [], invalid: [] };
  for (const decision of decisions) {
    if (decision.dryRun) continue;
    const target = decision.target;
    const cidr = typeof target === 'string' ? parseCidr(target) : null;
    if (cidr === null || cidr.text !== target || !ELEMENT_TEXT.test(cidr.text)) {
      batch.invalid.push(String(target));
      continue;
    }
    const remaining = decision.expiresAt === null ? null : decision.expiresAt - nowMs;
    const element: NftElement = {
      family: cidr.family,
      prefix: cidr.prefix,
      text: cidr.text,
      timeoutMs: remaining === null ? null : Math.min(Math.ceil(remaining), MAX_TIMEOUT_MS),
    };
    if (remaining !== null && remaining <= 0) batch.ended.push(element);
    else batch.live.push(element);
  }
  return batch;
}

/** `1d2h3m4s5ms`: nft's time syntax (it refuses a bare ms count above 2^31). */
export function formatTimeout(ms: number): string {
  let rest = Math.max(1, Math.round(ms));
  let text = '';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return rest > 0 ? `${text}${rest}ms` : text;
}

/** The set holding elements of this family and prefix length. */
export function setName(config: NftablesConfig, family: 4 | 6, prefix: number): string {
  const full = family === 4 ? 32 : 128;
  return prefix === full ? `${config.setPrefix}_v${family}` : `${config.setPrefix}_v${family}_${prefix}`;
}

/** The action's base chain. */
export function chainName(config: NftablesConfig, chain: NftablesConfig['chain'] = config.chain): string {
  return `${config.setPrefix}_${chain.replace('-', '_')}`;
}

/** Every set of the action, for these prefix lengths (the two address sets always). */
export function setNames(config: NftablesConfig, prefixes: NftPrefixes): string[] {
  return setList(config, prefixes).map((set) => set.name);
}

function setList(config: NftablesConfig, prefixes: NftPrefixes): { name: string; family: 4 | 6 }[] {
  const sets: { name: string; family: 4 | 6 }[] = [
    { name: setName(config, 4, 32), family: 4 },
    { name: setName(config, 6, 128), family: 6 },
  ];
  for (const family of [4, 6] as const)
    for (const prefix of [...prefixes[family]].sort((a, b) => a - b))
      sets.push({ name: setName(config, family, prefix), family });
  return sets;
}

/** `tcp dport { 22, 80 }`, or what stands for the configured ports and protocol. */
function matchOf(config: NftablesConfig): string {
  const { ports, protocol } = config;
  if (ports !== null && protocol !== null) {
    const list = `{ ${ports.join(', ')} }`;
    // docker-user: after Docker's DNAT the destination port is the container's; match the port
    // the client connected to (the published one), as DOCKER-USER rules with conntrack do.
    return config.chain === 'docker-user'
      ? ` meta l4proto ${protocol} ct original proto-dst ${list}`
      : ` ${protocol} dport ${list}`;
  }
  return protocol === null ? '' : ` meta l4proto ${protocol}`;
}

function verdictOf(config: NftablesConfig): string {
  if (config.verdict === 'drop') return 'drop';
  return config.protocol === 'tcp' ? 'reject with tcp reset' : 'reject';
}

function setDefinition(config: NftablesConfig, family: 4 | 6, prefix: number): string {
  const full = family === 4 ? 32 : 128;
  const flags = prefix === full ? 'timeout' : 'interval, timeout';
  return `add set inet ${config.table} ${setName(config, family, prefix)} { type ipv${family}_addr; flags ${flags}; }`;
}

/**
 * Creates the table, the sets and the chain (each `add` is a no-op when it exists) and rewrites
 * the chain's rules (flush + add, in the same transaction, so no packet sees an empty chain).
 * `staleChains`: chains of this action from an earlier `chain:` setting, deleted.
 */
export function structureScript(
  config: NftablesConfig,
  prefixes: NftPrefixes,
  staleChains: readonly string[] = [],
): string {
  const t = config.table;
  const chain = chainName(config);
  const hook = config.chain === 'input' ? 'input' : 'forward';
  const lines = [`add table inet ${t}`, setDefinition(config, 4, 32), setDefinition(config, 6, 128)];
  for (const family of [4, 6] as const)
    for (const prefix of [...prefixes[family]].sort((a, b) => a - b))
      lines.push(setDefinition(config, family, prefix));
  lines.push(
    `add chain inet ${t} ${chain} { type filter hook ${hook} priority filter - 1; policy accept; }`,
    `flush chain inet ${t} ${chain}`,
  );
  const match = matchOf(config);
  const verdict = verdictOf(config);
  for (const set of setList(config, prefixes)) {
    const family = set.family === 4 ? 'ip' : 'ip6';
    lines.push(`add rule inet ${t} ${chain} ${family} saddr @${set.name}${match} ${verdict}`);
  }
  for (const stale of staleChains) lines.push(`delete chain inet ${t} ${stale}`);
  return `${lines.join('\n')}\n`;
}

/** Elements grouped by the set they belong in, in a stable order. */
function bySet(config: NftablesConfig, elements: readonly NftElement[]): Map<string, NftElement[]> {
  const groups = new Map<string, NftElement[]>();
  for (const element of elements) {
    const name = setName(config, element.family, element.prefix);
    const group = groups.get(name);
    if (group === undefined) groups.set(name, [element]);
    else group.push(element);
  }
  return groups;
}

/**
 * Adds or refreshes elements. nft ≥ 1.0.8 has `destroy element`; this host's 1.0.6 does not, and
 * `add element` leaves an existing element's timeout as it was. So, per set, in one transaction:
 * `add` (a no-op if present) → `delete` (now always succeeds) → `add` with the new timeout. An
 * escalated ban gets its longer timeout; applying twice is harmless.
 */
export function applyStatements(config: NftablesConfig, elements: readonly NftElement[]): string[] {
  const lines: string[] = [];
  for (const [name, group] of bySet(config, elements)) {
    const bare = group.map((e) => e.text).join(', ');
    const timed = group
      .map((e) => (e.timeoutMs === null ? e.text : `${e.text} timeout ${formatTimeout(e.timeoutMs)}`))
      .join(', ');
    lines.push(
      `add element inet ${config.table} ${name} { ${bare} }`,
      `delete element inet ${config.table} ${name} { ${bare} }`,
      `add element inet ${config.table} ${name} { ${timed} }`,
    );
  }
  return lines;
}

/** Removes elements, tolerating absent ones: `add` (no-op if present) then `delete`. */
export function revertStatements(config: NftablesConfig, elements: readonly NftElement[]): string[] {
  const lines: string[] = [];
  for (const [name, group] of bySet(config, elements)) {
    const bare = group.map((e) => e.text).join(', ');
    lines.push(
      `add element inet ${config.table} ${name} { ${bare} }`,
      `delete element inet ${config.table} ${name} { ${bare} }`,
    );
  }
  return lines;
}

/** Empties the given sets. */
export function flushStatements(config: NftablesConfig, sets: readonly string[]): string[] {
  return sets.map((name) => `flush set inet ${config.table} ${name}`);
}

/** Deletes a table if it exists (`add` first: a no-op if present, so `delete` cannot fail). */
export function removeTableScript(table: string): string {
  return `add table inet ${table}\ndelete table inet ${table}\n`;
}

/** Splits elements into runs of at most `size` (one `nft -f -` call each). */
export function chunks<T>(items: readonly T[], size = MAX_ELEMENTS_PER_SCRIPT): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
