import { z } from 'zod';
import { defaultName, type MatchConfig, matchShape, nameSchema, resolveMatch } from '../iptables/options.js';

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

/** Default `maxelem` of each set: a wave of a million bans fits (ipset's own default is 65,536). */
export const IPSET_DEFAULT_MAXELEM = 1_048_576;

/** `actions: [{ ipset: { ... } }]`, as the user writes it. Every key is optional. */
export const ipsetOptionsSchema = z.strictObject({
  ...matchShape,
  /**
   * Names of this action's four sets (`<prefix>-v4`, `-v6`: addresses, `hash:ip`; `-n4`, `-n6`:
   * networks, `hash:net`) and of its iptables/ip6tables chain (`<prefix>`). Default
   * `pc-<action name>`.
   */
  set_prefix: nameSchema('a name prefix', 27)
    .optional()
    .describe("Prefix of this action's ipset names and its iptables chain name. Default pc-<action name>."),
  /** Entries each set may hold. Default 1,048,576. */
  maxelem: z
    .number({ error: (issue) => `expected a whole number of entries, got ${show(issue.input)}` })
    .int({ error: (issue) => `expected a whole number of entries, got ${show(issue.input)}` })
    .min(1024, { error: (issue) => `expected at least 1024 entries, got ${show(issue.input)}` })
    .max(2 ** 31 - 1, { error: (issue) => `expected at most 2147483647 entries, got ${show(issue.input)}` })
    .optional()
    .describe('Entries each set may hold. Default 1048576.'),
});

export type IpsetOptions = z.input<typeof ipsetOptionsSchema>;

/** A validated, frozen ipset action configuration. */
export interface IpsetConfig extends MatchConfig {
  readonly setPrefix: string;
  /** The iptables/ip6tables chain (the set prefix). */
  readonly chain: string;
  readonly maxelem: number;
}

export function resolveIpsetOptions(
  actionName: string,
  options: z.output<typeof ipsetOptionsSchema>,
): IpsetConfig {
  const prefix = options.set_prefix ?? defaultName(actionName, 27);
  return Object.freeze({
    ...resolveMatch(options),
    setPrefix: prefix,
    chain: prefix,
    maxelem: options.maxelem ?? IPSET_DEFAULT_MAXELEM,
  });
}
