import type { Decision } from '../../core/types.js';
import type { Action, ActionContext } from '../action.js';
import { type NftExec, nftExec } from './nft.js';
import type { NftablesConfig } from './options.js';
import {
  applyStatements,
  chainName,
  chunks,
  elementsOf,
  flushStatements,
  type NftElement,
  removeTableScript,
  revertStatements,
  setName,
  setNames,
  structureScript,
} from './script.js';

/** Test and bench hooks. */
export interface NftablesActionOptions {
  /** Runs nft. Default: `execFile('nft', ...)`. */
  exec?: NftExec;
}

/** What `nft -j -t list table` says about the action's objects. */
interface Discovered {
  exists: boolean;
  sets: Set<string>;
  chains: Set<string>;
  /** Rules per chain. */
  rules: Map<string, number>;
}

const CHAIN_KINDS = ['input', 'forward', 'docker-user'] as const;

/**
 * The nftables action: bans are elements (with the ban's remaining time as timeout) of sets in
 * portcullis's own `inet` table, dropped or rejected by a base chain; see `script.ts` for the
 * layout. Each `apply`/`revert`/restore is one `nft -f -` call per {@link MAX_ELEMENTS_PER_SCRIPT}
 * elements. `close()` leaves the table in place: the kernel keeps enforcing every ban until its
 * timeout; `portcullis flush` removes the table.
 */
export class NftablesAction implements Action {
  readonly name: string;
  readonly kind = 'nftables';
  readonly scope = 'all' as const;
  readonly config: NftablesConfig;
  /** `nft` invocations made (for stats, tests and the bench). */
  calls = 0;
  readonly #exec: NftExec;
  readonly #context: ActionContext;
  /** Prefix lengths of the network sets that exist. */
  readonly #prefixes = { 4: new Set<number>(), 6: new Set<number>() };

  constructor(
    name: string,
    config: NftablesConfig,
    context: ActionContext,
    options: NftablesActionOptions = {},
  ) {
    this.name = name;
    this.config = config;
    this.#context = context;
    this.#exec = options.exec ?? nftExec();
  }

  /** Creates table, sets and chain (idempotently), keeping network sets found from a previous run. */
  async start(): Promise<void> {
    const found = await this.#discover();
    const stale: string[] = [];
    for (const kind of CHAIN_KINDS) {
      const chain = chainName(this.config, kind);
      if (kind !== this.config.chain && found.chains.has(chain)) stale.push(chain);
    }
    await this.#run(structureScript(this.config, this.#prefixes, stale));
  }

  async apply(decisions: readonly Decision[]): Promise<void> {
    await this.#write(decisions, false);
  }

  /** Replaces the sets' contents with exactly these bans (the replay at start): flush + add, atomically when it fits one call. */
  async restore(decisions: readonly Decision[]): Promise<void> {
    await this.#write(decisions, true);
  }

