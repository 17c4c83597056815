import type { z } from 'zod';
import type { Action, ActionContext } from './action.js';
import { createNftablesAction } from './nftables/nftables-action.js';
import { type NftablesConfig, nftablesOptionsSchema, resolveNftablesOptions } from './nftables/options.js';

/**
 * One kind of action (`nftables`, later `hostsdeny`, `command`, `email`, ...): how its options are
 * validated and resolved, and how an instance is built. A new kind is one entry in
 * {@link ACTION_KINDS}; the config layer and `portcullis run` need nothing else.
 */
export interface ActionKind<Config = unknown> {
  /** The options as the user writes them (`{ ports: [22] }`); a zod object, strict. */
  readonly schema: z.ZodType;
  /** The schema's output → the frozen config an instance is built from. `name` is the instance's. */
  resolve(name: string, options: never): Config;
  /**
   * A firewall (`scope: 'all'`: every ban this instance enforces, and bans of no configured jail)
   * or a notification (`'local'`: only bans decided here).
   */
  readonly firewall: boolean;
  /** Two instances with the same key would share kernel objects: a config error. `null`: none. */
  conflictKey?(config: Config): string | null;
  /** Builds the instance. */
  create(name: string, config: Config, context: ActionContext): Action;
}

/** An action instance of the resolved configuration. */
export interface ActionSpec {
  /** Unique: the preset's name (`ssh-fw`), the kind (`nftables`), or `kind-jail` (`nftables-sshd`). */
  readonly name: string;
  readonly kind: string;
  /** The kind's resolved, frozen config (for nftables a `NftablesConfig`). */
  readonly options: Readonly<Record<string, unknown>>;
  readonly firewall: boolean;
}

const nftables: ActionKind<NftablesConfig> = {
  schema: nftablesOptionsSchema,
  resolve: (name, options: z.output<typeof nftablesOptionsSchema>) => resolveNftablesOptions(name, options),
  firewall: true,
  conflictKey: (config) => `nftables table ${config.table} set_prefix ${config.setPrefix}`,
  create: (name, config, context) => createNftablesAction(name, config, context),
};

/** Every action kind this version runs, by name. */
export const ACTION_KINDS: Readonly<Record<string, ActionKind<never>>> = Object.freeze({
  nftables: nftables as unknown as ActionKind<never>,
});

/** Builds the action of one resolved instance. */
export function createAction(spec: ActionSpec, context: ActionContext): Action {
  const kind = ACTION_KINDS[spec.kind];
  if (kind === undefined) throw new Error(`unknown action kind ${spec.kind}`);
  return kind.create(spec.name, spec.options as never, context);
}
