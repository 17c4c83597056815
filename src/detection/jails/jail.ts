import { networkInterfaces } from 'node:os';
import type { JailConfig } from '../../config/types.js';
import { formatIPv4, maskV6, type ParsedIp } from '../../core/ip.js';
import { formatIPv6 } from '../../core/ipv6-text.js';
import { CidrSet } from '../../core/prefix-trie.js';
import { type CompiledHttpFilter, compileHttpFilter } from '../filters/http/compile.js';

/** A configured jail, ready to judge clients: its settings plus its compiled ignore list. */
export class Jail {
  readonly config: JailConfig;
  readonly #ignore: CidrSet;
  #httpFilter: CompiledHttpFilter | undefined | null = null;

  constructor(config: JailConfig, selfAddresses: readonly string[] = hostAddresses()) {
    this.config = config;
    this.#ignore = new CidrSet(config.ignoreIp);
    if (config.ignoreSelf) for (const address of selfAddresses) this.#ignore.add(address);
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * An http jail's filter, compiled once for this jail (its RE2 programs are the ones the config
   * check compiled); `undefined` without one.
   */
  get httpFilter(): CompiledHttpFilter | undefined {
    if (this.#httpFilter === null) {
      const spec = this.config.httpFilter;
      this.#httpFilter = spec == null ? undefined : compileHttpFilter(spec);
    }
    return this.#httpFilter;
  }

  /** `ignoreip` and `ignoreself`: these clients are never counted nor banned by this jail. */
  isIgnored(ip: ParsedIp): boolean {
    return this.#ignore.has(ip);
  }

  /** The unit this jail counts and bans: the IPv4 address, or the IPv6 `/ipv6_prefix` network. */
  keyOf(ip: ParsedIp): string {
    // `clientKey(ip, ipv6Prefix)`, written out: it runs once per counted failure.
    if (ip.family === 4) return formatIPv4(ip.v4);
    const prefix = this.config.ipv6Prefix;
    const address = formatIPv6(maskV6(ip.bytes, prefix));
    return prefix === 128 ? address : `${address}/${prefix}`;
  }
}

/** Every address configured on this host's interfaces (for `ignoreself`). */
export function hostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) out.push(entry.address.split('%')[0] as string);
  }
  return out;
}
