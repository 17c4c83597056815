import { removeIpsetObjects } from '../ipset/ipset-action.js';
import type { IpsetConfig } from '../ipset/options.js';
import type { ActionSpec } from '../registry.js';
import type { ToolExec } from './exec.js';
import { removeIptablesChains } from './iptables-action.js';
import type { IptablesConfig } from './options.js';

/**
 * `portcullis flush` for the `ipset` and `iptables` kinds: removes the chains (and the jumps to
 * them) and the sets these actions created, nothing else. Resolves one line per kind it removed.
 */
export async function flushXtablesActions(specs: readonly ActionSpec[], exec?: ToolExec): Promise<string[]> {
  const prefixes = specs
    .filter((spec) => spec.kind === 'ipset')
    .map((spec) => (spec.options as unknown as IpsetConfig).setPrefix);
  const chains = specs
    .filter((spec) => spec.kind === 'iptables')
    .map((spec) => (spec.options as unknown as IptablesConfig).chain);
  const done: string[] = [];
  if (prefixes.length > 0) {
    await removeIpsetObjects(prefixes, exec);
    for (const prefix of new Set(prefixes))
      done.push(`removed ipset sets ${prefix}-* and iptables/ip6tables chain ${prefix}`);
  }
  if (chains.length > 0) {
    await removeIptablesChains(chains, exec);
    for (const chain of new Set(chains)) done.push(`removed iptables/ip6tables chain ${chain}`);
  }
  return done;
}
