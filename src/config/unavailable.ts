import { ACTION_KINDS } from '../actions/registry.js';

/**
 * Settings the schema knows but this version cannot honour. Accepting them would be worse than
 * refusing: an operator who writes `actions: [nftables]` on an sshd jail believes SSH is
 * protected when nothing touches the firewall. Each feature is switched on here when it lands.
 */

/** Action kinds that run: those of the registry (`src/actions/registry.ts`). */
export const SUPPORTED_ACTION_KINDS: ReadonlySet<string> = new Set<string>(Object.keys(ACTION_KINDS));

/**
 * Action kinds that are planned but may not run yet: an entry naming one that is not in
 * {@link SUPPORTED_ACTION_KINDS} is refused here, with what that means; any other unknown kind is
 * refused by `config/actions.ts`, which lists the known ones.
 */
export const PLANNED_ACTION_KINDS: readonly string[] = [
  'nftables',
  'ipset',
  'iptables',
  'hostsdeny',
  'command',
  'email',
  'sms',
  'webhook',
  'nginx',
];

/**
 * Whether `source: socket` jails run. They do: `source: { socket: NAME }` judges the connections
 * of the `tcp:` listener NAME (a bare `socket`, naming none, is refused by `config/tcp.ts`).
 */
export const SOCKET_SOURCE_AVAILABLE = true;

type Mapping = Record<string, unknown>;
const isMapping = (value: unknown): value is Mapping =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * Refuses `source: socket` in any form (`socket`, `{ socket: ... }`) under `defaults` and every
 * jail, before the schema sees it; the key is removed so the schema does not add a second line
 * about the same mistake. `input` is the caller's own copy.
 */
export function takeUnavailableSources(input: Mapping, name: string): string[] {
  if (SOCKET_SOURCE_AVAILABLE) return [];
  const problems: string[] = [];
  const check = (settings: unknown, path: string) => {
    if (!isMapping(settings)) return;
    const source = settings.source;
    const socket =
      (typeof source === 'string' && source.trim().toLowerCase() === 'socket') ||
      (isMapping(source) && 'socket' in source);
    if (!socket) return;
    problems.push(
      `${name}: ${path}.source: socket jails (TCP guard, packet watcher) are not available in this version, so nothing would watch this service; remove the jail, or follow the service's log with source: { log: FILE } and a log filter`,
    );
    delete settings.source;
  };
  check(input.defaults, 'defaults');
  if (isMapping(input.jails)) {
    for (const [jail, settings] of Object.entries(input.jails)) check(settings, `jails.${jail}`);
  }
  return problems;
}

/** The kinds an `actions:` list names: `nftables`, `{ email: { to } }` -> `email`; preset names are not kinds. */
function actionKinds(entries: readonly unknown[], presets: ReadonlySet<string>): string[] {
  return entries.flatMap((entry) =>
    isMapping(entry) ? Object.keys(entry) : presets.has(String(entry)) ? [] : [String(entry)],
  );
}

/**
 * Refuses planned action kinds not in {@link SUPPORTED_ACTION_KINDS}: in `defaults.actions`,
 * `jails.X.actions` and the top-level `actions:` map. An empty list or map is fine. Runs before
 * the schema (so it is said along with every other mistake); a malformed `actions` is the schema's.
 */
export function unavailableActions(input: Mapping, name: string): string[] {
  const problems: string[] = [];
  const presets = new Set(isMapping(input.actions) ? Object.keys(input.actions) : []);
  const check = (kinds: string[], path: string, what: string, consequence: string) => {
    const missing = [
      ...new Set(
        kinds.filter((kind) => PLANNED_ACTION_KINDS.includes(kind) && !SUPPORTED_ACTION_KINDS.has(kind)),
      ),
    ];
    if (missing.length === 0) return;
    const all = missing.length === new Set(kinds).size;
    problems.push(
      `${name}: ${path}: ${what} (${missing.join(', ')}) are not available in this version; remove ${all ? 'this key' : 'them'}${consequence}`,
    );
  };
  const checkList = (settings: unknown, path: string) => {
    if (!isMapping(settings) || !Array.isArray(settings.actions)) return;
    check(
      actionKinds(settings.actions, presets),
      `${path}.actions`,
      'actions',
      path === 'defaults'
        ? ' — the jails still ban, but only the proxy and the Express middleware enforce their bans'
        : ' — the jail still bans, but only the proxy and the Express middleware enforce its bans',
    );
  };
  checkList(input.defaults, 'defaults');
  if (isMapping(input.jails)) {
    for (const [jail, settings] of Object.entries(input.jails)) checkList(settings, `jails.${jail}`);
  }
  if (isMapping(input.actions)) {
    for (const [preset, definition] of Object.entries(input.actions))
      if (isMapping(definition)) check(Object.keys(definition), `actions.${preset}`, 'actions', '');
  }
  return problems;
}
