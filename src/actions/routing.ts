import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Action } from './action.js';
import { type ActionSpec, createAction } from './registry.js';
import { ActionRunner, type ActionRunnerOptions } from './runner.js';

/** A jail as routing sees it: its name and the action instances it lists. */
export interface JailActions {
  readonly name: string;
  readonly actions: readonly ActionSpec[];
}

/**
 * Which bans an action instance gets, as `accepts(jail)`:
 * - a ban of a configured jail goes to the actions that jail lists (its own `actions:`, else
 *   `defaults.actions`), and to no other;
 * - a ban of no configured jail — `manual` (`portcullis ban`, `guard.ban()`), or a jail only
 *   another instance's config has (learned over Redis) — goes to every firewall action: a hand
 *   ban is meant to block the address on this host, wherever portcullis firewalls. Notification
 *   kinds, when they land, get those only when listed in `defaults.actions`.
 * The end of a ban goes to every action that applied it (the runner tracks that).
 */
export function acceptsFor(
  spec: ActionSpec,
  jails: readonly JailActions[],
  defaults: readonly ActionSpec[] = [],
): (jail: string) => boolean {
  const configured = new Set(jails.map((jail) => jail.name));
  const listing = new Set(jails.filter((jail) => jail.actions.includes(spec)).map((jail) => jail.name));
  const others = spec.firewall || defaults.includes(spec);
  return (jail) => listing.has(jail) || (others && !configured.has(jail));
}

export interface ActionsSetup {
  runner: ActionRunner;
  actions: Action[];
}

/** Builds every action instance and a runner routing each its jails' bans. `null` when there are none. */
export function createActions(
  jails: readonly JailActions[],
  instances: readonly ActionSpec[],
  defaults: readonly ActionSpec[],
  context: { logger: Logger; clock: Clock; baseDir: string | null },
  runnerOptions: Partial<ActionRunnerOptions> = {},
): ActionsSetup | null {
  if (instances.length === 0) return null;
  const actions = instances.map((spec) => createAction(spec, context));
  const runner = new ActionRunner(
    actions.map((action, i) => ({
      action,
      accepts: acceptsFor(instances[i] as ActionSpec, jails, defaults),
    })),
    { clock: context.clock, logger: context.logger, ...runnerOptions },
  );
  return { runner, actions };
}
