import { z } from 'zod';

/** nft identifiers portcullis writes: a letter, then letters, digits and `_` (nft allows more; we need no more). */
const NFT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

const portError = (issue: { input?: unknown }) =>
  `expected a port (1-65535) or a range like "8000-8100", got ${show(issue.input)}`;
const portSchema = z.union(
  [
    z
      .number({ error: portError })
      .int({ error: portError })
      .min(1, { error: portError })
      .max(65535, { error: portError }),
    z
      .string()
      .regex(/^\d{1,5}(-\d{1,5})?$/, { error: portError })
      .refine(
        (text) => {
          const [low, high = low] = text.split('-').map(Number) as [number, number?];
          return low >= 1 && (high as number) <= 65535 && low <= (high as number);
        },
        { error: portError },
      ),
  ],
  { error: portError },
);

/** `actions: [{ nftables: { ... } }]`, as the user writes it. Every key is optional. */
export const nftablesOptionsSchema = z.strictObject({
  /** Destination ports the ban covers (`[22]`, `[80, 443, "8000-8100"]`). Default: every port (and every protocol unless `protocol` is set). */
  ports: z
    .array(portSchema)
    .min(1, { error: 'expected at least one port; omit ports to ban every port' })
    .optional()
    .describe('Destination ports the ban covers: numbers or "low-high" ranges. Default: every port.'),
  /** `tcp` or `udp`. Default `tcp` when `ports` is given; without ports, every protocol. */
  protocol: z
    .enum(['tcp', 'udp'], { error: (issue) => `expected "tcp" or "udp", got ${show(issue.input)}` })
    .optional()
    .describe('tcp or udp. Default tcp with ports; without ports every protocol.'),
  /**
   * Where packets are filtered: `input` (this host's services), `forward` (routed traffic), or
   * `docker-user` (published container ports: the forward hook ahead of Docker's rules, ports
   * matched on the port the client connected to, before Docker's DNAT). Default `input`.
   */
  chain: z
    .enum(['input', 'forward', 'docker-user'], {
      error: (issue) => `expected "input", "forward" or "docker-user", got ${show(issue.input)}`,
    })
    .optional()
    .describe('input (default), forward, or docker-user (published container ports).'),
  /** `drop` (silently) or `reject` (TCP reset, ICMP port unreachable otherwise). Default `drop`. */
  verdict: z
    .enum(['drop', 'reject'], { error: (issue) => `expected "drop" or "reject", got ${show(issue.input)}` })
    .optional()
    .describe('drop (default) or reject (TCP reset / ICMP port unreachable).'),
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
