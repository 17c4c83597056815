import type { PortcullisConfig } from '../../config/types.js';
import type { ParsedIp } from '../../core/ip.js';
import { hostAddresses, Jail } from './jail.js';

/**
 * The enabled jails of a configuration, by name: built once per config (start, reload) and then
 * only read. A reload builds a new set; holders compare identities to notice it.
 */
export class JailSet {
  readonly byName: ReadonlyMap<string, Jail>;

  constructor(config: PortcullisConfig) {
    const self = config.jails.some((jail) => jail.ignoreSelf) ? hostAddresses() : [];
    const jails = new Map<string, Jail>();
    for (const jailConfig of config.jails) {
      if (jailConfig.enabled) jails.set(jailConfig.name, new Jail(jailConfig, self));
    }
    this.byName = jails;
  }

  get size(): number {
    return this.byName.size;
  }

  get(name: string): Jail | undefined {
    return this.byName.get(name);
  }

  /** True when some jail ignores `ip` (the `on_store_error: deny` policy lets those through). */
  ignoredByAny(ip: ParsedIp): boolean {
    for (const jail of this.byName.values()) if (jail.isIgnored(ip)) return true;
    return false;
  }
}
