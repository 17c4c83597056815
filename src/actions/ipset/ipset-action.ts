import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import { chainIntact, ensureChain, removeChain, ruleTails } from '../iptables/chain.js';
import { type ToolExec, toolExec } from '../iptables/exec.js';
import { refuse } from '../iptables/iptables-action.js';
import { elementsOf, type NftElement } from '../nftables/script.js';
import type { IpsetConfig } from './options.js';
import {
  addLines,
  createLine,
  delLines,
  flushLines,
  ipsetSets,
  restoreLines,
  script,
  storable,
  tempName,
} from './script.js';

/** Test and bench hooks. */
export interface IpsetActionOptions {
  /** Runs ipset, iptables, ip6tables and their `-restore`. Default: `execFile`. */
  exec?: ToolExec;
}

const FAMILIES = [4, 6] as const;

/**
 * The ipset action, for hosts with iptables but no nftables: bans are entries (with the ban's
 * remaining time as timeout) of four sets of portcullis's own (see `script.ts`), matched by a
 * chain of its own in iptables and ip6tables — two rules per family, whatever the number of bans —
 * jumped to from `INPUT`, `FORWARD` or `DOCKER-USER`. Each `apply`/`revert`/restore is one
 * `ipset restore -exist` call. `close()` leaves everything: the kernel keeps enforcing each ban
 * until its timeout; `portcullis flush` removes the chain and the sets.
 */
export class IpsetAction implements Action {
  readonly name: string;
  readonly kind = 'ipset';
  readonly scope = 'all' as const;
  readonly config: IpsetConfig;
  /** Tool invocations made (`ipset`, `iptables`, ...), for tests and the bench. */
  calls = 0;
  /** `ipset` invocations made. */
  ipsetCalls = 0;
  readonly #exec: ToolExec;
  readonly #context: ActionContext;

  constructor(name: string, config: IpsetConfig, context: ActionContext, options: IpsetActionOptions = {}) {
    this.name = name;
    this.config = config;
    this.#context = context;
    const exec = options.exec ?? toolExec();
    this.#exec = (binary, args, input) => {
      this.calls++;
      if (binary === 'ipset') this.ipsetCalls++;
      return exec(binary, args, input);
    };
  }

  /** Creates the sets that are missing (those of an earlier run keep their entries), the chains and the jumps. */
  async start(): Promise<void> {
    const existing = await this.#setNames();
    const missing = ipsetSets(this.config).filter((set) => !existing.has(set.name));
    if (missing.length > 0) await this.#ipset(missing.map((set) => createLine(set, this.config.maxelem)));
    for (const family of FAMILIES) await ensureChain(this.#exec, family, this.config, this.#rules(family));
  }

  async apply(decisions: readonly Decision[]): Promise<void> {
    const { live, ended } = this.#elements(decisions);
    const lines = [...addLines(this.config, live), ...delLines(this.config, ended)];
    if (lines.length > 0) await this.#ipset(lines);
  }

  /** The sets hold exactly these bans afterwards (built aside and swapped in). */
  async restore(decisions: readonly Decision[]): Promise<void> {
    await this.#ipset(restoreLines(this.config, this.#elements(decisions).live));
  }

  async revert(decisions: readonly Decision[]): Promise<void> {
    const { live, ended } = this.#elements(decisions);
    const lines = delLines(this.config, [...live, ...ended]);
    if (lines.length > 0) await this.#ipset(lines);
  }

  async flush(): Promise<void> {
    await this.#ipset(flushLines(this.config));
  }

  /** `false` (after re-creating them) when a set, a chain, its rules or its jump are gone. */
  async check(): Promise<boolean> {
    const existing = await this.#setNames();
    let intact = ipsetSets(this.config).every((set) => existing.has(set.name));
    for (const family of FAMILIES)
      if (intact && !(await chainIntact(this.#exec, family, this.config, this.#rules(family).length)))
        intact = false;
    if (intact) return true;
    await this.start();
    return false;
  }

  /** Leaves sets and chains: the kernel goes on enforcing every ban until its timeout. */
  async close(): Promise<void> {}

  #rules(family: 4 | 6): string[][] {
    const rules: string[][] = [];
    for (const set of ipsetSets(this.config).filter((s) => s.family === family))
      for (const tail of ruleTails(this.config))
        rules.push(['-m', 'set', '--match-set', set.name, 'src', ...tail]);
    return rules;
  }

  #elements(decisions: readonly Decision[]): { live: NftElement[]; ended: NftElement[] } {
    const batch = elementsOf(decisions, this.#context.clock.now());
    const invalid = [...batch.invalid];
    const keep = (e: NftElement) => {
      if (storable(e)) return true;
      invalid.push(e.text);
      return false;
    };
    const live = batch.live.filter(keep);
    const ended = batch.ended.filter(keep);
    refuse(this.#context, this.name, invalid);
    return { live, ended };
  }

  async #ipset(lines: readonly string[]): Promise<void> {
    await this.#exec('ipset', ['restore', '-exist'], script(lines));
  }

  async #setNames(): Promise<Set<string>> {
    const text = await this.#exec('ipset', ['list', '-n']);
    return new Set(
      text
        .split('\n')
        .map((line) => line.trim())
        .filter(Boolean),
    );
  }
}

/** The action factory of the registry. */
export function createIpsetAction(
  name: string,
  config: IpsetConfig,
  context: ActionContext,
  options?: IpsetActionOptions,
): IpsetAction {
  return new IpsetAction(name, config, context, options);
}

/**
 * Removes what ipset actions with these set prefixes created — the chains (and jumps) in iptables
 * and ip6tables, then the four sets (and any temporary twin) — and nothing else: what
 * `portcullis flush` does. Absent ones are fine.
 */
export async function removeIpsetObjects(
  prefixes: readonly string[],
  exec: ToolExec = toolExec(),
): Promise<void> {
  const lines: string[] = [];
  for (const prefix of new Set(prefixes)) {
    for (const family of FAMILIES) await removeChain(exec, family, prefix);
    for (const suffix of ['v4', 'v6', 'n4', 'n6'])
      lines.push(`destroy ${prefix}-${suffix}`, `destroy ${tempName(`${prefix}-${suffix}`)}`);
  }
  if (lines.length > 0) await exec('ipset', ['restore', '-exist'], script(lines));
}
