import { z } from 'zod';
import { matchShape, show } from '../match-options.js';

/** nft identifiers portcullis writes: a letter, then letters, digits and `_` (nft allows more; we need no more). */
const NFT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

/** `actions: [{ nftables: { ... } }]`, as the user writes it. Every key is optional. */
export const nftablesOptionsSchema = z.strictObject({
  ...matchShape,
  /** The `inet` table portcullis owns. Default `portcullis`. */
  table: z
    .string()
    .regex(NFT_NAME, {
      error: (issue) =>
        `expected a table name (a letter, then letters, digits, "_"; up to 32), got ${show(issue.input)}`,
    })
    .optional()
    .describe('The inet table portcullis creates and owns. Default portcullis.'),
  /** Names of this action's sets and chain start with it. Default: the action's name, `-` → `_`. */
  set_prefix: z
    .string()
    .regex(NFT_NAME, {
      error: (issue) =>
        `expected a name prefix (a letter, then letters, digits, "_"; up to 32), got ${show(issue.input)}`,
    })
    .optional()
    .describe("Prefix of this action's set and chain names. Default: the action's name."),
});

export type NftablesOptions = z.input<typeof nftablesOptionsSchema>;

/** A validated, frozen nftables action configuration. */
export interface NftablesConfig {
  readonly table: string;
  readonly setPrefix: string;
  readonly chain: 'input' | 'forward' | 'docker-user';
  readonly verdict: 'drop' | 'reject';
  /** `null`: every protocol (only without ports). */
  readonly protocol: 'tcp' | 'udp' | null;
  /** `"22"`, `"8000-8100"`; `null`: every port. */
  readonly ports: readonly string[] | null;
}

/** Defaults of the nftables action, written once. */
export const NFTABLES_DEFAULTS = { table: 'portcullis', chain: 'input', verdict: 'drop' } as const;

/** The set prefix an action name gives: `ssh-fw` → `ssh_fw`, `nftables:sshd` → `nftables_sshd`. */
export function defaultSetPrefix(actionName: string): string {
  let prefix = actionName.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z]/.test(prefix)) prefix = `pc_${prefix}`;
  return prefix.slice(0, 32);
}

/** Resolves validated options (the schema's output) to the frozen config. */
export function resolveNftablesOptions(
  actionName: string,
  options: z.output<typeof nftablesOptionsSchema>,
): NftablesConfig {
  const ports = options.ports === undefined ? null : [...new Set(options.ports.map(String))];
  return Object.freeze({
    table: options.table ?? NFTABLES_DEFAULTS.table,
    setPrefix: options.set_prefix ?? defaultSetPrefix(actionName),
    chain: options.chain ?? NFTABLES_DEFAULTS.chain,
    verdict: options.verdict ?? NFTABLES_DEFAULTS.verdict,
    protocol: options.protocol ?? (ports === null ? null : 'tcp'),
    ports: ports === null ? null : Object.freeze(ports),
  });
}