  async revert(decisions: readonly Decision[]): Promise<void> {
    const batch = elementsOf(decisions, this.#context.clock.now());
    this.#refuse(batch.invalid);
    // A network set never created cannot hold the element.
    const elements = [...batch.live, ...batch.ended].filter((e) => this.#hasSet(e));
    for (const chunk of chunks(elements)) await this.#run(lines(revertStatements(this.config, chunk)));
  }

  async flush(): Promise<void> {
    await this.#run(lines(flushStatements(this.config, setNames(this.config, this.#prefixes))));
  }

  /** `false` (after re-creating them) when the table, a set, the chain or its rules are gone. */
  async check(): Promise<boolean> {
    const found = await this.#discover();
    const chain = chainName(this.config);
    const sets = setNames(this.config, this.#prefixes);
    const intact =
      found.exists &&
      sets.every((name) => found.sets.has(name)) &&
      found.chains.has(chain) &&
      found.rules.get(chain) === sets.length;
    if (intact) return true;
    await this.#run(structureScript(this.config, this.#prefixes));
    return false;
  }

  /** Leaves the table: the kernel goes on enforcing every ban until its timeout. */
  async close(): Promise<void> {}

  async #write(decisions: readonly Decision[], replace: boolean): Promise<void> {
    const batch = elementsOf(decisions, this.#context.clock.now());
    this.#refuse(batch.invalid);
    const fresh: NftElement[] = [];
    for (const e of batch.live) {
      const full = e.family === 4 ? 32 : 128;
      if (e.prefix !== full && !this.#prefixes[e.family].has(e.prefix)) fresh.push(e);
    }
    const before = { 4: new Set(this.#prefixes[4]), 6: new Set(this.#prefixes[6]) };
    for (const e of fresh) this.#prefixes[e.family].add(e.prefix);
    const ops = [
      ...batch.live.map((element) => ({ element, add: true })),
      ...batch.ended.filter((e) => this.#hasSet(e)).map((element) => ({ element, add: false })),
    ];
    const groups = chunks(ops);
    if (groups.length === 0) groups.push([]);
    try {
      for (const [i, group] of groups.entries()) {
        const statements: string[] = [];
        if (i === 0 && fresh.length > 0)
          statements.push(structureScript(this.config, this.#prefixes).trimEnd());
        if (i === 0 && replace)
          statements.push(...flushStatements(this.config, setNames(this.config, this.#prefixes)));
        statements.push(
          ...applyStatements(
            this.config,
            group.filter((op) => op.add).map((op) => op.element),
          ),
          ...revertStatements(
            this.config,
            group.filter((op) => !op.add).map((op) => op.element),
          ),
        );
        if (statements.length > 0) await this.#run(lines(statements));
      }
    } catch (error) {
      // The new sets may not exist: forget them so a retry creates them again.
      this.#prefixes[4] = before[4];
      this.#prefixes[6] = before[6];
      throw error;
    }
  }

  #hasSet(e: NftElement): boolean {
    return e.prefix === (e.family === 4 ? 32 : 128) || this.#prefixes[e.family].has(e.prefix);
  }

  #refuse(invalid: readonly string[]): void {
    if (invalid.length === 0) return;
    this.#context.logger.error(
      {
        event: 'action-invalid-target',
        action: this.name,
        targets: invalid.slice(0, 10).map((t) => JSON.stringify(t)),
      },
      `action ${this.name}: ${invalid.length} target(s) refused: not a canonical address or network; never passed to nft`,
    );
  }

  async #run(script: string): Promise<string> {
    this.calls++;
    return this.#exec(['-f', '-'], script);
  }

  /** Reads the table's sets, chains and rule counts (`-t`: without set elements); none when absent. */
  async #discover(): Promise<Discovered> {
    const found: Discovered = { exists: false, sets: new Set(), chains: new Set(), rules: new Map() };
    let text: string;
    try {
      this.calls++;
      text = await this.#exec(['-j', '-t', 'list', 'table', 'inet', this.config.table]);
    } catch (error) {
      if (/No such file or directory|does not exist/i.test(String((error as Error).message))) return found;
      throw error;
    }
    found.exists = true;
    const items = (JSON.parse(text) as { nftables?: Record<string, { name?: string; chain?: string }>[] })
      .nftables;
    const own = `${this.config.setPrefix}_v`;
    for (const item of items ?? []) {
      if (item.set?.name !== undefined) {
        const name = item.set.name;
        found.sets.add(name);
        const match = /_v(4|6)_(\d{1,3})$/.exec(name);
        if (match !== null && name.startsWith(own)) {
          const family = Number(match[1]) as 4 | 6;
          const prefix = Number(match[2]);
          if (name === setName(this.config, family, prefix)) this.#prefixes[family].add(prefix);
        }
      }
      if (item.chain?.name !== undefined) found.chains.add(item.chain.name);
      if (item.rule?.chain !== undefined)
        found.rules.set(item.rule.chain, (found.rules.get(item.rule.chain) ?? 0) + 1);
    }
    return found;
  }
}

function lines(statements: readonly string[]): string {
  return `${statements.join('\n')}\n`;
}

/** The action factory of the registry. */
export function createNftablesAction(
  name: string,
  config: NftablesConfig,
  context: ActionContext,
  options?: NftablesActionOptions,
): NftablesAction {
  return new NftablesAction(name, config, context, options);
}

/**
 * Deletes portcullis's `inet` tables — every set, element and chain in them — and nothing else:
 * what `portcullis flush` does. A table that is not there is fine. One `nft -f -` call.
 */
export async function removeNftablesTables(
  tables: readonly string[],
  exec: NftExec = nftExec(),
): Promise<void> {
  const unique = [...new Set(tables)];
  if (unique.length === 0) return;
  await exec(['-f', '-'], unique.map((table) => removeTableScript(table)).join(''));
}
