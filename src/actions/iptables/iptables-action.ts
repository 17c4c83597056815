import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import { elementsOf, type NftElement } from '../nftables/script.js';
import { chainIntact, ensureChain, removeChain, ruleTails, writeChain } from './chain.js';
import { type ToolExec, toolExec } from './exec.js';
import type { IptablesConfig } from './options.js';

/** Test and bench hooks. */
export interface IptablesActionOptions {
  /** Runs iptables, ip6tables and their `-restore`. Default: `execFile`. */
  exec?: ToolExec;
}

const FAMILIES = [4, 6] as const;

/**
 * The `iptables` action, for the simplest hosts (no nftables, no ipset): a chain of portcullis's
 * own in the filter table of iptables and ip6tables, one rule per banned address or network, the
 * chain jumped to from `INPUT`, `FORWARD` or `DOCKER-USER`. Each batch rewrites the chain of each
 * family it changes in one `iptables-restore --noflush` transaction (a rule list is linear: for
 * thousands of bans use `ipset`). The kernel has no timeouts here: portcullis removes a ban when
 * it ends, and a ban that ended while portcullis was down goes at the next start's replay.
 * `close()` leaves the chain: bans stay enforced; `portcullis flush` removes it.
 */
export class IptablesAction implements Action {
  readonly name: string;
  readonly kind = 'iptables';
  readonly scope = 'all' as const;
  readonly config: IptablesConfig;
  /** Tool invocations made (for tests and the bench). */
  calls = 0;
  /** Targets refused since start: not canonical, or wider than {@link WIDEST_PREFIX}. */
  refused = 0;
  readonly #exec: ToolExec;
  readonly #context: ActionContext;
  /** What the chain of each family holds: canonical targets. */
  readonly #bans = { 4: new Set<string>(), 6: new Set<string>() };
  readonly #tails: string[][];

