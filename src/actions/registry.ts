import type { z } from 'zod';
import type { Action, ActionContext } from './action.js';
import { createCommandAction } from './command/command-action.js';
import { type CommandConfig, commandOptionsSchema, resolveCommandOptions } from './command/options.js';
import { createEmailAction } from './email/email-action.js';
import { type EmailConfig, emailOptionsSchema, resolveEmailOptions } from './email/options.js';
import { createHostsdenyAction } from './hostsdeny/hostsdeny-action.js';
import {
  type HostsdenyConfig,
  hostsdenyOptionsSchema,
  resolveHostsdenyOptions,
} from './hostsdeny/options.js';
import { createIpsetAction } from './ipset/ipset-action.js';
import { type IpsetConfig, ipsetOptionsSchema, resolveIpsetOptions } from './ipset/options.js';
import { createIptablesAction } from './iptables/iptables-action.js';
import { type IptablesConfig, iptablesOptionsSchema, resolveIptablesOptions } from './iptables/options.js';
import { createNftablesAction } from './nftables/nftables-action.js';
import { type NftablesConfig, nftablesOptionsSchema, resolveNftablesOptions } from './nftables/options.js';
import { createNginxAction } from './nginx/nginx-action.js';
import { type NginxConfig, nginxOptionsSchema, resolveNginxOptions } from './nginx/options.js';
import { resolveSmsOptions, type SmsConfig, smsOptionsSchema } from './sms/options.js';
import { createSmsAction } from './sms/sms-action.js';
import { resolveWebhookOptions, type WebhookConfig, webhookOptionsSchema } from './webhook/options.js';
import { createWebhookAction } from './webhook/webhook-action.js';

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

const ipset: ActionKind<IpsetConfig> = {
  schema: ipsetOptionsSchema,
  resolve: (name, options: z.output<typeof ipsetOptionsSchema>) => resolveIpsetOptions(name, options),
  firewall: true,
  // The chain shares iptables' namespace with the iptables kind's chains.
  conflictKey: (config) => `iptables chain ${config.chain}`,
  create: (name, config, context) => createIpsetAction(name, config, context),
};

const iptables: ActionKind<IptablesConfig> = {
  schema: iptablesOptionsSchema,
  resolve: (name, options: z.output<typeof iptablesOptionsSchema>) => resolveIptablesOptions(name, options),
  firewall: true,
  conflictKey: (config) => `iptables chain ${config.chain}`,
  create: (name, config, context) => createIptablesAction(name, config, context),
};

const nginx: ActionKind<NginxConfig> = {
  schema: nginxOptionsSchema,
  resolve: (name, options: z.output<typeof nginxOptionsSchema>) => resolveNginxOptions(name, options),
  firewall: true,
  conflictKey: (config) => `nginx include file ${config.file}`,
  create: (name, config, context) => createNginxAction(name, config, context),
};

const hostsdeny: ActionKind<HostsdenyConfig> = {
  schema: hostsdenyOptionsSchema,
  resolve: (name, options: z.output<typeof hostsdenyOptionsSchema>) => resolveHostsdenyOptions(name, options),
  firewall: true,
  create: (name, config, context) => createHostsdenyAction(name, config, context),
};

const command: ActionKind<CommandConfig> = {
  schema: commandOptionsSchema,
  resolve: (name, options: z.output<typeof commandOptionsSchema>) => resolveCommandOptions(name, options),
  // Enforcement by default (every ban in force, manual ones too); `scope: local` makes it a notification.
  firewall: true,
  create: (name, config, context) => createCommandAction(name, config, context),
};

// Notifications (`scope: 'local'`): only bans decided on this instance; see `notify/notifier.ts`.
const email: ActionKind<EmailConfig> = {
  schema: emailOptionsSchema,
  resolve: (_name, options: z.output<typeof emailOptionsSchema>) => resolveEmailOptions(options),
  firewall: false,
  create: (name, config, context) => createEmailAction(name, config, context),
};

const webhook: ActionKind<WebhookConfig> = {
  schema: webhookOptionsSchema,
  resolve: (_name, options: z.output<typeof webhookOptionsSchema>) => resolveWebhookOptions(options),
  firewall: false,
  create: (name, config, context) => createWebhookAction(name, config, context),
};

const sms: ActionKind<SmsConfig> = {
  schema: smsOptionsSchema,
  resolve: (_name, options: z.output<typeof smsOptionsSchema>) => resolveSmsOptions(options),
  firewall: false,
  create: (name, config, context) => createSmsAction(name, config, context),
};

/** Every action kind this version runs, by name. */
export const ACTION_KINDS: Readonly<Record<string, ActionKind<never>>> = Object.freeze({
  nftables: nftables as unknown as ActionKind<never>,
  ipset: ipset as unknown as ActionKind<never>,
  iptables: iptables as unknown as ActionKind<never>,
  nginx: nginx as unknown as ActionKind<never>,
  hostsdeny: hostsdeny as unknown as ActionKind<never>,
  command: command as unknown as ActionKind<never>,
  email: email as unknown as ActionKind<never>,
  webhook: webhook as unknown as ActionKind<never>,
  sms: sms as unknown as ActionKind<never>,
});

/** Builds the action of one resolved instance. */
export function createAction(spec: ActionSpec, context: ActionContext): Action {
  const kind = ACTION_KINDS[spec.kind];
  if (kind === undefined) throw new Error(`unknown action kind ${spec.kind}`);
  return kind.create(spec.name, spec.options as never, context);
}
