import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import type { ToolExec } from './exec.js';
import { type ChainHook, foreignNameProblem } from './options.js';

export type { ChainHook };

/**
 * Pure builders and the few calls behind a chain of portcullis's own in the `filter` table, shared
 * by the `ipset` kind (a rule per set) and the `iptables` kind (a rule per address): the chain's
 * rules are rewritten in one `iptables-restore --noflush` transaction (declaring the chain flushes
 * it, so no packet sees it half-built) and one jump to it is kept at the top of the parent chain
 * (`INPUT`, `FORWARD` or `DOCKER-USER`). Nothing else in the ruleset is read or touched. Every
 * token comes from validated config or a re-validated canonical address; none goes near a shell.
 */

/** What the rules of the chain match and do. */
export interface ChainSpec {
  /** The chain portcullis owns (`pc-ipset`): up to 28 characters. */
  readonly chain: string;
  readonly hook: ChainHook;
  readonly verdict: 'drop' | 'reject';
  /** `null`: every protocol (only without ports). */
  readonly protocol: 'tcp' | 'udp' | null;
  /** `"22"`, `"8000-8100"`; `null`: every port. */
  readonly ports: readonly string[] | null;
}

export const HOOKS: readonly ChainHook[] = ['input', 'forward', 'docker-user'];

/** `iptables` for IPv4, `ip6tables` for IPv6. */
export const iptablesBinary = (family: 4 | 6) => (family === 4 ? 'iptables' : 'ip6tables');
export const restoreBinary = (family: 4 | 6) => (family === 4 ? 'iptables-restore' : 'ip6tables-restore');

/** The built-in (or Docker's) chain the jump sits in. */
export function parentChain(hook: ChainHook): string {
  return hook === 'input' ? 'INPUT' : hook === 'forward' ? 'FORWARD' : 'DOCKER-USER';
}

/** multiport takes 15 ports per rule, a range counting as two. */
const MULTIPORT_WEIGHT = 15;

/**
 * The match and verdict of each rule, without the source match: one entry per rule the ports need
 * (`multiport` holds 15 ports; `docker-user` matches each port on the connection's original
 * destination, before Docker's DNAT, one rule each).
 */
export function ruleTails(spec: ChainSpec): string[][] {
  const verdict =
    spec.verdict === 'drop'
      ? ['-j', 'DROP']
      : spec.protocol === 'tcp'
        ? ['-j', 'REJECT', '--reject-with', 'tcp-reset']
        : ['-j', 'REJECT'];
  const { ports, protocol } = spec;
  if (ports === null || protocol === null)
    return [[...(protocol === null ? [] : ['-p', protocol]), ...verdict]];
  const specs = ports.map((p) => p.replace('-', ':'));
  if (spec.hook === 'docker-user')
    return specs.map((p) => ['-p', protocol, '-m', 'conntrack', '--ctorigdstport', p, ...verdict]);
  const groups: string[][] = [];
  let group: string[] = [];
  let weight = 0;
  for (const p of specs) {
    const w = p.includes(':') ? 2 : 1;
    if (weight + w > MULTIPORT_WEIGHT) {
      groups.push(group);
      group = [];
      weight = 0;
    }
    group.push(p);
    weight += w;
  }
  groups.push(group);
  return groups.map((g) => ['-p', protocol, '-m', 'multiport', '--dports', g.join(','), ...verdict]);
}

/**
 * The first rule of every chain portcullis writes: no target, so it only marks the chain as
 * portcullis's. A chain of that name without it is someone else's and is never flushed,
 * rewritten or deleted.
 */
export const CHAIN_MARK = ['-m', 'comment', '--comment', 'portcullis'] as const;
const MARK_LINE = (chain: string) => `-A ${chain} ${CHAIN_MARK.join(' ')}`;

/**
 * `iptables-restore --noflush` input that makes `chain` hold exactly `rules` (each an argv tail),
 * after {@link CHAIN_MARK}.
 */
