import { SOCKET_FIELDS } from '../../detection/filters/fields/socket-fields.js';
import {
  bundledSocketRules,
  loadSocketRule,
  type SocketRule,
  SocketRuleError,
  type SocketRuleKind,
} from './socket-rules.js';

/** The TCP guard's rules in `rules/socket/`: `source: tcp` (or none), over connection events. */
const TCP_RULES: SocketRuleKind = {
  source: 'tcp',
  label: 'TCP guard rule',
  fields: SOCKET_FIELDS,
  unmarked: 'by-fields',
  misfiled: (reference) =>
    `rule ${JSON.stringify(reference)} is a packet watcher rule: use it on a jail with source: { packets: NAME }`,
};

export type TcpRule = SocketRule;
export { SocketRuleError as TcpRuleError };

/**
 * Reads a TCP guard rule: a bundled name (`conn-flood` → `rules/socket/conn-flood.yaml`) or a path
 * to a YAML file (relative to `baseDir`). Throws {@link SocketRuleError}.
 */
export function loadTcpRule(reference: string, baseDir: string = process.cwd()): TcpRule {
  return loadSocketRule(TCP_RULES, reference, baseDir);
}

/** Names of the bundled TCP guard rules (the packet watcher's, which socket fields do not fit, left out). */
export function bundledTcpRules(): string[] {
  return bundledSocketRules(TCP_RULES);
}
