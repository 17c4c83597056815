import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import { chainIntact, ensureChain, removeChain, ruleTails } from '../iptables/chain.js';
import { type ToolExec, toolExec } from '../iptables/exec.js';
import { refuse, screenTargets } from '../iptables/iptables-action.js';
import type { NftElement } from '../nftables/script.js';
import type { IpsetConfig } from './options.js';
import {
  addLines,
  capToMaxelem,
  createLine,
  delLines,
  flushLines,
  fullSetOf,
  ipsetSets,
  ownedSets,
  parseSetHeaders,
  restoreLines,
  type SetHeader,
  script,
  setIsOurs,
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
  /** Bans not written since start because their set held `maxelem` entries. */
  overflow = 0;
  /** Targets refused since start: not canonical, or wider than /8 (IPv4) or /32 (IPv6). */
  refused = 0;
  readonly #exec: ToolExec;
  readonly #context: ActionContext;
  /** A full set is warned about once per wave: until a batch fits again. */
  #overflowWarned = false;

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
    const existing = await this.#sets();
    assertSetsOurs(this.config.setPrefix, existing);
    const missing = ipsetSets(this.config).filter((set) => !existing.has(set.name));
    if (missing.length > 0) await this.#ipset(missing.map((set) => createLine(set, this.config.maxelem)));
    for (const family of FAMILIES) await ensureChain(this.#exec, family, this.config, this.#rules(family));
  }

  /** A set at `maxelem` takes no more: what fits is applied, the rest counted in `overflow` (never a failure). */
  async apply(decisions: readonly Decision[]): Promise<void> {
    const { live, ended } = this.#elements(decisions);
    const lines = [...addLines(this.config, live), ...delLines(this.config, ended)];
    if (lines.length > 0) this.#overflowed(await this.#fill(lines));
  }

  /**
   * The sets hold exactly these bans afterwards (built aside and swapped in), at most `maxelem`
   * per set (the rest counted in `overflow`). A failed restore leaves no temporary set behind.
   */
  async restore(decisions: readonly Decision[]): Promise<void> {
    const { fits, overflow } = capToMaxelem(this.config, this.#elements(decisions).live);
    try {
      await this.#ipset(restoreLines(this.config, fits));
    } catch (error) {
      await this.#ipset(ipsetSets(this.config).map((set) => `destroy ${tempName(set.name)}`)).catch(() => {});
      throw error;
    }
    this.#overflowed(overflow.length);
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
    const existing = await this.#sets();
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
    const batch = screenTargets(decisions, this.#context.clock.now());
    const invalid = [...batch.invalid];
    const keep = (e: NftElement) => {
      if (storable(e)) return true;
      invalid.push(e.text);
      return false;
    };
    const live = batch.live.filter(keep);
    const ended = batch.ended.filter(keep);
    this.refused += refuse(this.#context, this.name, invalid, batch.tooWide);
    return { live, ended };
  }

  async #ipset(lines: readonly string[]): Promise<void> {
    await this.#exec('ipset', ['restore', '-exist'], script(lines));
  }

  /**
   * Runs the lines; when a set is full (`ipset restore` stops at that line, the ones before it are
   * done), the rest runs again without the adds to full sets. Resolves how many adds did not fit.
   * Bounded: each retry rules out one of the four sets.
   */
  async #fill(lines: readonly string[]): Promise<number> {
    const full = new Set<string>();
    const toFull = (line: string) => line.startsWith('add ') && full.has(line.split(' ')[1] as string);
    let rest = lines;
    let overflow = 0;
    while (rest.length > 0) {
      try {
        await this.#ipset(rest);
        return overflow;
      } catch (error) {
        const hit = fullSetOf(String((error as Error).message), rest);
        if (hit === null || full.has(hit.set)) throw error;
        full.add(hit.set);
        const after = rest.slice(hit.line);
        const dropped = after.filter(toFull).length;
        overflow += 1 + dropped;
        rest = after.filter((line) => !toFull(line));
      }
    }
    return overflow;
  }

  #overflowed(count: number): void {
    if (count === 0) {
      this.#overflowWarned = false;
      return;
    }
    this.overflow += count;
    if (this.#overflowWarned) return;
    this.#overflowWarned = true;
    this.#context.logger.warn(
      { event: 'action-set-full', action: this.name, overflow: count, maxelem: this.config.maxelem },
      `action ${this.name}: ${count} ban(s) not added: a set of ${this.config.setPrefix} holds maxelem (${this.config.maxelem}) entries; the kernel does not enforce them; raise maxelem. Not logged again until the sets have room`,
    );
  }

  async #sets(): Promise<Map<string, SetHeader>> {
    return parseSetHeaders(await this.#exec('ipset', ['list', '-t']));
  }
}

/** Rejects, naming them, when sets of portcullis's names exist that it did not make. */
function assertSetsOurs(prefix: string, existing: ReadonlyMap<string, SetHeader>): void {
  const foreign = ownedSets({ setPrefix: prefix }).filter((set) => {
    const found = existing.get(set.name);
    return found !== undefined && !setIsOurs(set, found);
  });
  if (foreign.length === 0) return;
  throw new PortcullisError(
    ErrorCodes.ACTION_FAILED,
    `ipset: ${foreign.map((set) => `${set.name} (${existing.get(set.name)?.type})`).join(', ')} exist but were not made by portcullis (expected ${foreign.map((set) => `${set.type}, family ${set.family === 4 ? 'inet' : 'inet6'}, with timeouts`).join('; ')}); refusing to fill, swap or destroy them`,
    { help: "set set_prefix to a name of portcullis's own" },
  );
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
  const existing = parseSetHeaders(await exec('ipset', ['list', '-t']));
  for (const prefix of new Set(prefixes)) assertSetsOurs(prefix, existing);
  for (const prefix of new Set(prefixes)) {
    for (const family of FAMILIES) await removeChain(exec, family, prefix);
    for (const set of ownedSets({ setPrefix: prefix }))
      if (existing.has(set.name)) lines.push(`destroy ${set.name}`);
  }
  if (lines.length > 0) await exec('ipset', ['restore', '-exist'], script(lines));
}