export function chainScript(chain: string, rules: readonly (readonly string[])[]): string {
  const lines = ['*filter', `:${chain} - [0:0]`, MARK_LINE(chain)];
  for (const rule of rules) lines.push(['-A', chain, ...rule].join(' '));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Rewrites the chain's rules in one transaction (creating the chain if needed); its jump is not touched. */
export async function writeChain(
  exec: ToolExec,
  family: 4 | 6,
  chain: string,
  rules: readonly (readonly string[])[],
): Promise<void> {
  await exec(restoreBinary(family), ['-w', '--noflush'], chainScript(chain, rules));
}

/** Runs `iptables`/`ip6tables -w ...`; resolves whether it exited 0 (a missing rule or chain is `false`). */
async function probe(exec: ToolExec, family: 4 | 6, args: readonly string[]): Promise<boolean> {
  try {
    await exec(iptablesBinary(family), ['-w', ...args]);
    return true;
  } catch (error) {
    if (/not found$/.test(String((error as Error).message))) throw error; // the binary itself
    return false;
  }
}

/** Whether a chain exists in the filter table (Docker's `DOCKER-USER` may not). */
export function chainExists(exec: ToolExec, family: 4 | 6, chain: string): Promise<boolean> {
  return probe(exec, family, ['-S', chain]);
}

/** `-S chain` output, or `null` when the chain does not exist. */
async function listChain(exec: ToolExec, family: 4 | 6, chain: string): Promise<string | null> {
  try {
    return await exec(iptablesBinary(family), ['-w', '-S', chain]);
  } catch (error) {
    if (/not found$/.test(String((error as Error).message))) throw error;
    return null;
  }
}

/**
 * A rule portcullis wrote before chains carried {@link CHAIN_MARK}: a source address or one of its
 * sets, the optional port match, DROP or REJECT. Such a chain is adopted (and marked) at its next write.
 */
function legacyRule(line: string, chain: string): boolean {
  const source = `(?:-s [0-9a-fA-F.:/]+|-m set --match-set ${reEscape(chain)}-[vn][46] src)`;
  const ports =
    '(?: -p (?:tcp|udp)(?: -m (?:multiport --dports [0-9,:]+|conntrack --ctorigdstport [0-9:]+))?)?';
  const verdict = '-j (?:DROP|REJECT(?: --reject-with [a-z0-9-]+)?)';
  return new RegExp(`^-A ${reEscape(chain)} ${source}${ports} ${verdict}$`).test(line);
}

const reEscape = (text: string) => text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

/** Whose the chain is: absent, portcullis's (marked, empty, or only rules it writes), or someone else's. */
export function chainOwner(listing: string | null, chain: string): 'absent' | 'ours' | 'foreign' {
  if (listing === null) return 'absent';
  const rules = listing.split('\n').filter((line) => line.startsWith(`-A ${chain} `));
  if (rules.includes(MARK_LINE(chain))) return 'ours';
  return rules.every((line) => legacyRule(line, chain)) ? 'ours' : 'foreign';
}

/** Rejects (touching nothing) when the chain exists and is not portcullis's; resolves whether it exists. */
async function assertOwned(exec: ToolExec, family: 4 | 6, chain: string, doing: string): Promise<boolean> {
  const reserved = foreignNameProblem(chain);
  if (reserved !== null)
    throw new PortcullisError(
      ErrorCodes.ACTION_FAILED,
      `${iptablesBinary(family)}: refusing to ${doing} chain ${reserved}`,
    );
  const owner = chainOwner(await listChain(exec, family, chain), chain);
  if (owner === 'foreign')
    throw new PortcullisError(
      ErrorCodes.ACTION_FAILED,
      `${iptablesBinary(family)}: chain ${chain} exists and was not made by portcullis (it has no "-m comment --comment portcullis" rule); refusing to ${doing} it`,
      { help: "set chain_name (iptables) or set_prefix (ipset) to a name of portcullis's own" },
    );
  return owner === 'ours';
}

/**
 * Creates (or rewrites) the chain with exactly these rules and makes sure one jump to it sits at
 * the top of its parent; a jump from another parent (an earlier `chain:` setting) is removed.
 * `keep`: a chain that exists keeps its rules (the bans of an earlier run stay enforced until the
 * replay rewrites them). Rejects when `DOCKER-USER` is asked for and Docker has not made it.
 */
export async function ensureChain(
  exec: ToolExec,
  family: 4 | 6,
  spec: ChainSpec,
  rules: readonly (readonly string[])[],
  keep = false,
): Promise<void> {
  const parent = parentChain(spec.hook);
  if (spec.hook === 'docker-user' && !(await chainExists(exec, family, parent)))
    throw new Error(
      `${iptablesBinary(family)}: chain DOCKER-USER does not exist (Docker makes it when it starts); start Docker first, or use chain: forward`,
    );
  const exists = await assertOwned(exec, family, spec.chain, 'rewrite');
  if (!keep || !exists) await writeChain(exec, family, spec.chain, rules);
  if (!(await probe(exec, family, ['-C', parent, '-j', spec.chain])))
    await exec(iptablesBinary(family), ['-w', '-I', parent, '1', '-j', spec.chain]);
  for (const hook of HOOKS) {
    if (hook === spec.hook) continue;
    await removeJumps(exec, family, parentChain(hook), spec.chain);
  }
}

/** Deletes every jump from `parent` to `chain` (none is fine; a missing parent is fine). */
async function removeJumps(exec: ToolExec, family: 4 | 6, parent: string, chain: string): Promise<void> {
  // Bounded: an admin may have added the jump more than once; each -D removes one.
  for (let i = 0; i < 16; i++) {
    if (!(await probe(exec, family, ['-D', parent, '-j', chain]))) return;
  }
}

/** Whether the chain exists, marked, with `ruleCount` rules (the mark aside) and the jump to it is in its parent. */
export async function chainIntact(
  exec: ToolExec,
  family: 4 | 6,
  spec: ChainSpec,
  ruleCount: number,
): Promise<boolean> {
  const listing = await listChain(exec, family, spec.chain);
  if (listing === null) return false;
  const rules = listing.split('\n').filter((line) => line.startsWith(`-A ${spec.chain} `));
  if (!rules.includes(MARK_LINE(spec.chain)) || rules.length !== ruleCount + 1) return false;
  return probe(exec, family, ['-C', parentChain(spec.hook), '-j', spec.chain]);
}

/**
 * Removes the jumps to the chain (from every parent) and the chain itself; absent ones are fine.
 * Rejects, touching nothing, when the chain is not portcullis's.
 */
export async function removeChain(exec: ToolExec, family: 4 | 6, chain: string): Promise<void> {
  const exists = await assertOwned(exec, family, chain, 'remove');
  for (const hook of HOOKS) await removeJumps(exec, family, parentChain(hook), chain);
  if (!exists) return;
  await exec(iptablesBinary(family), ['-w', '-F', chain]);
  await exec(iptablesBinary(family), ['-w', '-X', chain]);
}
