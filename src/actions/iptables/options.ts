import { z } from 'zod';
import { matchShape, show } from '../match-options.js';

export { matchShape };

/** Where the chain is jumped to from: INPUT, FORWARD, or Docker's DOCKER-USER. */
export type ChainHook = 'input' | 'forward' | 'docker-user';

/** iptables chain and ipset names portcullis writes: a letter, then letters, digits, `_`, `-`. */
export const XT_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * Names portcullis must never take for a chain (it flushes, rewrites and deletes its chain): the
 * built-in chains, Docker's, and the targets iptables knows by name. Compared case-insensitively.
 */
export const RESERVED_CHAIN_NAMES: ReadonlySet<string> = new Set([
  'INPUT',
  'OUTPUT',
  'FORWARD',
  'PREROUTING',
  'POSTROUTING',
  'DOCKER',
  'DOCKER-USER',
  'ACCEPT',
  'DROP',
  'REJECT',
  'RETURN',
  'LOG',
  'NFLOG',
  'ULOG',
  'QUEUE',
  'NFQUEUE',
  'MARK',
  'CONNMARK',
  'CT',
  'DNAT',
  'SNAT',
  'MASQUERADE',
  'REDIRECT',
  'TRACE',
  'AUDIT',
  'TCPMSS',
  'CLASSIFY',
  'TPROXY',
  'SET',
]);

/**
 * Prefixes of chains and sets other firewall managers own (Docker, fail2ban, ufw, Kubernetes,
 * Calico, CNI, libvirt, firewalld's zones): a name starting with one is refused, so portcullis
 * never flushes or destroys what another tool keeps. Compared case-insensitively.
 */
export const FOREIGN_NAME_PREFIXES: readonly string[] = [
  'DOCKER',
  'f2b-',
  'fail2ban',
  'ufw-',
  'ufw6-',
  'KUBE-',
  'cali-',
  'CNI-',
  'LIBVIRT_',
  'FLANNEL',
  'WEAVE',
  'cilium',
  'IN_',
  'FWD_',
  'OUT_',
  'crowdsec',
];

/** Why `name` cannot be a chain or set name of portcullis's own, or `null` when it can. */
export function foreignNameProblem(name: string): string | null {
  const upper = name.toUpperCase();
  if (RESERVED_CHAIN_NAMES.has(upper))
    return `${JSON.stringify(name)} is a built-in chain or target of iptables (or Docker's); portcullis flushes and deletes its own chain, so pick a name of its own like "pc-sshd"`;
  const prefix = FOREIGN_NAME_PREFIXES.find((p) => upper.startsWith(p.toUpperCase()));
  if (prefix !== undefined)
    return `${JSON.stringify(name)} starts with ${JSON.stringify(prefix)}, which another firewall manager (Docker, fail2ban, ufw, Kubernetes, ...) uses; pick a name of its own like "pc-sshd"`;
  return null;
}

/** A name option (`set_prefix`, `chain_name`) of at most `max` characters, never one another tool owns. */
export function nameSchema(what: string, max: number) {
  return z
    .string()
    .max(max, { error: (issue) => `expected ${what} of at most ${max} characters, got ${show(issue.input)}` })
    .regex(XT_NAME, {
      error: (issue) =>
        `expected ${what} (a letter, then letters, digits, "_", "-"; up to ${max}), got ${show(issue.input)}`,
    })
    .superRefine((name, ctx) => {
      const problem = foreignNameProblem(name);
      if (problem !== null)
        ctx.addIssue({ code: 'custom', message: `expected ${what} of portcullis's own: ${problem}` });
    });
}

/** The resolved match settings. */
export interface MatchConfig {
  readonly hook: ChainHook;
  readonly verdict: 'drop' | 'reject';
  readonly protocol: 'tcp' | 'udp' | null;
  readonly ports: readonly string[] | null;
}

/** Resolves the shared match settings. */
export function resolveMatch(options: {
  ports?: (number | string)[] | undefined;
  protocol?: 'tcp' | 'udp' | undefined;
  chain?: ChainHook | undefined;
  verdict?: 'drop' | 'reject' | undefined;
}): MatchConfig {
  const ports = options.ports === undefined ? null : [...new Set(options.ports.map(String))];
  return {
    hook: options.chain ?? 'input',
    verdict: options.verdict ?? 'drop',
    protocol: options.protocol ?? (ports === null ? null : 'tcp'),
    ports: ports === null ? null : Object.freeze(ports),
  };
}

/** `pc-<action name>`, reduced to the characters and length iptables and ipset take. */
export function defaultName(actionName: string, max: number): string {
  const name = `pc-${actionName.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  return name.slice(0, max).replace(/-+$/, '');
}

/** `iptables` kind options: a plain chain, one rule per banned address. Every key is optional. */
export const iptablesOptionsSchema = z.strictObject({
  ...matchShape,
  /** The chain portcullis creates and owns, in the filter table of iptables and ip6tables. Default `pc-<action name>`. */
  chain_name: nameSchema('a chain name', 28)
    .optional()
    .describe('The iptables/ip6tables chain portcullis creates and owns. Default pc-<action name>.'),
});

export type IptablesOptions = z.input<typeof iptablesOptionsSchema>;

/** A validated, frozen iptables action configuration. */
export interface IptablesConfig extends MatchConfig {
  readonly chain: string;
}

export function resolveIptablesOptions(
  actionName: string,
  options: z.output<typeof iptablesOptionsSchema>,
): IptablesConfig {
  return Object.freeze({
    ...resolveMatch(options),
    chain: options.chain_name ?? defaultName(actionName, 28),
  });
}