  constructor(
    name: string,
    config: IptablesConfig,
    context: ActionContext,
    options: IptablesActionOptions = {},
  ) {
    this.name = name;
    this.config = config;
    this.#context = context;
    const exec = options.exec ?? toolExec();
    this.#exec = (binary, args, input) => {
      this.calls++;
      return exec(binary, args, input);
    };
    this.#tails = ruleTails(config);
  }

  /** Creates the chains and jumps; a chain left by an earlier run keeps its rules until the replay. */
  async start(): Promise<void> {
    for (const family of FAMILIES) await ensureChain(this.#exec, family, this.config, [], true);
  }

  async apply(decisions: readonly Decision[]): Promise<void> {
    await this.#change(decisions, 'apply');
  }

  /** The chains hold exactly these bans afterwards. */
  async restore(decisions: readonly Decision[]): Promise<void> {
    await this.#change(decisions, 'restore');
  }

  async revert(decisions: readonly Decision[]): Promise<void> {
    await this.#change(decisions, 'revert');
  }

  async flush(): Promise<void> {
    for (const family of FAMILIES) {
      await this.#write(family, new Set());
      this.#bans[family] = new Set();
    }
  }

  /** `false` (after re-creating them) when a chain, its rules or its jump are gone. */
  async check(): Promise<boolean> {
    let intact = true;
    for (const family of FAMILIES) {
      const rules = this.#bans[family].size * this.#tails.length;
      if (await chainIntact(this.#exec, family, this.config, rules)) continue;
      intact = false;
      await ensureChain(this.#exec, family, this.config, this.#rules(this.#bans[family]));
    }
    return intact;
  }

  /** Leaves the chains: the bans stay enforced. */
  async close(): Promise<void> {}

  async #change(decisions: readonly Decision[], how: 'apply' | 'revert' | 'restore'): Promise<void> {
    const batch = screenTargets(decisions, this.#context.clock.now());
    this.refused += refuse(this.#context, this.name, batch.invalid, batch.tooWide);
    const next = {
      4: how === 'restore' ? new Set<string>() : new Set(this.#bans[4]),
      6: how === 'restore' ? new Set<string>() : new Set(this.#bans[6]),
    };
    for (const e of batch.live) {
      if (how === 'revert') next[e.family].delete(e.text);
      else next[e.family].add(e.text);
    }
    for (const e of batch.ended) next[e.family].delete(e.text);
    for (const family of FAMILIES) {
      if (how !== 'restore' && sameSet(next[family], this.#bans[family])) continue;
      await this.#write(family, next[family]);
      this.#bans[family] = next[family];
    }
  }

  #rules(targets: ReadonlySet<string>): string[][] {
    const rules: string[][] = [];
    for (const target of targets) for (const tail of this.#tails) rules.push(['-s', target, ...tail]);
    return rules;
  }

  async #write(family: 4 | 6, targets: ReadonlySet<string>): Promise<void> {
    await writeChain(this.#exec, family, this.config.chain, this.#rules(targets));
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/**
 * The widest network a firewall action writes, per family: `/8` and `/32`. A wider ban (a typo'd
 * `/0`, `/1`) would shut out a continent or everyone, this host's own admin included; it is
 * refused like an invalid target and never reaches a command or a file.
 */
export const WIDEST_PREFIX: Readonly<Record<4 | 6, number>> = { 4: 8, 6: 32 };

/** Elements of a batch a firewall action may write, and the targets it refuses. */
export interface ScreenedBatch {
  live: NftElement[];
  ended: NftElement[];
  /** Not a canonical address or network. */
  invalid: string[];
  /** Networks wider than {@link WIDEST_PREFIX}. */
  tooWide: string[];
}

/** `elementsOf`, with networks wider than {@link WIDEST_PREFIX} moved to `tooWide`. */
export function screenTargets(decisions: readonly Decision[], nowMs: number): ScreenedBatch {
  const batch = elementsOf(decisions, nowMs);
  const tooWide: string[] = [];
  const narrow = (e: NftElement) => {
    if (e.prefix >= WIDEST_PREFIX[e.family]) return true;
    tooWide.push(e.text);
    return false;
  };
  return {
    live: batch.live.filter(narrow),
    ended: batch.ended.filter(narrow),
    invalid: batch.invalid,
    tooWide,
  };
}

/**
 * Logs targets that are not canonical addresses or networks, and networks too wide to enforce:
 * they never reach a command. Resolves how many were refused (for the action's `refused` count).
 */
export function refuse(
  context: ActionContext,
  action: string,
  invalid: readonly string[],
  tooWide: readonly string[] = [],
): number {
  if (invalid.length > 0)
    context.logger.error(
      {
        event: 'action-invalid-target',
        action,
        targets: invalid.slice(0, 10).map((t) => JSON.stringify(t)),
      },
      `action ${action}: ${invalid.length} target(s) refused: not a canonical address or network; never passed to a command`,
    );
  if (tooWide.length > 0)
    context.logger.error(
      { event: 'action-target-too-wide', action, targets: tooWide.slice(0, 10) },
      `action ${action}: ${tooWide.length} network(s) refused: wider than /${WIDEST_PREFIX[4]} (IPv4) or /${WIDEST_PREFIX[6]} (IPv6); never written`,
    );
  return invalid.length + tooWide.length;
}

/** The action factory of the registry. */
export function createIptablesAction(
  name: string,
  config: IptablesConfig,
  context: ActionContext,
  options?: IptablesActionOptions,
): IptablesAction {
  return new IptablesAction(name, config, context, options);
}

/**
 * Removes portcullis's iptables/ip6tables chains and the jumps to them — nothing else: what
 * `portcullis flush` does for the `iptables` and `ipset` kinds. Absent ones are fine.
 */
export async function removeIptablesChains(
  chains: readonly string[],
  exec: ToolExec = toolExec(),
): Promise<void> {
  for (const chain of new Set(chains)) for (const family of FAMILIES) await removeChain(exec, family, chain);
}
